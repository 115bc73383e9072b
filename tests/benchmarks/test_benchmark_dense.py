"""The CIFAR-10 scenes dense benchmark: its steps (the detection benchmark's pretraining), its
saved records and its paired intervals."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from benchmarks import dense_scenes, detection_scenes, render_docs
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


def test_the_steps_are_the_arms_seed_by_seed_and_the_protocols_pretrain_as_detection_does():
    assert dense_scenes.keys(BUDGET)[:5] == ["densecl-w0-s0", "densecl-w1-s0", "mocov3-w0-s0", "mocov3-w1-s0",
                                             "densecl-w0-s1"]
    pilot, confirm = dense_scenes.PROTOCOLS["pilot"], dense_scenes.PROTOCOLS["confirm"]
    assert pilot.seeds == (0, 1, 2) and len(confirm.seeds) >= 5
    assert not set(pilot.seeds) & set(confirm.seeds)  # the confirmatory seeds are fresh
    for budget in (pilot, confirm):
        assert budget.pretrain.seeds == budget.seeds
        # only the seeds differ from detection_scenes.py's full protocol: the same pretraining
        # command, hence the same run folders
        assert replace(budget, seeds=(0,), pretrain=replace(budget.pretrain, seeds=(0,))) == \
            replace(pilot, seeds=(0,), pretrain=replace(pilot.pretrain, seeds=(0,)))
    assert detection_scenes.run_folder(pilot.pretrain, "mocov3-w1-s2", Path("W")) == \
        detection_scenes.run_folder(detection_scenes.PROTOCOLS["full"], "mocov3-w1-s2", Path("W"))


def test_a_step_pretrains_then_probes_the_student_and_a_finished_step_is_kept(tmp_path, monkeypatch):
    calls = []

    def fake_resmo(arguments):
        calls.append(arguments)
        out = Path(arguments[arguments.index("--out") + 1])
        if arguments[0] == "pretrain":
            out.mkdir(parents=True, exist_ok=True)
            (out / "summary.json").write_text(json.dumps({"images_per_second": 5.0}))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"results": {"student": {"mIoU": 30.0, "pixel_accuracy": 80.0},
                                                   "random_init": {"mIoU": 20.0, "pixel_accuracy": 70.0}}}))

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
    text = "\n".join(render_docs.dense_section(summary))
    assert "### Pilot (exploratory)" in text and "### Confirmatory seeds" not in text
    assert "| DenseCL | 21.00 ± 1.00 | 71.00 ± 1.00 |" in text and "| random init | 11.00 ± 1.00 | 60.00 ± 0.00 |" in text
    # differences 10, 11, 9: mean 10, sd 1, half width 4.302653 / sqrt(3) = 2.48
    assert "- DenseCL minus random init: +10.00 [+7.52, +12.48]" in text
    assert "- MoCo v3: ResMo (λ=1) minus λ=0: +0.00 [-2.48, +2.48]; exploratory (the pilot)." in text
    assert "Not measured yet: `python -m benchmarks.dense_scenes --protocol pilot`" in "\n".join(render_docs.dense_section(None))
