"""The real CIFAR-10 images for benchmarks: ``../shared/data/cifar10-jpeg.tar.gz`` extracted once.

The archive (the real CIFAR-10 images re-encoded as JPEG files, see its README) holds
``cifar10/train/<class>/*.jpg`` (50,000) and ``cifar10/test/<class>/*.jpg`` (10,000): the
labelled folder layout ``resmo pretrain --data FOLDER`` reads. It is extracted into a cache
folder outside the repository (default ``~/.cache/resmo/benchmarks``, or
``$RESMO_BENCHMARK_CACHE``) and never copied into the project.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
ARCHIVE = PROJECT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
EXPECTED = {"train": 50_000, "test": 10_000}


class DataMissing(RuntimeError):
    """The archive is not there: benchmarks on real CIFAR-10 cannot run (tests skip)."""


def cache_root() -> Path:
    return Path(os.environ.get("RESMO_BENCHMARK_CACHE", Path.home() / ".cache" / "resmo" / "benchmarks"))


def _complete(folder: Path) -> bool:
    return all(
        (folder / split).is_dir() and sum(1 for _ in (folder / split).glob("*/*.jpg")) == count
        for split, count in EXPECTED.items()
    )


def cifar10_folder(archive: Path = ARCHIVE, cache: Path | None = None) -> Path:
    """The extracted ``cifar10`` folder (extracting ``archive`` first if needed)."""
    cache = cache_root() if cache is None else cache
    folder = cache / "cifar10"
    if folder.is_dir() and _complete(folder):
        return folder
    if not archive.is_file():
        raise DataMissing(
            f"real CIFAR-10 archive not found at {archive}; put cifar10-jpeg.tar.gz there "
            "(see ../shared/data/README.md) or pass --data-folder"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    if not _complete(folder):
        raise DataMissing(f"{archive} did not extract to {folder} with {EXPECTED} images per split")
    return folder
