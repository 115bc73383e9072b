"""Momentum methods, one file each, behind ``create_method(name, backbone, **options)``."""

from resmo.methods import byol, densecl, dino, moco_v2, moco_v3  # noqa: F401  (registers methods)
from resmo.methods.base import MomentumMethod, StepResult, ViewOutputs
from resmo.methods.registry import METHODS, create_method, method_names, method_options

__all__ = ["METHODS", "MomentumMethod", "StepResult", "ViewOutputs", "create_method", "method_names", "method_options"]
