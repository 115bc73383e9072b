"""The kNN monitor while pretraining: weighted kNN top-1 (resmo.eval.knn) of the student
and the teacher backbone on the validation split, every ``monitor.knn_every_epochs`` and
after the last epoch, and of the student at initialisation (the random-encoder baseline).
The training loop runs it on global rank 0; its history is kept in checkpoints.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from resmo.config.schema import PretrainConfig
from resmo.data import DataSplits
from resmo.data.eval_batches import eval_loader
from resmo.eval.knn import extract_features, weighted_knn


class KnnMonitor:
    def __init__(
        self, train_loader: DataLoader, val_loader: DataLoader, *, every_n_epochs: int,
        k: int, temperature: float, num_classes: int | None,
    ) -> None:
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.every_n_epochs = every_n_epochs
        self.k = k
        self.temperature = temperature
        self.num_classes = num_classes
        self.history: list[dict[str, float]] = []
        self.random_init_top1: float | None = None

    @property
    def images(self) -> int:
        """Images one measurement reads: the bank and the validation queries."""
        return len(self.train_loader.dataset) + len(self.val_loader.dataset)

    def knn_top1(self, backbone: torch.nn.Module, device: torch.device, label: str = "encoder") -> float:
        """kNN top-1 of ``backbone``; on a terminal, a progress line ``label`` while features
        are extracted (erased when done)."""
        show = _progress(label, self.images) if sys.stderr.isatty() else None
        bank, bank_labels = extract_features(backbone, self.train_loader, device=device, on_batch=show)
        offset = bank.shape[0]
        queries, query_labels = extract_features(
            backbone, self.val_loader, device=device,
            on_batch=None if show is None else lambda done: show(offset + done))
        if show is not None:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
        return weighted_knn(
            bank, bank_labels, queries, query_labels, k=self.k, temperature=self.temperature,
            num_classes=self.num_classes,
        ).top1

    def measure_random_init(self, backbone: torch.nn.Module, device: torch.device, rank_zero: bool) -> None:
        """kNN top-1 of the encoder before training (rank 0 only), printed as a note."""
        if not rank_zero:
            return
        start = time.perf_counter()
        self.random_init_top1 = self.knn_top1(backbone, device, "random init")
        print(f"# kNN top-1 of the random-init encoder: {self.random_init_top1:.1f}% "
              f"({self.images} images, {time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)

    def due(self, epoch: int, *, last: bool) -> bool:
        """Whether epoch ``epoch`` (counted from 1) ends with a measurement."""
        return last or bool(self.every_n_epochs and epoch % self.every_n_epochs == 0)

    def measure(self, epoch: int, student: torch.nn.Module, teacher: torch.nn.Module,
                device: torch.device) -> dict[str, float]:
        """kNN top-1 of both backbones after epoch ``epoch``, appended to :attr:`history`."""
        row = {"epoch": epoch, "knn_top1_student": self.knn_top1(student, device, "student"),
               "knn_top1_teacher": self.knn_top1(teacher, device, "teacher")}
        self.history.append(row)
        return row

    def state_dict(self) -> dict:
        return {"history": self.history, "random_init_top1": self.random_init_top1}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict["history"])
        self.random_init_top1 = state_dict["random_init_top1"]


def _progress(label: str, total: int):
    """A callback that redraws ``# kNN features (label): done/total images`` on stderr."""
    def show(done: int) -> None:
        print(f"\r# kNN features ({label}): {done}/{total} images", end="", file=sys.stderr, flush=True)
    return show


def knn_monitor_for(config: PretrainConfig, splits: DataSplits, image_size: int, *,
                    worker_init_fn: Callable[[int], None] | None = None) -> KnnMonitor | None:
    """The monitor of ``config.monitor`` on ``splits`` (at most ``knn_max_train`` bank and
    ``knn_max_val`` query images, a seeded random subset); ``None`` with a warning when the
    data has no labelled validation split."""
    if not splits.has_labels or splits.val is None or splits.eval_train is None:
        warnings.warn(f"data '{config.data.name}' has no labelled validation split: kNN monitors are off",
                      stacklevel=2)
        return None
    monitor, batch, workers = config.monitor, max(256, config.train.batch_size), config.data.num_workers
    loaders = [eval_loader(_subset(dataset, limit, config.seed), image_size, batch_size=batch,
                           num_workers=workers, worker_init_fn=worker_init_fn)
               for dataset, limit in ((splits.eval_train, monitor.knn_max_train), (splits.val, monitor.knn_max_val))]
    return KnnMonitor(*loaders, every_n_epochs=monitor.knn_every_epochs, k=monitor.knn_k,
                      temperature=monitor.knn_temperature, num_classes=splits.num_classes)


def _subset(dataset: Dataset, limit: int, seed: int) -> Dataset:
    if len(dataset) <= limit:
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:limit].tolist())
