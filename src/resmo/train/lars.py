"""LARS (You, Gitman, Ginsburg 2017), the SGD variant of the BYOL / MoCo v3 recipes.

For each parameter ``w`` with gradient ``g`` in a group without ``lars_exclude``:

    g <- g + weight_decay * w
    g <- g * eta * ||w|| / ||g||       (when both norms are > 0)
    v <- momentum * v + g;   w <- w - lr * v

Groups flagged ``lars_exclude`` (norms, biases) take plain SGD with momentum. Written
here rather than taken from timm so the core install does not need timm, and because
this form (decay before adaptation, exclusion by group) is what the SSL recipes use.
"""

from __future__ import annotations

import torch


class LARS(torch.optim.Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.02) -> None:
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta,
                    "lars_exclude": False}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if not group["lars_exclude"]:
                    if group["weight_decay"]:
                        grad = grad.add(param, alpha=group["weight_decay"])
                    param_norm, grad_norm = torch.norm(param), torch.norm(grad)
                    trust = torch.where(
                        (param_norm > 0) & (grad_norm > 0),
                        group["eta"] * param_norm / grad_norm,
                        torch.ones_like(param_norm),
                    )
                    grad = grad.mul(trust)
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(grad).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                param.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss
