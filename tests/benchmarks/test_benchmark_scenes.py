"""benchmarks/cifar10_scenes.py: deterministic VOC-layout scenes that resmo's VOC reader reads.

Made from fake CIFAR-like images (flat-coloured 32-px squares), not the real archive."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resmo.data.folders import load_image_folder
from resmo.eval.dense_voc import VOCSegmentation, segmentation_ids
from resmo.transfer.voc import VOCDetection, read_classes, read_split
from tests.benchmarks.test_benchmark_scripts import load

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TINY = ["--num-train", "6", "--num-val", "2", "--num-test", "3", "--num-unlabelled", "2", "--canvas", "64",
        "--sizes", "12,32"]


@pytest.fixture(scope="module")
def fake_cifar(tmp_path_factory):
    """``train/<class>/`` with 10 images per class and ``test/<class>/`` with 2, 32x32 each."""
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    for label, name in enumerate(CIFAR_CLASSES):
        for split, count in (("train", 10), ("test", 2)):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                colour = (25 * label, int(rng.integers(0, 256)), 255 - 25 * label)
                Image.new("RGB", (32, 32), colour).save(folder / f"{index:04d}.png")
    return root


def generate(out: Path, cifar: Path, seed: int) -> dict:
    return load("cifar10_scenes").main(["--out", str(out), "--cifar", str(cifar), "--seed", str(seed), *TINY])


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "scenes.json"}


def test_scenes_are_deterministic_by_seed(fake_cifar, tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        generate(tmp_path / name, fake_cifar, seed)
    first, again, other = (contents(tmp_path / name) for name in "abc")
    assert first == again
    assert first.keys() == other.keys()
    assert any(first[name] != other[name] for name in first if name.startswith("JPEGImages"))


def test_the_voc_reader_reads_the_scenes_with_boxes_inside_the_canvas(fake_cifar, tmp_path):
    out = tmp_path / "scenes"
    summary = generate(out, fake_cifar, 0)
    classes = read_classes(out)
    assert classes == CIFAR_CLASSES  # from classes.txt
    counts = {"train": 6, "val": 2, "test": 3}
    for split, count in counts.items():
        records = read_split(out, split, classes)
        assert len(records) == count
        for record in records:
            assert record.width == record.height == 64
            assert 1 <= len(record.objects) <= 4
            for obj in record.objects:
                x1, y1, x2, y2 = obj.box
                assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64 and 12 <= x2 - x1 <= 32
            for a, b in combinations([o.box for o in record.objects], 2):
                w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
                smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
                assert max(w, 0) * max(h, 0) <= 0.25 * smaller
        assert summary["objects_per_split"][split] == sum(len(r.objects) for r in records)
    image, target = VOCDetection(out, "test", classes)[0]
    assert image.shape == (3, 64, 64) and target["boxes"].shape[1] == 4
    assert len(read_split(out, "trainval", classes)) == 8
    assert json.loads((out / "scenes.json").read_text())["images"]["unlabelled"] == 8
    folder = load_image_folder(out / "unlabelled")  # what resmo pretrain data.name=OUT/unlabelled reads
    assert len(folder.train) == 8 and folder.classes == []


def test_a_pasted_object_shows_its_cifar_image(fake_cifar, tmp_path):
    out = tmp_path / "flat"
    load("cifar10_scenes").main(["--out", str(out), "--cifar", str(fake_cifar), "--background", "flat", *TINY])
    record = read_split(out, "train", CIFAR_CLASSES)[0]
    pixels = np.asarray(Image.open(record.path).convert("RGB"), dtype=np.int32)
    last = record.objects[-1]  # pasted last: nothing covers it
    x1, y1, x2, y2 = (int(v) for v in last.box)
    centre = pixels[(y1 + y2) // 2, (x1 + x2) // 2]
    label = CIFAR_CLASSES.index(last.name)
    assert abs(centre[0] - 25 * label) <= 12 and abs(centre[2] - (255 - 25 * label)) <= 12  # JPEG error


def test_masks_hold_each_square_with_its_class_later_objects_on_top(fake_cifar, tmp_path):
    out = tmp_path / "masks"
    generate(out, fake_cifar, 0)
    classes = read_classes(out)
    layered = 0
    for split in ("train", "val", "test"):
        records = read_split(out, split, classes)
        assert segmentation_ids(out, split) == [r.image_id for r in records]
        for record in records:
            expected = np.zeros((64, 64), dtype=np.uint8)
            for obj in record.objects:  # in the order they were pasted
                x1, y1, x2, y2 = (int(v) for v in obj.box)
                layered += bool((expected[y1:y2, x1:x2] > 0).any())
                expected[y1:y2, x1:x2] = obj.label  # class index + 1
            with Image.open(out / "SegmentationClass" / f"{record.image_id}.png") as mask:
                assert mask.mode == "P" and mask.getpalette()[3:6] == [128, 0, 0]  # VOC's colour of label 1
                assert np.array_equal(np.asarray(mask), expected)
    assert layered > 0  # some object covers part of an earlier one
    image, mask = VOCSegmentation(out, "trainval", 64)[0]  # what resmo eval dense reads
    assert image.shape == (3, 64, 64) and mask.shape == (64, 64) and int(mask.max()) <= 10
