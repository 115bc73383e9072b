"""The CIFAR-10 scenes detection benchmark: its steps, its cache and its table."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from benchmarks import detection_scenes, render_docs
from benchmarks.results_io import save_json

SMOKE = detection_scenes.PROTOCOLS["smoke"]
BUDGET = detection_scenes.Budget(num_train=10, num_test=5, num_unlabelled=20, seeds=(0, 1))
AP = {  # (AP, AP50, AP75) per arm, seeds 0 and 1
    "densecl-w0": ((10.0, 20.0, 5.0), (12.0, 22.0, 7.0)),
    "densecl-w1": ((11.0, 21.0, 6.0), (12.5, 22.0, 8.0)),
    "mocov3-w0": ((8.0, 18.0, 4.0), (9.0, 19.0, 4.0)),
    "mocov3-w1": ((7.0, 17.0, 3.0), (9.5, 19.0, 5.0)),
    "random-init": ((4.0, 10.0, 1.0), (5.0, 11.0, 2.0)),
}


def record(key: str) -> dict:
    arm, seed = detection_scenes.parse_key(key)
    ap, ap50, ap75 = AP[arm][seed]
    row = {"key": key, "arm": arm, "seed": seed, "budget": asdict(BUDGET), "code": {"commit": None},
           "detect": {"command": "resmo transfer detect RUN --data SCENES", "AP": ap, "AP50": ap50, "AP75": ap75}}
    if arm != "random-init":
        row["pretrain"] = {"command": f"resmo pretrain --method {arm.split('-')[0]}"}
    return row


def test_every_arm_and_the_random_init_baseline_has_a_step_per_seed():
    assert detection_scenes.keys(BUDGET) == [
        "densecl-w0-s0", "densecl-w1-s0", "mocov3-w0-s0", "mocov3-w1-s0", "random-init-s0",
        "densecl-w0-s1", "densecl-w1-s1", "mocov3-w0-s1", "mocov3-w1-s1", "random-init-s1"]
    assert detection_scenes.parse_key("random-init-s12") == ("random-init", 12)


def test_the_commands_carry_the_arm_the_seed_and_the_budget():
    pretrain = detection_scenes.pretrain_arguments(SMOKE, "densecl", 1.0, 3, "SCENES/unlabelled", "RUN")
    assert pretrain[:4] == ["pretrain", "--method", "densecl", "--backbone"] and "resnet18" in pretrain
    assert pretrain[pretrain.index("--resmo-weight") + 1] == "1.0" and pretrain[pretrain.index("--seed") + 1] == "3"
    assert f"data.image_size={SMOKE.pretrain_size}" in pretrain and "--resume" in pretrain
    assert "optimizer.name=sgd" in pretrain and "optimizer.lr=0.01875" in pretrain  # 0.3 per 256, batch 16
    assert "method_options.densecl.momentum=0.99" in pretrain and "method_options.densecl.final_momentum=1.0" in pretrain
    detect = detection_scenes.detect_arguments(SMOKE, "RUN", "SCENES", 3, "OUT.json", random_init=True)
    assert detect[:3] == ["transfer", "detect", "RUN"] and "--random-init" in detect
    assert detect[detect.index("--encoder") + 1] == "student"
    assert detect[detect.index("--seeds") + 1] == "3" and detect[detect.index("--eval-split") + 1] == "test"
    assert detect[detect.index("--rois-per-image") + 1] == str(SMOKE.rois_per_image)
    assert "--random-init" not in detection_scenes.detect_arguments(SMOKE, "RUN", "SCENES", 0, "O", random_init=False)


def test_a_cached_step_counts_only_for_the_budget_it_was_made_with(tmp_path):
    path = tmp_path / "densecl-w0-s0.json"
    assert detection_scenes.cached(path, BUDGET) is None
    save_json(path, record("densecl-w0-s0"))
    assert detection_scenes.cached(path, BUDGET)["detect"]["AP"] == 10.0
    assert detection_scenes.cached(path, SMOKE) is None


def test_a_budget_that_changes_the_pretraining_gets_new_run_folders(tmp_path):
    folder = detection_scenes.run_folder(BUDGET, "densecl-w1-s0", tmp_path)
    assert folder.parent == tmp_path / "runs" and folder.name.startswith("densecl-w1-s0-")
    assert detection_scenes.run_folder(BUDGET, "densecl-w1-s1", tmp_path) != folder
    assert detection_scenes.run_folder(BUDGET, "densecl-w0-s0", tmp_path) != folder
    # other pretraining settings: another folder, never a resumed run made with the old ones
    assert detection_scenes.run_folder(replace(BUDGET, pretrain_lr_per_256=0.1), "densecl-w1-s0", tmp_path) != folder
    assert detection_scenes.run_folder(replace(BUDGET, pretrain_epochs=2), "densecl-w1-s0", tmp_path) != folder
    # fine-tuning settings do not change the pretraining: the same folder is reused
    assert detection_scenes.run_folder(replace(BUDGET, detect_epochs=9.0), "densecl-w1-s0", tmp_path) == folder
    # random init borrows its seed's first arm for the architecture
    assert detection_scenes.run_folder(BUDGET, "random-init-s1", tmp_path) == \
        detection_scenes.run_folder(BUDGET, "densecl-w0-s1", tmp_path)


def test_a_step_pretrains_and_fine_tunes_in_its_run_folder(tmp_path, monkeypatch):
    calls = []

    def fake_resmo(arguments):
        calls.append(arguments)
        out = Path(arguments[arguments.index("--out") + 1])
        if arguments[0] == "pretrain":
            out.mkdir(parents=True)
            (out / "summary.json").write_text(json.dumps({"images_per_second": 5.0}))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"mean": {"AP": 1.0, "AP50": 2.0, "AP75": 0.5}}))

    monkeypatch.setattr(detection_scenes, "resmo", fake_resmo)
    row = detection_scenes.run_step(BUDGET, "mocov3-w1-s1", tmp_path / "scenes", tmp_path / "work")
    folder = str(detection_scenes.run_folder(BUDGET, "mocov3-w1-s1", tmp_path / "work"))
    assert [c[0] for c in calls] == ["pretrain", "transfer"]
    assert calls[0][calls[0].index("--out") + 1] == folder and calls[1][2] == folder
    assert row["detect"]["AP"] == 1.0 and row["pretrain"]["images_per_second"] == 5.0
    assert "--out RUN" in row["pretrain"]["command"] and "RUN --data SCENES" in row["detect"]["command"]


def test_the_summary_and_the_table_give_means_stds_and_paired_differences():
    records = {key: record(key) for key in detection_scenes.keys(BUDGET)}
    scenes = {"command": "python -m benchmarks.cifar10_scenes --out '/home/a b/scenes' --num-train 10", "objects": [2, 4],
              "images": {"train": 10, "test": 5, "unlabelled": 30}}
    summary = detection_scenes.summarise(BUDGET, records, scenes, "full")
    densecl = summary["arms"]["densecl-w0"]["AP"]
    assert densecl["per_seed"] == [10.0, 12.0] and densecl["mean"] == 11.0
    assert densecl["std"] == pytest.approx(2 ** 0.5)
    text = "\n".join(render_docs.detection_section(summary))
    assert "| DenseCL | 11.00 ± 1.41 | 21.00 ± 1.41 | 6.00 ± 1.41 |" in text
    assert "| random init | 4.50 ± 0.71 |" in text
    assert "DenseCL + ResMo (λ=1) against DenseCL, paired by seed: AP +0.75 (per seed: +1.00, +0.50)" in text
    assert "MoCo v3 + ResMo (λ=1) against MoCo v3, paired by seed: AP -0.25 (per seed: -1.00, +0.50)" in text
    assert "MoCo v3 + ResMo (λ=1) against random init, paired by seed: AP +3.75 (per seed: +3.00, +4.50)" in text
    assert "Best pretrained arm (DenseCL + ResMo (λ=1)) against random init: AP +7.25 (ahead" in text
    assert "`resmo transfer detect` of its student" in text and "SGD at lr 0.3 per 256 images" in text
    assert "**Code not recorded**" in text  # the records above name no commit
    assert "Scenes: `python -m benchmarks.cifar10_scenes --out SCENES_FOLDER --num-train 10`" in text


def test_the_stems_of_the_students_are_measured_from_their_run_folders(tmp_path):
    import torch

    from benchmarks import detection_stems

    budget = replace(BUDGET, seeds=(0,))
    for value, key in enumerate(("densecl-w0-s0", "densecl-w1-s0", "mocov3-w0-s0", "mocov3-w1-s0"), start=1):
        folder = detection_scenes.run_folder(budget, key, tmp_path)
        folder.mkdir(parents=True)
        state = {"net.conv1.weight": torch.full((2, 1, 2, 2), float(value)), "net.bn1.running_var": torch.tensor([1.0, 3.0 * value])}
        torch.save({"backbone": "resnet18", "state_dict": state}, folder / "student_backbone.pt")
    measured = detection_stems.measure(budget, tmp_path, tmp_path / "results")
    # ‖c · 1‖ over 8 weights = c · √8; mean(1, 3c) = (1 + 3c) / 2
    assert measured["arms"]["densecl-w0"]["conv1_norm"] == [round(8 ** 0.5, 4)]
    assert measured["arms"]["mocov3-w1"]["conv1_norm"] == [round(4 * 8 ** 0.5, 4)]
    assert measured["arms"]["mocov3-w0"]["bn1_running_var"] == [5.0]
    assert "random-init" not in measured["arms"] and measured["init"]["bn1_running_var"] == 1.0
    assert 2.0 < measured["init"]["conv1_norm"] < 3.0  # torchvision's kaiming init of a 64x3x7x7 conv
    text = "\n".join(render_docs.stems_lines({"command": "python -m benchmarks.detection_stems", "date": "2026-12-04",
                                              **measured, "steps_code_commits": ["abcdef0123"],
                                              "code": {"commit": "1234567abc"}}))
    assert "(`python -m benchmarks.detection_stems` at `1234567`, 2026-12-04, runs made at `abcdef0`)" in text
    assert "- MoCo v3 + ResMo (λ=1): ‖conv1.weight‖ 11.31; bn1 running variance 6.5." in text


def test_stems_are_not_measured_without_the_runs(tmp_path):
    from benchmarks import detection_stems

    with pytest.raises(SystemExit, match="student_backbone.pt is missing; run python -m benchmarks.detection_scenes first"):
        detection_stems.measure(replace(BUDGET, seeds=(0,)), tmp_path, tmp_path / "results")
