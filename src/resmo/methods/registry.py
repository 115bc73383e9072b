"""Method registry: ``create_method(name, backbone, **options)``."""

from __future__ import annotations

from torch import nn

from resmo.losses.default_weight import default_weight
from resmo.losses.resmo import ResMoSettings
from resmo.methods.base import MomentumMethod
from resmo.methods.options import method_options_model, typed_method_options
from resmo.registry import Registry

METHODS: Registry[MomentumMethod] = Registry("method")


def create_method(
    name: str, backbone: nn.Module, *, resmo: ResMoSettings | dict | None = None, steps_per_epoch: int = 1,
    **options: object,
) -> MomentumMethod:
    """Build method ``name`` around ``backbone`` (needs ``backbone.feature_dim``).

    ``resmo`` is a :class:`ResMoSettings` or a dict of its fields (without ``weight``, or
    ``None``: the method's default λ, :mod:`resmo.losses.default_weight`); ``steps_per_epoch`` the
    run's optimizer steps per epoch (ResMo's ``warmup_epochs`` in steps); other ``options``
    are the method's own (head sizes, temperatures, ``momentum``, ...). Unknown names raise
    ``ValueError`` listing the valid ones.
    """
    factory = METHODS.get(name)
    options = typed_method_options(factory, name, options)
    if isinstance(resmo, dict):
        resmo = ResMoSettings(**{"weight": default_weight(name), **resmo})
    return factory(backbone, resmo=resmo, steps_per_epoch=steps_per_epoch, **options)


def check_method_options(name: str, options: dict[str, object]) -> None:
    """``ValueError`` (one line) for the first of ``options`` that method ``name`` does not
    take or whose value has the wrong type (:mod:`resmo.methods.options`)."""
    typed_method_options(METHODS.get(name), name, options)


def method_options(name: str) -> list[str]:
    """Keyword options that ``create_method(name, ...)`` accepts besides ``resmo`` and
    ``steps_per_epoch`` (the recipe's ``method_options.<name>``)."""
    return sorted(method_options_model(METHODS.get(name), name).model_fields)


def method_names() -> list[str]:
    return METHODS.names()
