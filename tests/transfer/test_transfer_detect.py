"""``resmo transfer detect``: Faster R-CNN (R-C4 or FPN) fine-tuned on a run's backbone, on a VOC folder.

End to end on a generated VOC folder (64-px images with one or two coloured rectangles) and a
one-epoch ResNet-18 run with the ImageNet stem; the VOC reader's one-line errors; the
refusal of a CIFAR-stem run.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eval_helpers import assert_one_line_error, make_run, run_cli
from resmo.eval.runs import load_run
from resmo.transfer.detect import export_state
from resmo.transfer.detector import backbone_state, build_detector, check_detection_backbone
from resmo.transfer.settings import TrainingRequest, resolve_settings
from resmo.transfer.train_detect import evaluate, flip, learning_rate, train
from resmo.transfer.voc import VOC_CLASSES, VOCDetection, VOCError, read_classes, read_split

pytest.importorskip("torchmetrics")
pytest.importorskip("pycocotools")

COLOURS = {"cat": (220, 40, 40), "dog": (40, 40, 220)}
FAST = ["--iterations", "2", "--batch-size", "2", "--image-size", "64", "--device", "cpu"]


def write_xml(path: Path, filename: str, width: int, height: int, objects) -> None:
    """A VOC annotation; ``objects``: ``(name, (xmin, ymin, xmax, ymax)[, difficult])``, 1-based."""
    parts = [f"<annotation><filename>{filename}</filename><size><width>{width}</width>"
             f"<height>{height}</height><depth>3</depth></size>"]
    for name, (x1, y1, x2, y2), *rest in objects:
        parts.append(f"<object><name>{name}</name><difficult>{rest[0] if rest else 0}</difficult><bndbox>"
                     f"<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
    path.write_text("".join(parts) + "</annotation>")


def make_voc(root: Path, *, num_train: int = 6, num_val: int = 4, size: int = 64, seed: int = 0) -> Path:
    """A VOC folder of ``size``-px grey images, each with 1-2 rectangles (red: cat, blue: dog)."""
    rng = np.random.default_rng(seed)
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {"train": [], "val": []}
    for index in range(num_train + num_val):
        image = np.full((size, size, 3), 128, np.uint8)
        objects = []
        for name in rng.choice(sorted(COLOURS), size=int(rng.integers(1, 3))):
            w, h = (int(v) for v in rng.integers(16, 32, size=2))
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            image[y:y + h, x:x + w] = COLOURS[str(name)]
            objects.append((str(name), (x + 1, y + 1, x + w, y + h)))
        image_id = f"{index:06d}"
        Image.fromarray(image).save(root / "JPEGImages" / f"{image_id}.jpg")
        write_xml(root / "Annotations" / f"{image_id}.xml", f"{image_id}.jpg", size, size, objects)
        splits["train" if index < num_train else "val"].append(image_id)
    for split, ids in splits.items():
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory):
    """A one-epoch ResNet-18 run with the ImageNet stem (what a detector needs)."""
    root = tmp_path_factory.mktemp("transfer")
    return make_run(root / "run", "backbone=resnet18", "backbone_options.resnet18={cifar_stem: false}",
                    "data.image_size=32", "data.synthetic.val_num_samples=16", "monitor.knn_every_epochs=0",
                    epochs=1, samples=32)


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return make_voc(tmp_path_factory.mktemp("voc") / "tiny")


@pytest.mark.slow  # ~9 s: two fine-tunings
def test_fine_tuning_two_seeds_of_the_student_by_default_writes_ap_json_with_finite_losses(detection_run, voc, capsys):
    code, out, err = run_cli(["transfer", "detect", detection_run, "--data", voc, "--seeds", "0,1", *FAST,
                              "--rois-per-image", "64", "--proposals", "200", "--train-sizes", "48,64"], capsys)
    assert code == 0, err
    path = detection_run / "transfer" / "detect-student-tiny.json"  # the default encoder
    assert f"saved {path}" in out and "mean over 2 seeds: AP" in out
    payload = json.loads(path.read_text())
    assert payload["init"] == payload["encoder"] == "student" and payload["backbone"] == "resnet18"
    assert payload["train_split"] == "train" and payload["eval_split"] == "val"  # no test.txt
    assert payload["num_train"] == 6 and payload["num_eval"] == 4 and payload["classes"] == list(VOC_CLASSES)
    assert payload["settings"]["iterations"] == 2 and payload["settings"]["min_size"] == 64
    assert payload["settings"]["rois_per_image"] == 64 and payload["settings"]["proposals"] == 200
    assert payload["settings"]["train_sizes"] == [48, 64] and payload["settings"]["job"]["train_sizes"] == [48, 64]
    assert payload["settings"]["lr"] == pytest.approx(0.02 * 2 / 16) and payload["settings"]["log_every"] == 1
    job = payload["settings"]["job"]  # as asked: the flat command-line options
    assert (job["iterations"], job["epochs"], job["lr"], job["device"], job["max_size"]) == (2, None, None, "cpu", 107)
    assert [entry["seed"] for entry in payload["seeds"]] == [0, 1]
    for entry in payload["seeds"]:
        assert all(math.isfinite(entry[key]) for key in ("loss_first", "loss_last", "loss_mean"))
        assert all(0 <= entry[key] <= 100 for key in ("AP", "AP50", "AP75", "VOC07_AP50"))
    assert set(payload["mean"]) == set(payload["std"]) == {"AP", "AP50", "AP75", "VOC07_AP", "VOC07_AP50", "VOC07_AP75"}
    assert payload["mean"]["AP50"] == pytest.approx(np.mean([e["AP50"] for e in payload["seeds"]]), abs=1e-3)
    assert payload["std"]["AP"] == pytest.approx(np.std([e["AP"] for e in payload["seeds"]], ddof=1), abs=1e-3)


def test_the_detectors_backbone_holds_the_exported_weights(detection_run, capsys):
    code, _, err = run_cli(["export", detection_run, "--encoder", "teacher"], capsys)
    assert code == 0, err
    exported = torch.load(detection_run / "export" / "teacher-resnet18.pt", weights_only=True)
    name, state = export_state(load_run(detection_run), "teacher")  # what transfer detect loads
    for head in ("c4", "fpn"):
        for norm in ("batch", "frozen"):
            body = backbone_state(build_detector(name, 2, state=state, min_size=64, max_size=64, norm=norm, head=head))
            kept = {key: value for key, value in exported.items()
                    if norm == "batch" or not key.endswith("num_batches_tracked")}
            assert set(body) == set(kept), (head, norm)
            assert all(torch.equal(body[key], value) for key, value in kept.items()), (head, norm)
        torch.manual_seed(123)  # not the run's seed: its one step left torchvision's seed-0 init nearly as it was
        random = backbone_state(build_detector(name, 2, state=None, min_size=64, max_size=64, head=head))
        assert not torch.equal(random["layer1.0.conv1.weight"], exported["layer1.0.conv1.weight"])


def test_random_init_baseline_writes_its_own_file(detection_run, voc, tmp_path, capsys):
    out = tmp_path / "baseline.json"
    code, _, err = run_cli(["transfer", "detect", detection_run, "--data", voc, "--random-init", "--out", out,
                            *FAST[:1], "1", *FAST[2:]], capsys)
    assert code == 0, err
    payload = json.loads(out.read_text())
    assert payload["init"] == "random_init" and payload["encoder"] is None and len(payload["seeds"]) == 1
    assert payload["settings"]["rois_per_image"] == 512 and payload["settings"]["proposals"] is None


def test_the_box_head_and_rpn_budgets_reach_the_detector():
    def budgets(detector):
        detector.train()
        trained = detector.rpn.post_nms_top_n()
        detector.eval()
        return detector.roi_heads.fg_bg_sampler.batch_size_per_image, trained, detector.rpn.post_nms_top_n()

    torch.manual_seed(0)
    assert budgets(build_detector("resnet18", 2, state=None, min_size=64, max_size=64)) == (512, 2000, 1000)
    small = build_detector("resnet18", 2, state=None, min_size=64, max_size=64, rois_per_image=32, proposals=100)
    assert budgets(small) == (32, 100, 100)


def test_train_sizes_are_drawn_per_training_image_and_testing_keeps_one_scale(voc):
    classes = read_classes(voc)
    torch.manual_seed(0)
    detector = build_detector("resnet18", len(classes), state=None, min_size=56, max_size=200, rois_per_image=16,
                              proposals=50)
    seen: list[tuple[int, int]] = []
    detector.transform.register_forward_hook(lambda module, inputs, output: seen.extend(output[0].image_sizes))
    settings = resolve_settings(TrainingRequest(iterations=4, batch_size=3, lr=0.01, min_size=56, max_size=200,
                                                train_sizes=(32, 48), rois_per_image=16, proposals=50, device="cpu"),
                                num_train=6)
    train(detector, VOCDetection(voc, "train", classes), settings, seed=0, log=lambda line: None)
    assert set(seen) == {(32, 32), (48, 48)}  # 64-px squares, each resized to a drawn shorter side
    seen.clear()
    evaluate(detector, VOCDetection(voc, "val", classes), settings)
    assert set(seen) == {(56, 56)}


def broken_copy(voc: Path, tmp_path: Path, image_id: str, objects, *, size: int = 64) -> Path:
    import shutil

    root = tmp_path / "broken"
    shutil.copytree(voc, root)
    write_xml(root / "Annotations" / f"{image_id}.xml", f"{image_id}.jpg", size, size, objects)
    return root


@pytest.mark.parametrize("objects, fragments", [
    ([("cat", (10, 10, 70, 30))], ["000002.xml", "xmax=70", "outside the 64x64 image"]),
    ([("cat", (-3, 10, 20, 30))], ["000002.xml", "xmin=-3", "outside"]),
    ([("cat", (30, 10, 20, 30))], ["000002.xml", "xmin=30", "xmax=20", "is empty"]),
    ([("dragon", (1, 1, 20, 20))], ["000002.xml", "unknown class name 'dragon'", "--classes", "classes.txt"]),
])
def test_bad_annotations_are_one_line_errors_naming_file_and_value(detection_run, voc, tmp_path, capsys,
                                                                   objects, fragments):
    root = broken_copy(voc, tmp_path, "000002", objects)
    code, _, err = run_cli(["transfer", "detect", detection_run, "--data", root, *FAST], capsys)
    assert_one_line_error(code, err, "resmo transfer detect: error:", *fragments)


def test_a_folder_without_annotations_is_a_one_line_error(detection_run, tmp_path, capsys):
    (tmp_path / "voc" / "JPEGImages").mkdir(parents=True)
    code, _, err = run_cli(["transfer", "detect", detection_run, "--data", tmp_path / "voc", *FAST], capsys)
    assert_one_line_error(code, err, str(tmp_path / "voc"), "no Annotations/ folder")


def test_a_missing_split_names_the_file_and_the_splits_there(detection_run, voc, capsys):
    code, _, err = run_cli(["transfer", "detect", detection_run, "--data", voc, "--eval-split", "test", *FAST], capsys)
    assert_one_line_error(code, err, "test.txt does not exist", "train, val")


def test_class_names_come_from_the_flag_then_classes_txt_then_voc(voc, tmp_path):
    assert read_classes(voc) == VOC_CLASSES
    assert read_classes(voc, "dog,cat") == ("dog", "cat")
    (tmp_path / "classes.txt").write_text("# names\ndog\n\ncat\n")
    assert read_classes(tmp_path) == ("dog", "cat")
    with pytest.raises(VOCError, match="'dog' is listed twice"):
        read_classes(tmp_path, "dog,cat,dog")
    records = read_split(voc, "train", ("dog", "cat"))
    labels = {o.name: o.label for r in records for o in r.objects}
    assert labels == {"dog": 1, "cat": 2}


def test_boxes_become_0_based_xyxy_and_difficult_objects_are_ignore_regions(voc, tmp_path):
    root = broken_copy(voc, tmp_path, "000000", [("cat", (1, 2, 20, 30)), ("dog", (5, 5, 64, 64), 1)])
    image, target = VOCDetection(root, "train", VOC_CLASSES)[0]
    assert image.shape == (3, 64, 64) and 0 <= float(image.min()) <= float(image.max()) <= 1
    assert target["boxes"].tolist() == [[0, 1, 20, 30], [4, 4, 64, 64]]
    assert target["labels"].tolist() == [VOC_CLASSES.index("cat") + 1, VOC_CLASSES.index("dog") + 1]
    assert target["iscrowd"].tolist() == [0, 1]
    flipped, moved = flip(image, target)
    assert torch.equal(flipped[..., 0], image[..., -1]) and moved["boxes"][0].tolist() == [44, 1, 64, 30]


def test_the_schedule_warms_up_and_steps_down():
    settings = resolve_settings(TrainingRequest(iterations=1000, lr=0.02, device="cpu"), num_train=1)
    assert learning_rate(settings, 0) == pytest.approx(0.02 * 0.001)
    assert learning_rate(settings, 100) == learning_rate(settings, 749) == pytest.approx(0.02)
    assert learning_rate(settings, 750) == pytest.approx(0.002)
    assert learning_rate(settings, 999) == pytest.approx(0.0002)


@pytest.mark.slow  # ~5 s: trains a run to refuse it (tests/export covers the refusal in the fast lane)
def test_a_cifar_stem_run_is_refused_in_one_line(voc, tmp_path, capsys):
    run = make_run(tmp_path / "cifar", "backbone=resnet18", "data.image_size=16",
                   "data.synthetic.val_num_samples=16", "monitor.knn_every_epochs=0", epochs=1, samples=32)
    capsys.readouterr()  # the training run's own lines
    code, _, err = run_cli(["transfer", "detect", run, "--data", voc, *FAST], capsys)
    assert_one_line_error(code, err, "CIFAR stem", "ImageNet stem", "cifar_stem=false")


def test_other_backbones_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="needs a ResNet backbone .*'resnet_small'"):
        check_detection_backbone("resnet_small", {})


def test_without_torchmetrics_the_error_names_the_pip_command(detection_run, voc, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torchmetrics.detection", None)  # import -> ImportError
    code, _, err = run_cli(["transfer", "detect", detection_run, "--data", voc, *FAST], capsys)
    assert_one_line_error(code, err, "torchmetrics", "pip install 'resmo[detect]'")


def test_a_device_the_machine_lacks_is_refused_before_any_work(detection_run, voc, capsys):
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    code, _, err = run_cli(["transfer", "detect", detection_run, "--data", voc, "--device", "cuda:7"], capsys)
    assert_one_line_error(code, err, "--device cuda:7", "use --device auto or cpu")
