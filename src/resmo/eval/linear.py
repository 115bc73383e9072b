"""Linear probe on frozen features (the standard SSL linear evaluation, e.g. MoCo v3 Sec. 4).

Features are standardised with the training set's per-dimension mean and standard
deviation, ``z = (x - mu) / sigma``, and a linear classifier ``W z + b`` minimises the
L2-regularised multinomial logistic loss

    L(W, b) = 1/N sum_i CE(W z_i + b, y_i) + weight_decay / 2 * ||W||_F^2

with full-batch L-BFGS (strong Wolfe line search) from ``W = 0, b = 0``: the problem is
convex, so the result is deterministic and needs no learning rate. Accuracy is top-1 and
top-k (k = min(5, C)) in percent on the held-out features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from resmo.validation import check_non_negative, check_positive_int


@dataclass(frozen=True)
class LinearResult:
    top1: float
    top5: float
    train_top1: float


class LinearProbe(nn.Module):
    """``x -> W (x - mean) / std + b``: the standardisation is part of the probe."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("std", std.float().clone())
        self.linear = nn.Linear(mean.numel(), num_classes)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features.float() - self.mean) / self.std)


def standardizer(features: torch.Tensor, *, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and standard deviation (floored at ``eps``: constant dims stay 0)."""
    features = features.float()
    return features.mean(dim=0), features.std(dim=0, unbiased=False).clamp_min(eps)


@torch.no_grad()
def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Top-1 and top-min(5, C) accuracy in percent."""
    k = min(5, logits.shape[1])
    predictions = logits.topk(k, dim=1).indices
    truth = labels.long().unsqueeze(1)
    top1 = (predictions[:, :1] == truth).float().mean().item()
    top5 = (predictions == truth).any(dim=1).float().mean().item()
    return 100.0 * top1, 100.0 * top5


def fit_linear_probe(
    features: torch.Tensor, labels: torch.Tensor, *, num_classes: int, steps: int = 200,
    weight_decay: float = 1e-4,
) -> LinearProbe:
    """Minimise the loss of the module docstring with at most ``steps`` L-BFGS iterations."""
    check_positive_int("steps", steps)
    check_non_negative("weight_decay", weight_decay)
    check_positive_int("num_classes", num_classes)
    mean, std = standardizer(features)
    probe = LinearProbe(mean, std, num_classes)
    inputs, targets = features.float(), labels.long()
    optimizer = torch.optim.LBFGS(
        probe.linear.parameters(), lr=1.0, max_iter=steps, history_size=20,
        tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(probe(inputs), targets)
        loss = loss + 0.5 * weight_decay * probe.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return probe.eval()


def linear_probe(
    train_features: torch.Tensor, train_labels: torch.Tensor, val_features: torch.Tensor,
    val_labels: torch.Tensor, *, num_classes: int | None = None, steps: int = 200,
    weight_decay: float = 1e-4,
) -> LinearResult:
    """Fit on the training features, report val top-1 / top-5 (and train top-1), in %."""
    num_classes = num_classes or int(max(train_labels.max(), val_labels.max())) + 1
    probe = fit_linear_probe(
        train_features, train_labels, num_classes=num_classes, steps=steps, weight_decay=weight_decay,
    )
    return evaluate_probe(probe, train_features, train_labels, val_features, val_labels)


@torch.no_grad()
def evaluate_probe(
    probe: nn.Module, train_features: torch.Tensor, train_labels: torch.Tensor,
    val_features: torch.Tensor, val_labels: torch.Tensor,
) -> LinearResult:
    top1, top5 = topk_accuracy(probe(val_features), val_labels)
    train_top1, _ = topk_accuracy(probe(train_features), train_labels)
    return LinearResult(top1=top1, top5=top5, train_top1=train_top1)
