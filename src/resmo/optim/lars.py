"""LARS (You, Gitman, Ginsburg 2017) exactly as solo-learn runs it for BYOL / MoCo v3 / DINO.

Reference: ``vturrisi/solo-learn``, ``solo/utils/lars.py`` at commit
``c32f9cee5ff925d2f61bf572322abbe87684072c`` (copied there from Lightning Bolts'
``pl_bolts/optimizers/lars.py``). The step is the same at ``096530cc`` and in the later
version the recipes' ``clip_lr`` key is passed to; only the flags' names change
(``clip_lars_lr`` / ``exclude_bias_n_norm_lars`` / ``exclude_bias_n_norm``, then
``clip_lr`` / ``exclude_bias_n_norm``). solo-learn builds it in
``solo/methods/base.py`` ``configure_optimizers`` as ``LARS(learnable_params, lr=lr,
weight_decay=weight_decay, **optimizer.kwargs)``, with the kwargs of the cited recipes
(``scripts/pretrain/{cifar,imagenet-100}/{byol,mocov3,dino}.yaml``): ``eta: 0.02``,
``clip_lr: True``, ``exclude_bias_n_norm: True``, plus ``momentum: 0.9`` filled in by
``solo/args/pretrain.py``. The recipes do not set ``optimizer.exclude_bias_n_norm_wd``
(default False), so every parameter group there carries the same ``weight_decay``: biases
and norms lose their weight decay only through the exclusion below.

For each parameter ``w`` with gradient ``g`` in a group with (current, scheduled) learning
rate ``lr``, weight decay ``wd``, trust coefficient ``eta`` and ``eps`` (1e-8):

    adapted = w.ndim != 1 or not exclude_bias_n_norm
    if adapted and ||w|| != 0 and ||g|| != 0:
        r = ||w|| / (||g|| + ||w|| * wd + eps) * eta          # layer-wise ("local") lr
        if clip_lr:
            r = min(r / lr, 1)                                # so lr * r <= lr
        d = (g + wd * w) * r
    else:
        d = g                                                 # no weight decay, no scaling
    if momentum != 0:
        v = d (first step);  v = momentum * v + (1 - dampening) * d (later steps)
        d = d + momentum * v if nesterov else v
    w = w - lr * d

Consequences, all as in the reference:

* with ``exclude_bias_n_norm`` the 1-D parameters (biases, BatchNorm / LayerNorm weights
  and biases) get plain SGD with momentum and *no weight decay*, whatever their group's
  ``weight_decay``; only ``ndim == 1`` is excluded (a 0-D parameter is adapted);
* weight decay is only ever applied together with the adaptation: a parameter whose norm
  or gradient norm is 0 takes the raw gradient that step (no decay);
* with ``clip_lr`` the layer-wise step is ``lr * min(r_0 / lr, 1) = min(r_0, lr)`` (``r_0``
  the unclipped ratio): the global lr only caps it; without ``clip_lr`` they multiply;
* the trust ratio divides by ``||g|| + wd * ||w||`` (the triangle bound), not by
  ``||g + wd * w||``, and ``clip_lr`` compares ``r`` with the group's *current* lr, so the
  per-layer step ``lr * r`` never exceeds the global one (it binds more often in warm-up).

The reference decides ``||w|| != 0 and ||g|| != 0`` and ``min`` in Python, one host read
per parameter; here they are ``torch.where`` / ``masked_fill`` / ``torch.clamp`` on device
tensors, which give the same values without making the host wait for the device.

Multi-tensor step (the default, ``foreach=True``): per parameter group and (device, dtype),
the parameters of each kind (adapted, excluded) go through ``torch._foreach_*`` ops
together, so a step costs a fixed number of ops per group instead of ~18 per adapted and 3
per excluded parameter (ResNet-18: 26 ATen ops instead of 482; ``benchmarks/lars_ops.py``
counts them). The norms are
``torch._foreach_norm``; the trust ratios of all adapted parameters are computed at once
on the stacked norms, in the same operation order as the per-parameter step; then

    d = (g + wd * w) * s,   s = r if ||w|| != 0 and ||g|| != 0;  1 if ||w|| == 0;  0 if ||g|| == 0

which is the reference's ``d``: with ``||w|| == 0`` the decay term ``wd * w`` is zero, so
``d = g``; with ``||g|| == 0`` the gradient is zero, so ``d = 0 = g``. (The one difference:
a parameter holding inf or NaN with an all-zero gradient gets NaN instead of 0; its run is
already non-finite.) Momentum and the parameter update are ``_foreach_mul_`` /
``_foreach_add_`` with the per-parameter step's scalars. The multiply by ``s``
(one 0-D tensor per parameter) is one op for the caller; CUDA runs it as one small kernel
per adapted parameter (its multi-tensor kernels take host scalars or lists of equal shapes,
and reading ``s`` on the host would make it wait for the device).
``foreach=False`` keeps the per-parameter loop (the reference the tests and the benchmark
compare with). Both keep the same state (``momentum_buffer`` per parameter), so
checkpoints load in either.

Why not ``timm.optim.Lars`` (``huggingface/pytorch-image-models``, ``timm/optim/lars.py``
at ``5788a1af80c63cd5da382db9ee48e03d2801bf83``, unchanged in timm 1.0.31 apart from an
added multi-tensor path): with ``trust_coeff=eta``, ``trust_clip=clip_lr`` it computes the
same ``r``, the same ``clamp(r / lr, max=1)``, the same ``(g + wd * w) * r`` and the same
momentum / dampening / Nesterov, and the exclusion can be had with parameter groups
(1-D parameters: ``weight_decay=0, always_adapt=False``; the rest: ``always_adapt=True``).
But where ``||w|| == 0`` or ``||g|| == 0`` timm sets ``r = 1`` and still applies weight
decay and the clip: ``d = (g + wd * w) * (min(1 / lr, 1) if trust_clip else 1)``, where the
reference takes ``d = g``. So a weight with an all-zero gradient is decayed by timm and not
by solo-learn, and a zero weight (zero-initialised layers; zero-init BatchNorm gammas when
the exclusion is off) under clipping with ``lr > 1`` steps by ``g`` instead of ``lr * g``.
These are different updates, not rounding, so resmo keeps this implementation
(``tests/optim/test_lars.py`` checks both the agreement and the difference). It also needs no
timm in the core install.
"""

from __future__ import annotations

import torch
from torch import Tensor


def lars_direction(param: Tensor, grad: Tensor, *, lr: float, weight_decay: float, eta: float,
                   eps: float, clip_lr: bool) -> Tensor:
    """``d`` of the module docstring for an adapted parameter (before momentum)."""
    param_norm = torch.linalg.vector_norm(param)
    grad_norm = torch.linalg.vector_norm(grad)
    local_lr = param_norm / (grad_norm + param_norm * weight_decay + eps) * eta
    if clip_lr:
        local_lr = torch.clamp(local_lr / lr, max=1.0)
    adapted = grad.add(param, alpha=weight_decay).mul_(local_lr)
    return torch.where((param_norm != 0) & (grad_norm != 0), adapted, grad)


def _by_device_and_dtype(params: list[Tensor]) -> list[list[Tensor]]:
    """``params`` split by (device, dtype), order kept within each part (``foreach`` ops and
    ``torch.stack`` need one device and dtype)."""
    parts: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    for param in params:
        parts.setdefault((param.device, param.dtype), []).append(param)
    return list(parts.values())


def foreach_lars_directions(params: list[Tensor], grads: list[Tensor], *, lr: float,
                            weight_decay: float, eta: float, eps: float, clip_lr: bool) -> list[Tensor]:
    """:func:`lars_direction` for many adapted parameters of one device and dtype at once
    (new tensors; ``d = (g + wd * w) * s`` of the module docstring)."""
    param_norms = torch.stack(torch._foreach_norm(params))
    grad_norms = torch.stack(torch._foreach_norm(grads))
    local_lr = param_norms / (grad_norms + param_norms * weight_decay + eps) * eta
    if clip_lr:
        local_lr = torch.clamp(local_lr / lr, max=1.0)
    scale = local_lr.masked_fill(grad_norms == 0, 0.0).masked_fill(param_norms == 0, 1.0)
    directions = torch._foreach_add(grads, params, alpha=weight_decay)
    torch._foreach_mul_(directions, scale.unbind(0))
    return directions


