"""``data.val_fraction``: a seeded, class-balanced validation set held out of the training
images (resmo.data.holdout), the splits built from it (resmo.data.build), a tiny real
``resmo pretrain`` run that monitors on it, and ``resmo eval knn --split val``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from torchvision.datasets import STL10

import resmo.data.build as build
from resmo.cli import main
from resmo.data import build_datasets
from resmo.data.holdout import HOLDOUT_STREAM, held_out_count, holdout_indices
from resmo.data.torchvision_sets import TorchvisionSplits
from resmo.eval.features import build_eval_data
from resmo.eval.runs import load_run
from tests.pretrain_helpers import tiny_overrides

#: Three classes of 10, 5 and 1 images, interleaved.
LABELS = [0, 1, 0, 2, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0]
SYNTHETIC = {"num_samples": 40, "val_num_samples": 10}  # 4 images of each of the 10 classes


def test_held_out_count_rounds_half_up_keeping_one_for_training():
    assert held_out_count(10, 0.25) == 3  # 2.5 rounds up (Python's round would give 2)
    assert held_out_count(5, 0.25) == 1  # 1.25
    assert held_out_count(5, 0.3) == 2  # 1.5
    assert held_out_count(2, 0.01) == 1  # at least one of a class of 2
    assert held_out_count(5, 0.9) == 4  # at most all but one
    assert held_out_count(1, 0.5) == 0 and held_out_count(0, 0.5) == 0


def test_exact_indices_on_a_hand_made_three_class_list():
    train, val = holdout_indices(LABELS, 0.25, seed=0)
    assert val.tolist() == [1, 2, 9, 10]  # 3 of class 0, 1 of class 1, none of the single class 2
    assert train.tolist() == [0, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15]
    labels = np.asarray(LABELS)
    for label, count in ((0, 3), (1, 1), (2, 0)):  # the documented draw, class by class
        members = np.flatnonzero(labels == label)
        expected = np.random.default_rng([0, label, HOLDOUT_STREAM]).permutation(members)[:count]
        assert sorted(expected.tolist()) == [i for i in val.tolist() if labels[i] == label]


def test_stratified_counts_disjoint_and_complete():
    labels = np.repeat([0, 1, 2, 3], [40, 21, 7, 2])
    train, val = holdout_indices(labels, 0.1, seed=5)
    assert np.bincount(labels[val]).tolist() == [4, 2, 1, 1]  # 4, 2.1, 0.7 -> 1, 0.2 -> 1
    assert not set(train.tolist()) & set(val.tolist())
    assert sorted([*train.tolist(), *val.tolist()]) == list(range(labels.size))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)


def test_same_seed_same_split_other_seed_other():
    labels = np.repeat([0, 1, 2], [30, 30, 30])
    first = holdout_indices(labels, 0.2, seed=7).val
    assert np.array_equal(holdout_indices(labels, 0.2, seed=7).val, first)
    other = holdout_indices(labels, 0.2, seed=8).val
    assert not np.array_equal(other, first)
    assert np.bincount(labels[other]).tolist() == np.bincount(labels[first]).tolist() == [6, 6, 6]


def test_unlabelled_images_get_a_uniform_pick():
    train, val = holdout_indices([-1] * 10 + [3, 3], 0.25, seed=0)  # any -1: uniform over all 12
    assert val.tolist() == [1, 9, 11] and len(train) == 9
    assert holdout_indices([-1] * 10, 0.25, seed=0).val.size == 3  # 2.5 rounds up
    assert not np.array_equal(holdout_indices([-1] * 50, 0.2, 0).val, holdout_indices([-1] * 50, 0.2, 1).val)
    assert holdout_indices([-1], 0.5, seed=0).val.size == 0


@pytest.mark.parametrize("value", [0, 1, -0.1, 1.5, True, float("nan")])
def test_invalid_fraction_is_an_error_naming_it(value):
    with pytest.raises(ValueError, match=r"^val_fraction=.* is not valid; allowed values: a number in \(0, 1\)$"):
        holdout_indices(LABELS, value, seed=0)
    with pytest.raises(ValueError, match=r"^val_fraction="):
        build_datasets(None, synthetic_options=SYNTHETIC, val_fraction=value)


def test_synthetic_splits_hold_out_training_images_and_ignore_max_images():
    full = build_datasets(None, synthetic_options=SYNTHETIC)
    splits = build_datasets(None, synthetic_options=SYNTHETIC, val_fraction=0.25, seed=0)
    kept, held = holdout_indices(full.train.targets, 0.25, seed=0)
    assert held.size == 10 and np.bincount(np.asarray(full.train.targets)[held]).tolist() == [1] * 10
    assert np.array_equal(splits.val.images, full.train.images[held])  # from train, not the val split
    assert np.array_equal(splits.train.images, full.train.images[kept])
    assert splits.eval_train is splits.train  # the memory bank leaves them out too
    assert splits.val_split == "held-out 25% of train"
    assert splits.val_summary() == {"val_images": 10, "monitor_split": "held-out 25% of train"}
    assert splits.notes[-1] == ("data.val_fraction=0.25: 10 of the 40 training images of 'synthetic' held out "
                                "for validation, 1 per class, picked with seed 0; the dataset's own "
                                "evaluation split is not used")
    capped = build_datasets(None, synthetic_options=SYNTHETIC, val_fraction=0.25, seed=0, max_images=13)
    assert np.array_equal(capped.val.images, splits.val.images)  # the same whatever max_images
    assert len(capped.train) == 13 and capped.eval_train is capped.train
    trained = {image.tobytes() for image in capped.train.images}
    assert trained <= {image.tobytes() for image in splits.train.images}
    assert not trained & {image.tobytes() for image in splits.val.images}
    other = build_datasets(None, synthetic_options=SYNTHETIC, val_fraction=0.25, seed=1)
    assert not np.array_equal(other.val.images, splits.val.images)


def test_default_is_the_datasets_own_split():
    default = build_datasets(None, synthetic_options=SYNTHETIC)
    same = build_datasets(None, synthetic_options=SYNTHETIC, val_fraction=None)
    assert np.array_equal(default.train.images, same.train.images) and len(same.train) == 40
    assert np.array_equal(default.val.images, same.val.images) and len(same.val) == 10
    assert same.val_split == "test" and same.val_summary() == {"val_images": 10, "monitor_split": "test"}


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)


def test_labelled_folder_holds_out_of_train_and_leaves_val_unread(tmp_path):
    for name, size in {"cat": 10, "dog": 5, "fox": 1}.items():
        for index in range(size):
            _image(tmp_path / "pets" / "train" / name / f"{index:02d}.png", index)
        _image(tmp_path / "pets" / "val" / name / "00.png", 0)
    splits = build_datasets(tmp_path / "pets", val_fraction=0.25, seed=0)
    held = [Path(splits.val.path(i)) for i in range(len(splits.val))]
    assert all(path.parts[-3] == "train" for path in held)
    assert sorted(path.parent.name for path in held) == ["cat", "cat", "cat", "dog"]
    trained = {splits.train.path(i) for i in range(len(splits.train))}
    assert len(trained) == 12 and not trained & {str(path) for path in held}
    assert splits.notes[-1].startswith("data.val_fraction=0.25: 4 of the 16 training images of 'pets' "
                                       "held out for validation, 1 to 3 per class")


def test_too_few_images_per_class_is_one_line(tmp_path):
    for name in ("cat", "dog"):
        _image(tmp_path / "tiny" / "train" / name / "00.png", 0)
        _image(tmp_path / "tiny" / "val" / name / "00.png", 0)
    with pytest.raises(ValueError) as error:
        build_datasets(tmp_path / "tiny", val_fraction=0.5)
    assert str(error.value) == ("data.val_fraction=0.5 holds out no image of 'tiny': each class of its 2 "
                                "training images has fewer than 2 (one stays for training)")


def _stl_like(labels: list[int]) -> STL10:
    dataset = STL10.__new__(STL10)
    dataset.data = np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones((1, 3, 4, 4), np.uint8)
    dataset.labels, dataset.classes = np.asarray(labels), ["a", "b", "c"]
    dataset.transform = dataset.target_transform = None
    return dataset


def test_stl10_holds_out_of_its_labelled_images(monkeypatch):
    labelled, everything = _stl_like([0, 1, 2] * 4), _stl_like([0, 1, 2] * 4 + [-1] * 20)
    monkeypatch.setitem(build.TORCHVISION_SETS, "stl10",
                        lambda cache: TorchvisionSplits(everything, labelled, _stl_like([0, 1, 2]), labelled.classes))
    splits = build_datasets("stl10", val_fraction=0.25, seed=0)
    _, held = holdout_indices(labelled.labels, 0.25, seed=0)
    assert held.size == 3 and sorted(splits.val.labels.tolist()) == [0, 1, 2]
    assert splits.val.data[:, 0, 0, 0].tolist() == held.tolist()  # pixel value = index
    assert len(splits.eval_train) == 9 and len(splits.train) == 29  # 32 less the 3 held out
    assert not set(splits.train.data[:, 0, 0, 0].tolist()) & set(held.tolist())


@pytest.mark.slow  # ~15 s: a run, then three evaluations
def test_pretrain_monitors_on_the_held_out_images_and_eval_rebuilds_them(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["pretrain", *tiny_overrides(out, epochs=1), "data.val_fraction=0.2"]) == 0
    assert "# note: data.val_fraction=0.2: 40 of the 192 training images" in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["val_fraction"] == 0.2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_images"] == 152 and summary["val_images"] == 40
    assert summary["monitor_split"] == "held-out 20% of train" and summary["knn_top1_student"] is not None

    run = load_run(out)
    data = build_eval_data(run, split="val")
    full = build_datasets(None, synthetic_options={"num_samples": 192, "val_num_samples": 96})
    kept, held = holdout_indices(full.train.targets, 0.2, seed=0)  # what training held out
    assert np.array_equal(data.val.images, full.train.images[held])
    assert np.array_equal(data.train.images, full.train.images[kept])
    assert len(build_eval_data(run).val) == 96  # the default: the test split, as before
    assert main(["eval", "knn", str(out), "--split", "val", "--encoder", "student", "--k", "5"]) == 0
    assert "152 train / 40 val images" in capsys.readouterr().out

    from resmo.train.plan import decided

    run = dataclasses.replace(run, config=decided(run.config, {"data": {"val_fraction": None}}))
    with pytest.raises(ValueError, match=r"^--split val needs a run trained with data.val_fraction"):
        build_eval_data(run, split="val")
    code = main(["pretrain", *tiny_overrides(tmp_path / "bad", epochs=1), "data.val_fraction=1"])
    assert code == 2 and "data.val_fraction=1" in capsys.readouterr().err
