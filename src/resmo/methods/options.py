"""Typed method options: each method's ``method_options.<name>`` as a settings model.

The model of method ``name`` is built from its factory's signature (the keyword options
``create_method(name, backbone, ...)`` takes, its own and :class:`MomentumMethod`'s shared
``momentum``, ``final_momentum``, ``buffer_policy``, ``num_teacher_views``), with each
parameter's annotation and default: an unknown option (``hiden_dim``) or a value of the
wrong type (``hidden_dim: abc``) fails in one line naming ``method_options.<name>.<key>``
and the value, wherever the options come from (a recipe, the command line, a library call).
Numbers take YAML's forms (``1e-6``), integers and flags are strict (``true`` is not 1).
"""

from __future__ import annotations

import functools
from typing import Any

from resmo.methods.base import MomentumMethod
from resmo.settings import Section, signature_model

#: Keyword arguments of the factories that are not user options (given by the run).
NOT_OPTIONS = ("resmo", "steps_per_epoch", "predictor", "student", "backbone")

@functools.cache
def method_options_model(factory: Any, name: str) -> type[Section]:
    """The settings model of the options of method ``name``, made by ``factory``."""
    return signature_model(f"method_options.{name}", MomentumMethod.__init__, factory, skip=NOT_OPTIONS)


def typed_method_options(factory: Any, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against the model of method ``name`` (``ValueError`` in one line),
    as the values ``factory`` receives (numbers as numbers); options not given stay unset."""
    model = method_options_model(factory, name)(**options)
    return model.model_dump(exclude_unset=True)