class LARS(torch.optim.Optimizer):
    """SGD with LARS scaling, the update of the module docstring (solo-learn's LARS).

    ``clip_lr`` and ``exclude_bias_n_norm`` are solo-learn's names (its recipe kwargs);
    every argument but ``foreach`` may also be set per parameter group. The defaults are
    those of the cited recipes (solo-learn's class defaults are momentum 0, eta 1e-3, both
    flags off). ``foreach``: the multi-tensor step (default) or the per-parameter loop; not
    part of the state dict.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.02, *, clip_lr: bool = True, exclude_bias_n_norm: bool = True,
                 dampening: float = 0.0, nesterov: bool = False, eps: float = 1e-8,
                 foreach: bool = True) -> None:
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay),
                            ("eta", eta), ("eps", eps)):
            if not value >= 0.0:
                raise ValueError(f"LARS {name}={value!r} is not valid; allowed values: a number >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("LARS nesterov=True needs momentum > 0 and dampening=0")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "eta": eta, "eps": eps,
                    "clip_lr": clip_lr, "exclude_bias_n_norm": exclude_bias_n_norm}
        super().__init__(params, defaults)
        self.foreach = bool(foreach)

    def __setstate__(self, state):
        # optimizer states saved before a setting existed (e.g. an older resmo LARS without
        # ``clip_lr``) take this instance's value for it
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if self.foreach:
                self._group_step_foreach(group)
            else:
                self._group_step_per_parameter(group)
        return loss

    def _group_step_per_parameter(self, group: dict) -> None:
        """The step of one group, one parameter at a time (the reference of ``foreach``)."""
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        for param in group["params"]:
            if param.grad is None:
                continue
            update = param.grad
            if param.ndim != 1 or not group["exclude_bias_n_norm"]:
                update = lars_direction(
                    param, update, lr=lr, weight_decay=group["weight_decay"],
                    eta=group["eta"], eps=group["eps"], clip_lr=group["clip_lr"],
                )
            if momentum != 0:
                state = self.state[param]
                if "momentum_buffer" not in state:
                    buffer = state["momentum_buffer"] = torch.clone(update).detach()
                else:
                    buffer = state["momentum_buffer"]
                    buffer.mul_(momentum).add_(update, alpha=1 - dampening)
                update = update.add(buffer, alpha=momentum) if group["nesterov"] else buffer
            param.add_(update, alpha=-lr)

    def _group_step_foreach(self, group: dict) -> None:
        """The same step with ``torch._foreach_*`` ops over the group's parameters."""
        with_grad = [param for param in group["params"] if param.grad is not None]
        excluded = [p for p in with_grad if p.ndim == 1 and group["exclude_bias_n_norm"]]
        adapted = [p for p in with_grad if not (p.ndim == 1 and group["exclude_bias_n_norm"])]
        for params in _by_device_and_dtype(adapted):
            directions = foreach_lars_directions(
                params, [p.grad for p in params], lr=group["lr"], weight_decay=group["weight_decay"],
                eta=group["eta"], eps=group["eps"], clip_lr=group["clip_lr"],
            )
            self._momentum_and_update(group, params, directions)
        for params in _by_device_and_dtype(excluded):
            self._momentum_and_update(group, params, [p.grad for p in params])

    def _momentum_and_update(self, group: dict, params: list[Tensor], directions: list[Tensor]) -> None:
        """``v = momentum * v + (1 - dampening) * d`` (``v = d`` the first time), the
        Nesterov variant, and ``w = w - lr * update`` for ``params`` together."""
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        updates = directions
        if momentum != 0:
            states = [self.state[param] for param in params]
            held = [i for i, state in enumerate(states) if "momentum_buffer" in state]
            if held:
                buffers = [states[i]["momentum_buffer"] for i in held]
                torch._foreach_mul_(buffers, momentum)
                torch._foreach_add_(buffers, [directions[i] for i in held], alpha=1 - dampening)
            if len(held) < len(states):
                for state, direction in zip(states, directions, strict=True):
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.clone(direction).detach()
            buffers = [state["momentum_buffer"] for state in states]
            updates = torch._foreach_add(directions, buffers, alpha=momentum) if group["nesterov"] else buffers
        torch._foreach_add_(params, updates, alpha=-lr)
