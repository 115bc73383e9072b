"""Method registry: ``create_method(name, backbone, **options)``."""

from __future__ import annotations

import inspect

from torch import nn

from resmo.losses.resmo import ResMoSettings
from resmo.methods.base import MomentumMethod
from resmo.registry import Registry

METHODS: Registry[MomentumMethod] = Registry("method")


def create_method(
    name: str, backbone: nn.Module, *, resmo: ResMoSettings | dict | None = None, **options: object
) -> MomentumMethod:
    """Build method ``name`` around ``backbone`` (needs ``backbone.feature_dim``).

    ``resmo`` is a :class:`ResMoSettings` or a dict of its fields; other ``options`` are the
    method's own (head sizes, temperatures, ``momentum``, ...). Unknown names raise
    ``ValueError`` listing the valid ones.
    """
    factory = METHODS.get(name)
    check_method_options(name, options)
    if isinstance(resmo, dict):
        resmo = ResMoSettings(**resmo)
    return factory(backbone, resmo=resmo, **options)


def check_method_options(name: str, options: object) -> None:
    """``ValueError`` naming the first of ``options`` (names) that method ``name`` does not take."""
    allowed = method_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"method {name!r} has no option {unknown[0]!r}; allowed options: {', '.join(allowed)}"
        )


def method_options(name: str) -> list[str]:
    """Keyword options that ``create_method(name, ...)`` accepts besides ``resmo``."""
    own = inspect.signature(METHODS.get(name)).parameters
    shared = inspect.signature(MomentumMethod.__init__).parameters
    keyword = (inspect.Parameter.KEYWORD_ONLY,)
    names = {n for n, p in own.items() if p.kind in keyword}
    names |= {n for n, p in shared.items() if p.kind in keyword and n != "predictor"}
    return sorted(names - {"resmo"})


def method_names() -> list[str]:
    return METHODS.names()
