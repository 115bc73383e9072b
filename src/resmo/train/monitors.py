"""Monitors while pretraining: kNN of student and teacher, throughput, RNG state.

- :class:`KnnMonitor`: weighted kNN top-1 (resmo.eval.knn) of the student and the teacher
  backbone on the validation split, every ``every_n_epochs`` and after the last epoch, and
  of the student at initialisation (the random-encoder baseline). Runs on global rank 0.
- :class:`ThroughputMonitor`: training images per second per epoch (all ranks together).
- :class:`RngStateCallback`: saves and restores the Python, NumPy and torch RNG states in
  checkpoints, so a resumed run draws the same augmentations and batches. CUDA states are
  restored for the devices this machine has (a checkpoint from a machine with more GPUs
  restores the first ones, with a warning).
"""

from __future__ import annotations

import random
import sys
import time
import warnings

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from resmo.eval.knn import extract_features, weighted_knn


class KnnMonitor(pl.Callback):
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

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and self.random_init_top1 is None and trainer.global_step == 0:
            start = time.perf_counter()
            self.random_init_top1 = self.knn_top1(pl_module.method.backbone, pl_module.device, "random init")
            print(f"# kNN top-1 of the random-init encoder: {self.random_init_top1:.1f}% "
                  f"({self.images} images, {time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        last = epoch == trainer.max_epochs
        if not trainer.is_global_zero or not (last or (self.every_n_epochs and epoch % self.every_n_epochs == 0)):
            return
        method = pl_module.method
        row = {
            "epoch": epoch,
            "knn_top1_student": self.knn_top1(method.backbone, pl_module.device, "student"),
            "knn_top1_teacher": self.knn_top1(method.teacher.module.backbone, pl_module.device, "teacher"),
        }
        self.history.append(row)
        pl_module.log_dict(
            {"knn/student_top1": row["knn_top1_student"], "knn/teacher_top1": row["knn_top1_teacher"]},
            rank_zero_only=True,
        )

    def state_dict(self) -> dict:
        return {"history": self.history, "random_init_top1": self.random_init_top1}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))
        self.random_init_top1 = state_dict.get("random_init_top1")


def _progress(label: str, total: int):
    """A callback that redraws ``# kNN features (label): done/total images`` on stderr."""
    def show(done: int) -> None:
        print(f"\r# kNN features ({label}): {done}/{total} images", end="", file=sys.stderr, flush=True)
    return show


class ThroughputMonitor(pl.Callback):
    def __init__(self) -> None:
        self.per_epoch: list[float] = []
        self._start = 0.0
        self._images = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._images = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._images += batch[0][0].shape[0] * trainer.world_size

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seconds = time.perf_counter() - self._start
        if self._images and seconds > 0:
            rate = self._images / seconds
            self.per_epoch.append(rate)
            pl_module.log("train/images_per_second", rate, rank_zero_only=True)

    def state_dict(self) -> dict:
        return {"per_epoch": self.per_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.per_epoch = list(state_dict.get("per_epoch", []))


class RngStateCallback(pl.Callback):
    def state_dict(self) -> dict:
        return {
            "python": random.getstate(),
            "numpy": _numpy_state_to_tensors(np.random.get_state()),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        random.setstate(state_dict["python"])
        np.random.set_state(_numpy_state_from_tensors(state_dict["numpy"]))
        torch.set_rng_state(state_dict["torch"])
        restore_cuda_rng_states(state_dict.get("cuda"))


def restore_cuda_rng_states(states: list[torch.Tensor] | None) -> None:
    """Set the RNG state of CUDA device ``i`` to ``states[i]`` for the devices present."""
    if not states or not torch.cuda.is_available():
        return
    present = torch.cuda.device_count()
    if len(states) > present:
        warnings.warn(
            f"the checkpoint holds the CUDA RNG states of {len(states)} devices, this machine has "
            f"{present}: the states of the first {present} are restored", stacklevel=2,
        )
    for device, state in enumerate(states[:present]):
        torch.cuda.set_rng_state(state, device=device)


def _numpy_state_to_tensors(state: tuple) -> dict:
    """NumPy's RNG state as tensors and ints, loadable with ``torch.load(weights_only=True)``."""
    kind, keys, position, has_gauss, cached_gaussian = state
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def _numpy_state_from_tensors(state: dict) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return (state["kind"], keys, state["position"], state["has_gauss"], state["cached_gaussian"])
