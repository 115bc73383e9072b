"""Weighted k-nearest-neighbour classification of frozen features (Wu et al. 2018, Sec. 3.4).

With L2-normalised features, each test sample takes its ``k`` most cosine-similar training
samples ``j`` and scores class ``c`` as

    score(c) = sum_{j in top-k} exp(cos_j / T) * [y_j = c]

and predicts the top-scoring classes (T = 0.07 by default, as in InstDisc, DINO, solo-learn).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from resmo.validation import check_positive, check_positive_int


@dataclass(frozen=True)
class KnnResult:
    top1: float
    top5: float
    k: int


@torch.no_grad()
def extract_features(
    backbone: nn.Module, loader: Iterable, *, device: torch.device | str = "cpu",
    on_batch: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``[N, D]`` (float32, on CPU) and labels ``[N]`` of ``loader``'s images.

    The backbone runs in eval mode; its previous mode is restored afterwards. ``on_batch``
    is called after each batch with the number of images done so far (progress lines).
    """
    was_training = backbone.training
    backbone.eval()
    features, labels = [], []
    done = 0
    try:
        for images, targets in loader:
            features.append(backbone(images.to(device, non_blocking=True)).float().cpu())
            labels.append(torch.as_tensor(targets))
            done += images.shape[0]
            if on_batch is not None:
                on_batch(done)
    finally:
        backbone.train(was_training)
    return torch.cat(features), torch.cat(labels)


@torch.no_grad()
def weighted_knn(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 1024,
) -> KnnResult:
    """Top-1 / top-5 accuracy (in %) of the weighted kNN classifier described above."""
    check_positive_int("k", k)
    check_positive("temperature", temperature)
    k = min(k, train_features.shape[0])
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    bank = F.normalize(train_features.float(), dim=1)
    correct1 = correct5 = 0
    for start in range(0, test_features.shape[0], chunk_size):
        queries = F.normalize(test_features[start : start + chunk_size].float(), dim=1)
        similarity, index = (queries @ bank.T).topk(k, dim=1)
        weights = (similarity / temperature).exp()
        scores = torch.zeros(queries.shape[0], num_classes)
        scores.scatter_add_(1, train_labels[index].long(), weights)
        predictions = scores.topk(min(5, num_classes), dim=1).indices
        truth = test_labels[start : start + chunk_size].long().unsqueeze(1)
        correct1 += (predictions[:, :1] == truth).sum().item()
        correct5 += (predictions == truth).any(dim=1).sum().item()
    total = test_features.shape[0]
    return KnnResult(top1=100.0 * correct1 / total, top5=100.0 * correct5 / total, k=k)
