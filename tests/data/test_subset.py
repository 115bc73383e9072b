"""``data.max_images``: a seeded, class-balanced pick of the training images, for every kind of
dataset resmo builds (hand-made folders, synthetic, torchvision-shaped CIFAR / STL-10), and a
tiny real ``resmo pretrain`` run that records it."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from torchvision.datasets import CIFAR10, STL10

import resmo.data.build as build
from resmo.cli import main
from resmo.data import ImageFiles, build_datasets
from resmo.data.batched.loader import in_memory_images
from resmo.data.subset import balanced_counts, pick_indices, subset_of
from resmo.data.textures import SyntheticTextures
from resmo.data.torchvision_sets import TorchvisionSplits
from tests.pretrain_helpers import tiny_overrides

#: A labelled folder with unequal classes: 12 cats, 6 dogs, 2 foxes (and 2 val images each).
CLASS_SIZES = {"cat": 12, "dog": 6, "fox": 2}


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value % 256, dtype=np.uint8)).save(path)


@pytest.fixture
def labelled(tmp_path) -> Path:
    root = tmp_path / "labelled"
    for name, size in CLASS_SIZES.items():
        for index in range(size):
            _image(root / "train" / name / f"{index:02d}.png", index)
        for index in range(2):
            _image(root / "val" / name / f"{index:02d}.png", index)
    return root


def _per_class(dataset: ImageFiles) -> dict[str, int]:
    return dict(Counter(Path(dataset.path(i)).parent.name for i in range(len(dataset))))


def _paths(dataset: ImageFiles) -> list[str]:
    return [dataset.path(i) for i in range(len(dataset))]


def test_balanced_counts_on_hand_checked_cases():
    assert balanced_counts([5000] * 10, 25) == [3] * 5 + [2] * 5  # the remainder to the first classes
    assert balanced_counts([1, 10, 10], 5) == [1, 2, 2]  # a small class gives all it has
    assert balanced_counts([12, 6, 2], 10) == [4, 4, 2]
    assert balanced_counts([12, 6, 2], 5) == [2, 2, 1]
    assert balanced_counts([3, 0, 7], 100) == [3, 0, 7]  # more than there is: everything
    assert balanced_counts([3, 4], 0) == [0, 0]


def test_pick_is_nested_per_seed_and_first_in_order_without_a_seed():
    labels = np.repeat([0, 1, 2], [12, 6, 2])
    small, large = set(pick_indices(labels, 5, seed=3)), set(pick_indices(labels, 10, seed=3))
    assert small < large  # a smaller pick of one seed is part of a larger one
    assert pick_indices(labels, 5, seed=None).tolist() == [0, 1, 12, 13, 18]  # first of each class
    assert pick_indices(np.full(9, -1), 4, seed=None).tolist() == [0, 1, 2, 3]


def test_labelled_folder_exact_counts_per_class_and_the_seed(labelled):
    full = build_datasets(labelled)
    first = build_datasets(labelled, max_images=10, seed=0)
    assert _per_class(first.train) == {"cat": 4, "dog": 4, "fox": 2}
    assert _per_class(build_datasets(labelled, max_images=5, seed=0).train) == {"cat": 2, "dog": 2, "fox": 1}
    assert isinstance(first.train, ImageFiles) and first.train.has_labels
    assert set(_paths(first.train)) <= set(_paths(full.train))
    assert [first.train[i][1] for i in range(len(first.train))] == [
        full.classes.index(Path(p).parent.name) for p in _paths(first.train)]
    assert first.eval_train is first.train  # the kNN memory bank is the pick
    assert len(first.val) == len(full.val) == 6  # evaluation images are all kept
    assert first.notes[-1] == ("data.max_images=10: training on 10 of the 20 images of 'labelled', "
                               "2 to 4 per class, picked with seed 0")
    again, other = build_datasets(labelled, max_images=10, seed=0), build_datasets(labelled, max_images=10, seed=1)
    assert _paths(again.train) == _paths(first.train)
    assert _paths(other.train) != _paths(first.train)
    assert _per_class(other.train) == _per_class(first.train)


def test_unlabelled_folder_gets_a_seeded_uniform_pick(tmp_path):
    for index in range(9):
        _image(tmp_path / "loose" / f"{index}.jpg", index)
    full = build_datasets(tmp_path / "loose")
    picked = build_datasets(tmp_path / "loose", max_images=4, seed=0)
    assert len(picked.train) == 4 and not picked.has_labels and picked.eval_train is None
    assert set(_paths(picked.train)) <= set(_paths(full.train))
    assert picked.train.targets.tolist() == [-1] * 4
    assert "a uniform pick (not every image has a label)" in picked.notes[-1]
    assert _paths(build_datasets(tmp_path / "loose", max_images=4, seed=0).train) == _paths(picked.train)
    assert _paths(build_datasets(tmp_path / "loose", max_images=4, seed=1).train) != _paths(picked.train)


def test_synthetic_exact_counts_same_pixels_and_batched_path():
    options = {"num_samples": 40, "val_num_samples": 10}  # 4 images of each of the 10 classes
    full = build_datasets(None, synthetic_options=options)
    splits = build_datasets(None, synthetic_options=options, max_images=13, seed=0)
    assert isinstance(splits.train, SyntheticTextures) and len(splits.train) == 13
    assert np.bincount(splits.train.targets, minlength=10).tolist() == [2, 2, 2] + [1] * 7
    chosen = pick_indices(full.train.targets, 13, seed=0)
    assert np.array_equal(splits.train.images, full.train.images[chosen])
    assert splits.train.targets == [full.train.targets[i] for i in chosen]
    assert in_memory_images(splits.train).images.shape == (13, 3, 32, 32)  # the batched pipeline reads it
    assert splits.eval_train is splits.train and len(splits.val) == 10
    assert build_datasets(None, synthetic_options=options, max_images=13, seed=1).train.targets != splits.train.targets


def _cifar_like(labels: list[int]) -> CIFAR10:
    dataset = CIFAR10.__new__(CIFAR10)  # torchvision's class without its files
    dataset.data = np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    dataset.targets, dataset.classes = list(labels), ["a", "b", "c"]
    dataset.transform = dataset.target_transform = None
    return dataset


def _stl_like(labels: list[int]) -> STL10:
    dataset = STL10.__new__(STL10)
    dataset.data = np.zeros((len(labels), 3, 4, 4), dtype=np.uint8)
    dataset.labels, dataset.classes = np.asarray(labels), ["a", "b", "c"]
    dataset.transform = dataset.target_transform = None
    return dataset


def test_torchvision_sets_keep_their_kind(monkeypatch):
    cifar = _cifar_like([0] * 6 + [1] * 6 + [2] * 6)
    monkeypatch.setitem(build.TORCHVISION_SETS, "cifar10",
                        lambda cache: TorchvisionSplits(cifar, cifar, _cifar_like([0, 1, 2]), cifar.classes))
    splits = build_datasets("cifar10", max_images=7, seed=0)
    assert type(splits.train) is CIFAR10 and splits.eval_train is splits.train
    assert np.bincount(splits.train.targets).tolist() == [3, 2, 2] and len(cifar) == 18
    image, label = splits.train[0]
    assert label == splits.train.targets[0] and image.getpixel((0, 0))[0] == int(splits.train.data[0, 0, 0, 0])
    labelled, unlabelled = _stl_like([0, 1, 2] * 3), _stl_like([0, 1, 2] * 3 + [-1] * 20)
    monkeypatch.setitem(build.TORCHVISION_SETS, "stl10",
                        lambda cache: TorchvisionSplits(unlabelled, labelled, _stl_like([0, 1, 2]), labelled.classes))
    splits = build_datasets("stl10", max_images=5, seed=0)
    assert type(splits.train) is STL10 and len(splits.train) == 5 and len(splits.train.data) == 5
    assert splits.eval_train is labelled  # STL-10's labelled images stay the memory bank
    assert "a uniform pick" in splits.notes[-1]


def test_other_datasets_become_a_subset():
    subset = subset_of([("x", 0), ("y", 1), ("z", 0)], [0, 2])
    assert [subset[i] for i in range(len(subset))] == [("x", 0), ("z", 0)]


def test_more_than_the_data_has_keeps_everything_with_a_note(labelled):
    splits = build_datasets(labelled, max_images=1000)
    assert len(splits.train) == 20
    assert splits.notes[-1] == ("data.max_images=1000 is not fewer than the 20 training images of "
                                "'labelled': all 20 are used")


@pytest.mark.parametrize("value", [0, -3, True, 2.5])
def test_invalid_max_images_is_an_error_naming_it(value):
    with pytest.raises(ValueError, match=f"^max_images={value!r} is not valid"):
        build_datasets(None, max_images=value)


def test_pretrain_records_max_images_in_config_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["pretrain", *tiny_overrides(out, epochs=1), "data.max_images=64"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert ("# note: data.max_images=64: training on 64 of the 192 images of 'synthetic', "
            "6 to 7 per class, picked with seed 0") in printed
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["max_images"] == 64
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_images"] == 64
    with open(out / "metrics.csv", newline="") as handle:
        steps = {row["step"] for row in csv.DictReader(handle) if row.get("train/loss_step")}
    assert len(steps) == 64 // 32  # one epoch of 64 images at batch 32
    code = main(["pretrain", *tiny_overrides(tmp_path / "bad", epochs=1), "data.max_images=0"])
    assert code == 2 and "data.max_images" in capsys.readouterr().err
