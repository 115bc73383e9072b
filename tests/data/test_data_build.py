"""build_datasets: synthetic, folders, torchvision sets offline, and the real CIFAR-10 JPEGs."""

from __future__ import annotations

import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import resmo.data
from resmo.data import (
    DataError,
    DataSplits,
    EvalDataset,
    MultiViewDataset,
    SkippedFiles,
    TorchvisionViews,
    build_datasets,
    build_view_spec,
    default_cache_dir,
    eval_transform,
    torchvision_sets,
)

CIFAR10_JPEG = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10-jpeg.tar.gz"
SMALL_SYNTHETIC = {"num_samples": 20, "val_num_samples": 10}


def _write(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


# ----------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("data", [None, "synthetic", "Synthetic"])
def test_synthetic_is_the_default(data):
    splits = build_datasets(data, synthetic_options=SMALL_SYNTHETIC)
    assert splits.name == "synthetic" and splits.has_labels
    assert splits.image_size == 32 and splits.num_classes == len(splits.classes) == 10
    assert len(splits.train) == 20 and len(splits.val) == 10
    assert splits.eval_train is splits.train
    image, label = splits.train[0]
    assert isinstance(image, Image.Image) and image.size == (32, 32) and isinstance(label, int)
    assert not splits.skipped_files()


def test_synthetic_image_size_seed_and_options():
    a = build_datasets(None, image_size=16, seed=1, synthetic_options=SMALL_SYNTHETIC)
    b = build_datasets(None, image_size=16, seed=1, synthetic_options=SMALL_SYNTHETIC)
    c = build_datasets(None, image_size=16, seed=2, synthetic_options=SMALL_SYNTHETIC)
    assert a.image_size == 16 and a.train[0][0].size == (16, 16)
    assert np.array_equal(np.asarray(a.train[0][0]), np.asarray(b.train[0][0]))
    assert not np.array_equal(np.asarray(a.train[0][0]), np.asarray(c.train[0][0]))
    with pytest.raises(ValueError, match="synthetic option 'colour' is not valid; allowed options"):
        build_datasets(None, synthetic_options={"colour": 1})


def test_invalid_settings_raise_value_error():
    with pytest.raises(ValueError, match="image_size=0"):
        build_datasets(None, image_size=0)
    with pytest.raises(ValueError, match="data=42"):
        build_datasets(42)


# -------------------------------------------------------------------------------- folders


def test_labelled_folder_splits(tmp_path):
    for c in ("a", "b", "c"):
        for i in range(2):
            _write(tmp_path / "train" / c / f"{i}.png", seed=i)
        _write(tmp_path / "test" / c / "0.png")
    splits = build_datasets(str(tmp_path))
    assert splits.name == tmp_path.name
    assert splits.has_labels and splits.num_classes == 3 and splits.classes == ["a", "b", "c"]
    assert len(splits.train) == 6 and len(splits.val) == 3 and splits.eval_train is splits.train
    assert splits.image_size == 8  # chosen from the 10x10 images (see test_folder_image_size.py)
    assert any("image_size 8 chosen from the images" in note for note in splits.notes)
    assert "labelled (train/ + test/)" in splits.notes[0]
    assert build_datasets(tmp_path, image_size=64).image_size == 64


def test_unlabelled_folder_splits(tmp_path):
    _write(tmp_path / "x" / "1.jpg")
    _write(tmp_path / "2.jpg")
    splits = build_datasets(str(tmp_path), image_size=32)
    assert not splits.has_labels and splits.num_classes is None
    assert splits.val is None and splits.eval_train is None
    assert [splits.train[i][1] for i in range(2)] == [-1, -1]
    assert not any("image_size defaults" in note for note in splits.notes)
    views, label = MultiViewDataset(splits.train, TorchvisionViews(build_view_spec("byol", 32)))[0]
    assert len(views) == 2 and label == -1


def test_missing_path_error_lists_the_choices(tmp_path):
    missing = tmp_path / "imagenet"
    with pytest.raises(DataError) as error:
        build_datasets(str(missing))
    assert str(error.value) == (
        f"data folder '{missing}' does not exist; pass cifar10, cifar100, stl10, synthetic or a folder path"
    )


def test_skipped_files_are_summed_over_splits(tmp_path):
    for split in ("train", "val"):
        _write(tmp_path / split / "a" / "good.png")
        (tmp_path / split / "a" / "bad.png").write_bytes(b"")
    splits = build_datasets(tmp_path, image_size=8)
    for dataset in (splits.train, splits.val):
        [dataset[i] for i in range(len(dataset))]
    skipped = splits.skipped_files()
    assert skipped.count == 2
    assert skipped.examples == (
        str(tmp_path / "train" / "a" / "bad.png"), str(tmp_path / "val" / "a" / "bad.png")
    )


def test_data_splits_defaults():
    splits = DataSplits("x", train=[1], val=None, num_classes=None, has_labels=False, image_size=8)
    assert splits.eval_train is None and splits.notes == [] and splits.skipped_files() == SkippedFiles()


# ----------------------------------------------------------------- torchvision, offline


@pytest.mark.parametrize("name", ["cifar10", "CIFAR100", "stl10"])
def test_torchvision_sets_fail_fast_and_clearly_offline(tmp_path, monkeypatch, name):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    # Make the test independent of the machine's network: no request leaves the process.
    monkeypatch.setattr("urllib.request.urlopen", offline)
    start = time.monotonic()
    with pytest.raises(DataError, match="could not download") as error:
        build_datasets(name, cache_dir=tmp_path / "cache")
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "cache") in message
    assert "RESMO_DATA_DIR" in message and "image folder path" in message


