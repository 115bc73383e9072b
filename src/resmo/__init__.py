"""resmo: momentum self-supervised pretraining with residual momentum (ResMo).

The ResMo term any training loop can call::

    from resmo import residual_momentum_loss
    loss = ssl_loss + 1.0 * residual_momentum_loss([s1, s2], teacher=[t1, t2])

and whole methods::

    from resmo import create_backbone, create_method
    method = create_method("mocov3", create_backbone("resnet18", cifar_stem=True))
    result = method(views, step=step); result.loss.backward(); optimizer.step()
    method.after_optimizer_step(result, step=step, total_steps=total_steps)

The names load on first use (PEP 562 ``__getattr__``), so ``import resmo`` and the
``resmo`` command's parser do not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resmo.backbones import backbone_names, create_backbone
    from resmo.losses import ResMoSettings, residual_momentum_loss
    from resmo.losses.gap import intra_gap
    from resmo.methods import MomentumMethod, StepResult, create_method, method_names
    from resmo.momentum import EMATeacher, cosine_momentum

__version__ = "0.1.0"

#: public name -> the module that defines it
_SOURCES = {
    "backbone_names": "resmo.backbones", "create_backbone": "resmo.backbones",
    "ResMoSettings": "resmo.losses", "residual_momentum_loss": "resmo.losses",
    "intra_gap": "resmo.losses.gap",
    "MomentumMethod": "resmo.methods", "StepResult": "resmo.methods",
    "create_method": "resmo.methods", "method_names": "resmo.methods",
    "EMATeacher": "resmo.momentum", "cosine_momentum": "resmo.momentum",
}

__all__ = [
    "EMATeacher", "MomentumMethod", "ResMoSettings", "StepResult", "backbone_names",
    "cosine_momentum", "create_backbone", "create_method", "intra_gap", "method_names",
    "residual_momentum_loss",
]


def __getattr__(name: str):
    if name in _SOURCES:
        value = getattr(import_module(_SOURCES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'resmo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SOURCES])
