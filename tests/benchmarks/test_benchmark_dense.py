"""The CIFAR-10 scenes dense benchmark: its steps (the detection benchmark's pretraining), its
saved records and its paired intervals."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from benchmarks import dense_scenes, detection_scenes, object_pretraining, render_docs
from benchmarks.object_pretraining import ObjectsBudget
from benchmarks.results_io import save_json

BUDGET = dense_scenes.DenseBudget(detection_scenes.Budget(num_train=10, num_test=5, num_unlabelled=20, seeds=(0, 1, 2)),
                                  seeds=(0, 1, 2))
MIOU = {  # student mIoU per arm and seed 0, 1, 2; random init 10, 11, 12
    "densecl-w0": (20.0, 22.0, 21.0),
    "densecl-w1": (21.0, 23.0, 23.0),
    "mocov3-w0": (11.0, 13.0, 15.0),
    "mocov3-w1": (12.0, 13.0, 14.0),
}


def record(key: str) -> dict:
    arm, seed = detection_scenes.parse_key(key)
    return {"key": key, "arm": arm, "seed": seed, "budget": asdict(BUDGET), "code": {"commit": None},
            "pretrain": {"command": f"resmo pretrain --method {arm.split('-')[0]}"},
            "dense": {"command": "resmo eval dense RUN --data SCENES",
                      "student": {"mIoU": MIOU[arm][seed], "pixel_accuracy": 50.0 + MIOU[arm][seed]},
                      "random_init": {"mIoU": 10.0 + seed, "pixel_accuracy": 60.0}}}


def fake_commands(calls: list[list[str]], pretrain_summary: dict):
    """A stand-in for the ``resmo`` child process: records each command, writes a pretraining
    run's ``summary.json`` or a dense probe's result (student 30 / 80, random init 20 / 70)."""

    def fake_resmo(arguments: list[str]) -> None:
        calls.append(arguments)
        out = Path(arguments[arguments.index("--out") + 1])
        if arguments[0] == "pretrain":
            out.mkdir(parents=True, exist_ok=True)
            (out / "summary.json").write_text(json.dumps(pretrain_summary))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"results": {"student": {"mIoU": 30.0, "pixel_accuracy": 80.0},
                                                   "random_init": {"mIoU": 20.0, "pixel_accuracy": 70.0}}}))

    return fake_resmo


def test_the_steps_are_the_arms_seed_by_seed_and_the_protocols_pretrain_as_detection_does():
    assert dense_scenes.keys(BUDGET)[:5] == ["densecl-w0-s0", "densecl-w1-s0", "mocov3-w0-s0", "mocov3-w1-s0",
                                             "densecl-w0-s1"]
    pilot = dense_scenes.PROTOCOLS["pilot"]
    assert pilot.seeds == pilot.pretrain.seeds == (0, 1, 2) and pilot.eval_split == "test"
    # only the seeds differ from detection_scenes.py's full protocol: the same pretraining
    # command, hence the same run folders
    assert replace(pilot.pretrain, seeds=(0,)) == replace(detection_scenes.PROTOCOLS["full"], seeds=(0,))
    assert detection_scenes.run_folder(pilot.pretrain, "mocov3-w1-s2", Path("W")) == \
        detection_scenes.run_folder(detection_scenes.PROTOCOLS["full"], "mocov3-w1-s2", Path("W"))
    # fields added later are left out of the scenes pilot's saved budget, so its steps stay valid
    assert dense_scenes.settings(pilot) == {k: v for k, v in asdict(pilot).items()
                                            if k not in ("eval_split", "scenes", "arms")}


def test_fields_added_later_are_left_out_of_the_saved_budget_at_their_old_values_only():
    confirm = dense_scenes.PROTOCOLS["confirm"]
    saved = dense_scenes.settings(confirm)
    assert "arms" not in saved and "densecl_options" not in saved["pretrain"]
    changed = dense_scenes.settings(replace(confirm, arms=("densecl-w0",),
                                            pretrain=replace(confirm.pretrain, densecl_options=("queue_size=4096",))))
    assert changed["arms"] == ("densecl-w0",) and changed["pretrain"]["densecl_options"] == ("queue_size=4096",)


def test_densecl_options_reach_densecl_pretraining_only():
    budget = replace(ObjectsBudget(), densecl_options=("queue_size=4096",))
    densecl = object_pretraining.pretrain_arguments(budget, "densecl", 0.0, 3, "DATA", "OUT")
    mocov3 = object_pretraining.pretrain_arguments(budget, "mocov3", 0.0, 3, "DATA", "OUT")
    assert densecl[-1] == "method_options.densecl.queue_size=4096"
    assert not any("queue_size" in argument for argument in mocov3)
    assert mocov3 == object_pretraining.pretrain_arguments(ObjectsBudget(), "mocov3", 0.0, 3, "DATA", "OUT")


def test_a_protocol_of_some_arms_steps_and_summarises_those_arms_only():
    budget = replace(BUDGET, arms=("densecl-w0", "densecl-w1"))
    assert dense_scenes.keys(budget)[:3] == ["densecl-w0-s0", "densecl-w1-s0", "densecl-w0-s1"]
    summary = dense_scenes.summarise(budget, {key: record(key) for key in dense_scenes.keys(budget)}, "x")
    assert list(summary["arms"]) == ["densecl-w0", "densecl-w1", "random-init"]
    assert summary["arms"]["random-init"]["mIoU"]["per_seed"] == [10.0, 11.0, 12.0]
    assert list(summary["resmo_minus_plain"]["mIoU"]) == ["densecl"]
    assert summary["resmo_minus_plain"]["mIoU"]["densecl"]["per_seed"] == [1.0, 1.0, 2.0]
    assert list(summary["pretrained_minus_random_init"]["mIoU"]) == ["densecl-w0", "densecl-w1"]


def test_the_object_protocols_differ_only_in_seeds_and_split_and_the_pilot_leaves_the_test_scenes_unread():
    pilot, confirm = dense_scenes.PROTOCOLS["objects-pilot"], dense_scenes.PROTOCOLS["confirm"]
    assert isinstance(confirm.pretrain, ObjectsBudget) and confirm.scenes == (500, 300, 300)
    assert pilot.eval_split == "val" and confirm.eval_split == "test"
    assert replace(pilot, seeds=(), eval_split="test") == replace(confirm, seeds=())
    assert len(confirm.seeds) >= 5
    used = set(dense_scenes.PROTOCOLS["pilot"].seeds) | set(pilot.seeds) | set(detection_scenes.PROTOCOLS["full"].seeds)
    assert not used & set(confirm.seeds)  # the confirmatory seeds are fresh
    # the test split is the default: left out of the saved budget as in the scenes pilot's
    assert "eval_split" not in dense_scenes.settings(confirm) and dense_scenes.settings(confirm)["scenes"] == (500, 300, 300)


def test_object_protocol_scenes_have_val_scenes_and_no_unlabelled_ones(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(dense_scenes.subprocess, "run", lambda command, check: seen.append(command))
    dense_scenes.ensure_scenes(dense_scenes.PROTOCOLS["objects-pilot"], tmp_path / "scenes")
    arguments = seen[0][seen[0].index("benchmarks.cifar10_scenes") + 1:]
    assert arguments == ["--out", str(tmp_path / "scenes"), "--num-train", "500", "--num-val", "300",
                         "--num-test", "300", "--num-unlabelled", "0", "--canvas", "128"]


def test_an_object_step_pretrains_resnet_small_on_cifar10_and_probes_the_split_of_its_protocol(tmp_path, monkeypatch):
    calls: list[list[str]] = []
    fake_resmo = fake_commands(calls, {"images_per_second": 5.0, "train_images": 18000,
                                       "knn_top1_student": 30.0, "knn_top1_random_init": 20.0})
    monkeypatch.setattr(detection_scenes, "resmo", fake_resmo)
    monkeypatch.setattr(dense_scenes, "resmo", fake_resmo)
    monkeypatch.setattr("benchmarks.cifar10_folder.cifar10_folder", lambda: tmp_path / "cifar10")
    budget = dense_scenes.PROTOCOLS["objects-pilot"]
    row = dense_scenes.run_step(budget, "densecl-w1-s2", tmp_path / "scenes", tmp_path / "work")
    pretrain, probe = calls
    assert pretrain[pretrain.index("--backbone") + 1] == "resnet_small"
    assert pretrain[pretrain.index("--data") + 1] == str(tmp_path / "cifar10")
    assert pretrain[pretrain.index("--resmo-weight") + 1] == "1.0" and pretrain[pretrain.index("--seed") + 1] == "2"
    assert "data.val_fraction=0.1" in pretrain and "data.max_images=20000" in pretrain
    assert "method_options.densecl.momentum=0.96" in pretrain
    assert not any("predictor" in argument for argument in pretrain)  # DenseCL has no predictor
    assert probe[2] == str(object_pretraining.run_folder(budget.pretrain, "densecl-w1-s2", tmp_path / "work"))
    assert probe[probe.index("--val-split") + 1] == "val" and row["dense"]["split"] == "val"
    assert row["pretrain"]["knn_top1"] == {"student": 30.0, "teacher": None, "random_init": 20.0}
    assert "--data CIFAR10_FOLDER" in row["pretrain"]["command"]


def test_a_step_pretrains_then_probes_the_student_and_a_finished_step_is_kept(tmp_path, monkeypatch):
    calls: list[list[str]] = []
    fake_resmo = fake_commands(calls, {"images_per_second": 5.0})
    monkeypatch.setattr(detection_scenes, "resmo", fake_resmo)
    monkeypatch.setattr(dense_scenes, "resmo", fake_resmo)
    row = dense_scenes.run_step(BUDGET, "densecl-w1-s2", tmp_path / "scenes", tmp_path / "work")
    folder = str(detection_scenes.run_folder(BUDGET.pretrain, "densecl-w1-s2", tmp_path / "work"))
    assert [c[:2] for c in calls] == [["pretrain", "--method"], ["eval", "dense"]]
    probe = calls[1]
    assert probe[2] == folder and probe[probe.index("--seed") + 1] == "2"
    assert probe[probe.index("--val-split") + 1] == "test" and probe[probe.index("--encoder") + 1] == "student"
    assert row["dense"]["student"]["mIoU"] == 30.0 and row["dense"]["random_init"]["mIoU"] == 20.0
    assert "RUN --data SCENES" in row["dense"]["command"] and row["pretrain"]["images_per_second"] == 5.0
    path = tmp_path / "runs" / "densecl-w1-s2.json"
    save_json(path, row)
    assert dense_scenes.cached(path, BUDGET)["dense"]["student"]["mIoU"] == 30.0
    assert dense_scenes.cached(path, replace(BUDGET, epochs=3)) is None


def test_paired_t_intervals_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653 -> half width 4.302653 / sqrt(3) = 2.484138
    interval = dense_scenes.paired_interval([1.0, 2.0, 3.0])
    assert interval["mean"] == 2.0
    assert interval["low"] == pytest.approx(2 - 2.484138, abs=1e-5) and interval["high"] == pytest.approx(4.484138, abs=1e-5)
    assert interval["excludes_0"] is False
    assert dense_scenes.paired_interval([2.0, 3.0, 4.0])["excludes_0"] is True
    assert dense_scenes.paired_interval([5.0])["low"] is None


def test_the_summary_pairs_by_seed_against_random_init_and_resmo_against_plain():
    records = {key: record(key) for key in dense_scenes.keys(BUDGET)}
    summary = dense_scenes.summarise(BUDGET, records, "pilot")
    assert summary["arms"]["random-init"]["mIoU"]["per_seed"] == [10.0, 11.0, 12.0]
    densecl = summary["pretrained_minus_random_init"]["mIoU"]["densecl-w0"]
    assert densecl["per_seed"] == [10.0, 11.0, 9.0] and densecl["mean"] == 10.0 and densecl["excludes_0"]
    effect = summary["resmo_minus_plain"]["mIoU"]
    assert effect["densecl"]["per_seed"] == [1.0, 1.0, 2.0]
    assert effect["mocov3"]["per_seed"] == [1.0, 0.0, -1.0] and effect["mocov3"]["excludes_0"] is False
    assert summary["random_init_same_in_every_step"] is True
    records["mocov3-w0-s1"]["dense"]["random_init"]["mIoU"] = 99.0
    assert dense_scenes.summarise(BUDGET, records, "pilot")["random_init_same_in_every_step"] is False


def test_the_docs_section_shows_the_arms_and_the_intervals():
    summary = dense_scenes.summarise(BUDGET, {key: record(key) for key in dense_scenes.keys(BUDGET)}, "pilot")
    text = "\n".join(render_docs.dense_section({"pilot": summary}))
    assert "### Scenes pretraining pilot (exploratory)" in text and "### Confirmatory seeds" not in text
    assert "| DenseCL | 21.00 ± 1.00 | 71.00 ± 1.00 |" in text and "| random init | 11.00 ± 1.00 | 60.00 ± 0.00 |" in text
    assert "scored on the test scenes" in text and "ResNet-18 on the unlabelled scenes" in text
    # differences 10, 11, 9: mean 10, sd 1, half width 4.302653 / sqrt(3) = 2.48
    assert "- DenseCL minus random init: +10.00 [+7.52, +12.48]" in text
    assert "- MoCo v3: ResMo (λ=1) minus λ=0: +0.00 [-2.48, +2.48]; exploratory (the pilot)." in text
    assert "No pretrained arm is ahead of random init" not in text  # DenseCL's interval is above 0
    assert "Not measured yet: `python -m benchmarks.dense_scenes --protocol objects-pilot`" in \
        "\n".join(render_docs.dense_section({"pilot": None}))


def test_the_docs_say_when_no_arm_separates_from_random_init_and_name_the_object_pretraining():
    records = {key: record(key) for key in dense_scenes.keys(BUDGET)}
    for row in records.values():  # every student 0.5 above random init but one: intervals include 0
        row["dense"]["student"]["mIoU"] = row["dense"]["random_init"]["mIoU"] + (2.0 if row["seed"] == 0 else 0.5)
    summary = dense_scenes.summarise(BUDGET, records, "objects-pilot")
    summary["budget"] = dense_scenes.settings(replace(dense_scenes.PROTOCOLS["objects-pilot"], seeds=(0, 1, 2)))
    summary["pretrain_commands"] = {"densecl-w0": "resmo pretrain --method densecl --backbone resnet_small"}
    text = "\n".join(render_docs.dense_section({"objects-pilot": summary}))
    assert "### Object pretraining pilot (exploratory)" in text and "### Scenes pretraining pilot" not in text
    assert "scored on the val scenes" in text and "resnet_small on CIFAR-10's training images" in text
    assert "No pretrained arm is ahead of random init with an interval above 0" in text


def test_the_densecl_protocols_run_densecl_longer_at_fresh_seeds_and_differ_only_in_seeds_and_split():
    pilot, confirm = dense_scenes.PROTOCOLS["densecl-pilot"], dense_scenes.PROTOCOLS["densecl-confirm"]
    assert confirm.arms == ("densecl-w0", "densecl-w1") and confirm.eval_split == "test" and pilot.eval_split == "val"
    assert replace(pilot, seeds=(), eval_split="test") == replace(confirm, seeds=())
    assert confirm.pretrain.epochs == 4 and confirm.pretrain.batch_size == 128
    arguments = object_pretraining.pretrain_arguments(confirm.pretrain, "densecl", 0.0, 300, "D", "O")
    assert "method_options.densecl.queue_size=4096" in arguments
    used = {seed for name, budget in dense_scenes.PROTOCOLS.items() if name != "densecl-confirm" for seed in budget.seeds}
    assert len(confirm.seeds) >= 5 and not used & set(confirm.seeds)
    # the earlier object protocols keep their budgets (their saved steps stay valid)
    assert dense_scenes.settings(dense_scenes.PROTOCOLS["confirm"])["pretrain"] == {
        k: v for k, v in asdict(ObjectsBudget()).items() if k != "densecl_options"}


def test_the_docs_of_a_one_seed_pilot_say_there_is_no_interval_rather_than_no_separation():
    budget = replace(BUDGET, seeds=(0,), arms=("densecl-w0", "densecl-w1"))
    summary = dense_scenes.summarise(budget, {key: record(key) for key in dense_scenes.keys(budget)}, "densecl-pilot")
    text = "\n".join(render_docs.dense_section({"densecl-pilot": summary}))
    assert "### DenseCL pretrained longer: pilot (exploratory)" in text
    assert "One seed: no interval" in text and "No pretrained arm is ahead" not in text
    assert "- DenseCL minus random init: +10.00" in text  # 20 - 10, no interval