def test_a_failing_download_does_not_hang(tmp_path, monkeypatch):
    """The real urllib path, aimed at a name that never resolves (RFC 2606 ``.invalid``),
    so nothing is downloaded even on a machine with a network."""
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "url", "http://cifar.invalid/cifar-10-python.tar.gz")
    start = time.monotonic()
    with pytest.raises(DataError, match="could not download CIFAR-10"):
        torchvision_sets.cifar10(tmp_path)
    assert time.monotonic() - start < 2 * torchvision_sets.DOWNLOAD_TIMEOUT_S + 5


def test_downloads_run_under_a_socket_timeout(tmp_path, monkeypatch):
    seen = []

    def fake_download(self):
        seen.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr("torchvision.datasets.CIFAR10.download", fake_download)
    before = socket.getdefaulttimeout()
    with pytest.raises(DataError):
        torchvision_sets.cifar10(tmp_path)
    assert seen == [torchvision_sets.DOWNLOAD_TIMEOUT_S]
    assert socket.getdefaulttimeout() == before


def test_cache_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("RESMO_DATA_DIR", raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "resmo" / "datasets"
    monkeypatch.setenv("RESMO_DATA_DIR", str(tmp_path / "from-env"))
    assert default_cache_dir() == tmp_path / "from-env"
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(DataError, match="from-env"):
        build_datasets("cifar10")


@pytest.mark.slow  # a fresh process (the fast lane does without it)
def test_import_does_not_touch_the_network():
    """A fresh interpreter with an audit hook that fails on any socket use."""
    code = (
        "import sys\n"
        "def hook(event, args):\n"
        "    if event.startswith('socket.') and event != 'socket.__new__':\n"
        "        raise RuntimeError(f'network access at import time: {event} {args}')\n"
        "sys.addaudithook(hook)\n"
        "import resmo.data, resmo.data.build, resmo.data.torchvision_sets\n"
        "resmo.data.default_cache_dir()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ real CIFAR-10 JPEGs


def _extract_cifar_sample(target: Path, classes: int = 3, per_class: int = 4) -> Path:
    """Copy ``per_class`` JPEGs of the first ``classes`` train classes (and the same test
    classes) out of the tarball. Test images come first in it, so this stops early."""
    wanted: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    with tarfile.open(CIFAR10_JPEG) as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or parts[1] not in wanted:
                continue
            split, name = parts[1], parts[2]
            counts = wanted[split]
            if name not in counts and len(counts) >= classes or counts.get(name, 0) >= per_class:
                continue
            counts[name] = counts.get(name, 0) + 1
            out = target / split / name / parts[3]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(archive.extractfile(member).read())
            if all(len(c) == classes and min(c.values()) == per_class for c in wanted.values()):
                break
    return target


def test_real_cifar10_jpegs_from_the_shared_tarball(tmp_path):
    if not CIFAR10_JPEG.exists():
        pytest.skip(f"{CIFAR10_JPEG} is absent (it lives outside the repository); skipping")
    root = _extract_cifar_sample(tmp_path / "cifar10")
    splits = build_datasets(str(root), image_size=32)
    assert splits.has_labels and splits.num_classes == 3 and splits.classes == ["airplane", "automobile", "bird"]
    assert len(splits.train) == 12 and len(splits.val) == 12
    image, label = splits.train[5]
    assert image.mode == "RGB" and image.size == (32, 32) and label == 1
    views, labels = next(iter(DataLoader(MultiViewDataset(splits.train, TorchvisionViews(build_view_spec("dino", 32))), batch_size=6)))
    assert [tuple(v.shape) for v in views] == [(6, 3, 32, 32)] * 2 + [(6, 3, 16, 16)] * 4
    batch, val_labels = next(iter(DataLoader(EvalDataset(splits.val, eval_transform(32)), batch_size=12)))
    assert batch.shape == (12, 3, 32, 32) and batch.dtype == torch.float32
    assert val_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert not splits.skipped_files()


def test_public_api_is_exported():
    for name in resmo.data.__all__:
        assert getattr(resmo.data, name) is not None
