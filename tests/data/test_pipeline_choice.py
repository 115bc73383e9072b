"""``data.pipeline: auto`` decided by the training device and the dataset (resmo.data.train_loader)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from resmo.config import load_config
from resmo.data.train_loader import chosen_pipeline
from resmo.train.pretrain import prepare_run
from tests.pretrain_helpers import tiny_overrides


@pytest.mark.parametrize(("data", "device", "expected"), [
    ("cifar10", "cuda", "batched"),  # per-image views in workers cannot keep a large GPU busy
    ("/data/imagenet100", "cuda", "batched"),
    ("synthetic", "cuda", "batched"),
    ("synthetic", "cpu", "batched"),  # in memory: nothing for workers to decode
    ("cifar10", "cpu", "torchvision"),
    ("/data/imagenet100", "cpu", "torchvision"),
    ("cifar10", "mps", "torchvision"),
])
def test_auto_is_decided_by_the_device_and_the_data(data, device, expected):
    assert chosen_pipeline("auto", data, device) == expected


@pytest.mark.parametrize("device", ["cuda", "cpu"])
@pytest.mark.parametrize("pipeline", ["batched", "torchvision"])
def test_an_explicit_pipeline_is_kept(pipeline, device):
    assert chosen_pipeline(pipeline, "cifar10", device) == pipeline
    assert chosen_pipeline(pipeline, "synthetic", device) == pipeline


def image_folder(root: Path) -> Path:
    for split, count in (("train", 16), ("val", 4)):
        for cls in ("red", "blue"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for index in range(count):
                Image.new("RGB", (16, 16), (200, 30, index * 9) if cls == "red" else (30, index * 9, 200)).save(
                    folder / f"{index}.png")
    return root


@pytest.fixture
def global_flags_kept():
    """prepare_run sets process-wide flags (cuDNN autotuning, TF32): put them back after."""
    kept = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    yield
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = kept


def test_a_run_decides_auto_on_the_device_it_trains_on(tmp_path, global_flags_kept):
    """An image folder: batched on CUDA, torchvision on the CPU; the synthetic data: batched."""
    data = image_folder(tmp_path / "shapes")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    overrides = [item for item in tiny_overrides(tmp_path / "run") if not item.startswith("data.pipeline=")]
    run = prepare_run(load_config(None, [*overrides, f"data.name={data}", "data.image_size=16",
                                         "train.batch_size=8", f"train.accelerator={device}"]))
    assert run.fabric.device.type == device and run.config.data.pipeline == chosen_pipeline("auto", "folder", device)
    assert (run.loop.device_views is not None) == (device == "cuda")
    run = prepare_run(load_config(None, [*overrides, "out=" + str(tmp_path / "run2"), "train.accelerator=cpu"]))
    assert run.fabric.device.type == "cpu" and run.config.data.pipeline == "batched"
    assert run.loop.device_views is not None


def test_an_unknown_pipeline_is_refused_by_the_train_loader():
    from resmo.data import build_train_loader, two_view_spec

    with pytest.raises(ValueError, match="pipeline='dali' is not valid; allowed values: batched, torchvision"):
        build_train_loader([], two_view_spec(8), pipeline="dali", batch_size=2, seed=0, workers=0)
