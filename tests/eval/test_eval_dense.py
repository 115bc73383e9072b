"""``resmo eval dense``: the dense probe end to end on a generated VOC segmentation folder
(32-px grey images with a red "cat" or blue "dog" square, masks as palette PNGs) and a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval_helpers import assert_one_line_error, make_run, run_cli
from resmo.eval.dense_voc import voc_palette

COLOURS = ((220, 40, 40), (40, 40, 220))  # classes.txt: cat, dog -> labels 1, 2


def make_segmentation(root: Path, *, num_train: int = 8, num_val: int = 4, size: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("cat\ndog\n")
    ids = []
    for index in range(num_train + num_val):
        image = np.full((size, size, 3), 128, np.uint8)
        mask = np.zeros((size, size), np.uint8)
        label = int(rng.integers(0, 2))
        side = int(rng.integers(8, 17))
        x, y = (int(v) for v in rng.integers(0, size - side, 2))
        image[y:y + side, x:x + side] = COLOURS[label]
        mask[y:y + side, x:x + side] = label + 1
        mask[y, x:x + side] = 255  # a void border line
        png = Image.frombytes("P", (size, size), mask.tobytes())
        png.putpalette([c for colour in voc_palette() for c in colour])
        ids.append(f"{index:04d}")
        Image.fromarray(image).save(root / "JPEGImages" / f"{ids[-1]}.jpg", quality=95)
        png.save(root / "SegmentationClass" / f"{ids[-1]}.png")
    sets = root / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("".join(f"{i}\n" for i in ids[:num_train]))
    (sets / "val.txt").write_text("".join(f"{i}\n" for i in ids[num_train:]))
    return root


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    run = make_run(root / "run", "data.synthetic.val_num_samples=16", "monitor.knn_every_epochs=0",
                   epochs=1, samples=32)
    return run, make_segmentation(root / "seg")


FAST = ["--epochs", "5", "--lr", "0.05", "--batch-size", "4", "--device", "cpu"]


def test_dense_probe_of_both_encoders_and_random_init_is_saved_with_the_eval_header(dense_run, capsys):
    run, seg = dense_run
    code, out, err = run_cli(["eval", "dense", run, "--data", seg, *FAST], capsys)
    assert code == 0, err
    path = Path(out.strip().splitlines()[-1].removeprefix("saved "))
    assert path.parent == run / "eval" and path.name.startswith("dense-seg-") and path.name.endswith("-train-val.json")
    payload = json.loads(path.read_text())
    assert payload["kind"] == "dense" and payload["num_train"] == 8 and payload["num_val"] == 4
    assert payload["classes"] == ["background", "cat", "dog"] and payload["num_classes"] == 3
    assert payload["settings"]["stages"] == [4] and payload["settings"]["image_size"] == 32
    assert set(payload["results"]) == {"student", "teacher", "random_init"}
    for scores in payload["results"].values():
        assert 0 <= scores["mIoU"] <= 100 and 0 <= scores["pixel_accuracy"] <= 100
        assert set(scores["iou"]) == {"background", "cat", "dog"}
    student, teacher = payload["results"]["student"], payload["results"]["teacher"]
    assert payload["teacher_minus_student"]["mIoU"] == pytest.approx(teacher["mIoU"] - student["mIoU"])
    assert payload["minus_random_init"]["student"]["mIoU"] == pytest.approx(
        student["mIoU"] - payload["results"]["random_init"]["mIoU"])
    for name in ("student", "teacher", "random_init"):
        assert any(line.split()[0] == name for line in out.splitlines())


def test_the_same_seed_gives_the_same_scores_and_the_random_init_follows_the_seed(dense_run, tmp_path, capsys):
    run, seg = dense_run
    results = []
    for seed, name in ((3, "a"), (3, "b"), (4, "c")):
        code, _, err = run_cli(["eval", "dense", run, "--data", seg, "--encoder", "student", "--stages", "3,4",
                                "--seed", seed, "--out", tmp_path / f"{name}.json", *FAST], capsys)
        assert code == 0, err
        results.append(json.loads((tmp_path / f"{name}.json").read_text())["results"])
    first, again, other = results
    assert first == again
    assert first["student"]["feature_map"][0] == 32 + 64  # resnet_small width 8: stages 3 and 4 concatenated
    assert other["random_init"] != first["random_init"]


@pytest.mark.parametrize(("extra", "fragments"), [
    (["--val-split", "test"], ("Segmentation/test.txt does not exist", "train, val")),
    (["--stages", "5"], ("--stages 5 is not valid",)),
    (["--image-size", "0"], ("--image-size: '0' is not an integer >= 1",)),
])
def test_bad_input_is_a_one_line_error(dense_run, capsys, extra, fragments):
    run, seg = dense_run
    code, _, err = run_cli(["eval", "dense", run, "--data", seg, *FAST, *extra], capsys)
    assert_one_line_error(code, err, *fragments)


def test_a_label_outside_the_classes_names_the_mask(dense_run, tmp_path, capsys):
    run, _ = dense_run
    bad = make_segmentation(tmp_path / "bad", num_train=2, num_val=1)
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(bad / "SegmentationClass" / "0001.png")
    code, _, err = run_cli(["eval", "dense", run, "--data", bad, *FAST], capsys)
    assert_one_line_error(code, err, "SegmentationClass/0001.png: label 7 is outside the 3 classes")
