"""CIFAR-10, CIFAR-100 and STL-10 through torchvision, downloaded on first use.

Files go to a cache folder: the ``cache_dir`` argument, else ``$RESMO_DATA_DIR``, else
``~/.cache/resmo/datasets``. Nothing touches the network at import time; a download is
tried only when the files are not already in the cache folder. When it fails (offline,
firewall) a one-line :class:`DataError` says where to put the files, or to pass an image
folder path instead. Downloads run under a socket timeout so a silent network cannot hang
a run.

Splits: ``train`` is what pretraining reads, ``eval_train`` the labelled images for kNN /
linear evaluation, ``val`` the labelled test set. For CIFAR ``train`` and ``eval_train``
are the same 50 000 images; for STL-10 ``train`` is ``train+unlabeled`` (105 000 images,
the unlabelled ones with label -1) and ``eval_train`` is ``train`` (5 000).
Each item is ``(PIL RGB image, int label)``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from resmo.data.errors import DataError

ENV_VAR = "RESMO_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 30.0
"""Seconds a download may wait on a single network operation before it fails."""


@dataclass(frozen=True)
class TorchvisionSplits:
    """``train`` for pretraining, ``eval_train`` / ``val`` (labelled) for evaluation."""

    train: Dataset
    eval_train: Dataset
    val: Dataset
    classes: list[str]


def default_cache_dir() -> Path:
    """``$RESMO_DATA_DIR`` if set, else ``~/.cache/resmo/datasets``."""
    configured = os.environ.get(ENV_VAR)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "resmo" / "datasets"


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    return default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Temporarily give new sockets a timeout (torchvision's urlopen sets none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _open(display: str, dataset_class: type, root: Path, factory: Callable[..., Dataset]) -> Dataset:
    """``factory(download=False)``; if the files are missing, download them first."""
    try:
        return factory(download=False)
    except RuntimeError:  # torchvision: "Dataset not found or corrupted"
        pass
    expected = root / dataset_class.base_folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return factory(download=True)
    except Exception as exc:  # network, disk or checksum failure: one actionable line
        raise DataError(
            f"could not download {display} into '{root}' ({_one_line(exc)}); fetch "
            f"{dataset_class.url} yourself and extract it there (giving '{expected}'), set "
            f"{ENV_VAR} to a folder that has it, or pass an image folder path instead"
        ) from exc


def cifar10(cache_dir: str | os.PathLike | None = None) -> TorchvisionSplits:
    """CIFAR-10: 50 000 train / 10 000 test images, 32 px, 10 classes."""
    from torchvision.datasets import CIFAR10

    root = resolve_cache_dir(cache_dir)
    train = _open("CIFAR-10", CIFAR10, root, lambda download: CIFAR10(root, train=True, download=download))
    test = _open("CIFAR-10", CIFAR10, root, lambda download: CIFAR10(root, train=False, download=download))
    return TorchvisionSplits(train, train, test, list(train.classes))


def cifar100(cache_dir: str | os.PathLike | None = None) -> TorchvisionSplits:
    """CIFAR-100: 50 000 train / 10 000 test images, 32 px, 100 classes."""
    from torchvision.datasets import CIFAR100

    root = resolve_cache_dir(cache_dir)
    train = _open("CIFAR-100", CIFAR100, root, lambda download: CIFAR100(root, train=True, download=download))
    test = _open("CIFAR-100", CIFAR100, root, lambda download: CIFAR100(root, train=False, download=download))
    return TorchvisionSplits(train, train, test, list(train.classes))


def stl10(cache_dir: str | os.PathLike | None = None) -> TorchvisionSplits:
    """STL-10: pretrain on ``train+unlabeled`` (105 000), evaluate ``train`` (5 000) vs ``test`` (8 000).

    96 px, 10 classes. torchvision checks the files' MD5 sums (2.6 GB) on every split it
    opens, which takes a few seconds.
    """
    from torchvision.datasets import STL10

    root = resolve_cache_dir(cache_dir)

    def split(name: str) -> Dataset:
        return _open("STL-10", STL10, root, lambda download: STL10(root, split=name, download=download))

    pretrain, labelled, test = split("train+unlabeled"), split("train"), split("test")
    return TorchvisionSplits(pretrain, labelled, test, list(labelled.classes))
