"""`resmo pretrain` on image folders: the real CIFAR-10 JPEGs and a folder with corrupt files."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from PIL import Image

from resmo.config import load_config
from resmo.train.pretrain import execute_run, prepare_run

CIFAR_TAR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


def folder_overrides(data: Path, out: Path) -> list[str]:
    return [
        f"data.name={data}", "data.image_size=32", "data.num_workers=0", f"out={out}",
        "method_options.mocov3={hidden_dim: 64, out_dim: 32, predictor_hidden_dim: 64}",
        "train.epochs=1", "train.batch_size=16", "train.progress_bar=false",
        "monitor.knn_every_epochs=1",
    ]


def extract_cifar_subset(root: Path, per_class: dict[str, int]) -> Path:
    """Extract the first ``per_class[split]`` images of every class and split."""
    counts: dict[tuple[str, str], int] = {}
    with tarfile.open(CIFAR_TAR) as archive:
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 4 or parts[-3] not in per_class:
                continue
            key = (parts[-3], parts[-2])
            if counts.get(key, 0) >= per_class[parts[-3]]:
                continue
            counts[key] = counts.get(key, 0) + 1
            target = root / "cifar10" / parts[-3] / parts[-2] / parts[-1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(member).read())
            if len(counts) == 20 and all(counts[k] >= per_class[k[0]] for k in counts):
                break
    return root / "cifar10"


@pytest.mark.slow  # ~35 s: extracts and trains on the real images
@pytest.mark.skipif(not CIFAR_TAR.is_file(), reason=f"real CIFAR-10 images not found at {CIFAR_TAR}")
def test_pretrains_on_real_cifar10_folder(tmp_path):
    data = extract_cifar_subset(tmp_path, {"train": 8, "test": 4})
    prepared = prepare_run(load_config(None, folder_overrides(data, tmp_path / "run")))
    assert prepared.splits.num_classes == 10 and len(prepared.splits.train) == 80
    summary = execute_run(prepared)
    assert summary["data"] == str(data)
    assert 0 <= summary["knn_top1_student"] <= 100 and summary["skipped_files"] == 0


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    data = tmp_path / "shapes"
    for split, count in (("train", 40), ("val", 10)):
        for cls in ("red", "blue"):
            folder = data / split / cls
            folder.mkdir(parents=True)
            for index in range(count):
                colour = (200, 30, index * 5) if cls == "red" else (30, index * 5, 200)
                Image.new("RGB", (32, 32), colour).save(folder / f"{index}.png")
    (data / "train" / "red" / "broken.png").write_bytes(b"\x89PNG not really")
    (data / "train" / "blue" / "empty.jpg").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2 unreadable images"):
        summary = execute_run(prepare_run(load_config(None, folder_overrides(data, tmp_path / "run"))))
    assert summary["skipped_files"] == 2
    assert summary["epochs"] == 1 and summary["knn_top1_student"] is not None
