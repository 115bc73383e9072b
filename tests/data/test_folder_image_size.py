"""Image folders without ``data.image_size``: the side is chosen from the images."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from PIL import Image

from resmo.cli import main
from resmo.data import build_datasets
from resmo.data.images import ImageFiles
from resmo.data.sizing import (
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    SAMPLE_SIZE,
    folder_image_size,
    round_image_size,
    sample_indices,
)


def make_folder(root: Path, size: tuple[int, int], *, per_class: int = 16, val: int = 4) -> Path:
    """``root/train/{a,b}/*.png`` (and ``val/``) of ``size`` (width, height) images."""
    for split, count in (("train", per_class), ("val", val)):
        for c, name in enumerate(("a", "b")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                Image.new("RGB", size, (200 * c, 8 * index, 100)).save(folder / f"{index}.png")
    return root


@pytest.mark.parametrize(
    ("side", "size"),
    [(1, 8), (4, 8), (8, 8), (10, 8), (12, 16), (28, 32), (32, 32), (96, 96), (100, 104),
     (220, 224), (375, 224), (5000, 224)],
)
def test_round_image_size(side, size):
    assert round_image_size(side) == size
    assert size % 8 == 0 and MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE


def test_sample_is_spread_over_the_files():
    assert sample_indices(5) == [0, 1, 2, 3, 4]
    many = sample_indices(10_000)
    assert len(many) == SAMPLE_SIZE == len(set(many)) and many[0] == 0 and many[-1] > 9_800
    assert many == sorted(many) and sample_indices(0) == []


def test_cifar_sized_folder_trains_at_32(tmp_path):
    splits = build_datasets(make_folder(tmp_path / "cifar", (32, 32)))
    assert splits.image_size == 32
    note = next(note for note in splits.notes if "image_size" in note)
    assert "image_size 32 chosen from the images" in note and "32 px of 32 sampled" in note
    assert build_datasets(tmp_path / "cifar", image_size=64).image_size == 64  # explicit wins


def test_median_of_shorter_sides_skipping_unreadable_files(tmp_path):
    paths = []
    for index, size in enumerate([(64, 48), (48, 200), (300, 40), (96, 96), (50, 60)]):
        paths.append(tmp_path / f"{index}.png")
        Image.new("RGB", size).save(paths[-1])
    (tmp_path / "broken.png").write_bytes(b"not an image")
    choice = folder_image_size(ImageFiles([*map(str, paths), str(tmp_path / "broken.png")]))
    assert choice.size == 48  # shorter sides 48, 48, 40, 96, 50: median 48
    assert "of 5 sampled images" in choice.note


def test_large_small_and_unreadable_folders(tmp_path):
    Image.new("RGB", (500, 375)).save(tmp_path / "large.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "tiny.png")
    (tmp_path / "bad.png").write_bytes(b"")
    large = folder_image_size(ImageFiles([str(tmp_path / "large.jpg")]))
    assert large.size == 224 and "capped at 224" in large.note
    tiny = folder_image_size(ImageFiles([str(tmp_path / "tiny.png")]))
    assert tiny.size == MIN_IMAGE_SIZE and "smallest size" in tiny.note
    unreadable = folder_image_size(ImageFiles([str(tmp_path / "bad.png")]))
    assert unreadable.size == 224 and "could be read" in unreadable.note


def test_8px_folder_trains_at_8px_prints_and_records_it(tmp_path, capsys):
    data = make_folder(tmp_path / "dots", (8, 8))
    out = tmp_path / "run"
    code = main([
        "pretrain", "--data", str(data), "--epochs", "1", "--batch-size", "16", "--out", str(out),
        "method_options.mocov3={hidden_dim: 32, out_dim: 16, predictor_hidden_dim: 32}",
        "backbone_options.resnet_small={width: 8}", "data.num_workers=0",
        "train.progress_bar=false", "monitor.knn_every_epochs=1",
    ])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "# note: image folder: image_size 8 chosen from the images" in printed.out
    assert "  image_size: 8\n" in printed.out  # the printed config
    recorded = yaml.safe_load((out / "config.yaml").read_text())
    assert recorded["data"]["image_size"] == 8
    assert (out / "summary.json").is_file()
