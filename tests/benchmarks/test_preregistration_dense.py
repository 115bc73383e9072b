"""A pre-registration of the dense benchmark: its metric, its runs, its manipulation check
(student minus random init) and the gate that check puts on the decision."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import dense_scenes
from benchmarks.paired_statistics import minimal_detectable_effect
from benchmarks.preregistration_analysis import analyse
from benchmarks.preregistration_governance import violations
from benchmarks.preregistration_power import committed_differences
from benchmarks.preregistration_schema import Metric, PreregistrationError, load
from benchmarks.preregistration_sources import SOURCES
from tests.benchmarks.test_preregistration import Repository

SEEDS = (0, 1, 2)  # the pilot protocol's
#: arm -> student mIoU at seeds 0, 1, 2; random init: 10, 11, 12 at every arm
MIOU = {"densecl-w1": (14.0, 16.0, 18.0), "densecl-w0": (13.0, 14.0, 15.0),
        "mocov3-w1": (12.0, 11.0, 13.0), "mocov3-w0": (10.0, 11.0, 11.0)}


def dense_record(arm: str, seed: int, miou: float) -> dict:
    return {"key": f"{arm}-s{seed}", "arm": arm, "seed": seed, "budget": dense_scenes.settings(dense_scenes.PROTOCOLS["pilot"]),
            "machine": {"torch_threads": 1, "load_average_1min": 2.0}, "code": {"commit": "d" * 40, "dirty": False},
            "dense": {"student": {"mIoU": miou, "pixel_accuracy": 50.0 + miou},
                      "random_init": {"mIoU": 10.0 + seed, "pixel_accuracy": 60.0}}}


def write_dense_runs(results: Path) -> None:
    for arm, values in MIOU.items():
        for seed, miou in zip(SEEDS, values, strict=True):
            path = results / "pilot" / "runs" / f"{arm}-s{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(dense_record(arm, seed, miou)))


def dense_preregistration(tmp_path: Path, results: Path, *, gate: str = "true", measure: str = "mIoU") -> Path:
    path = tmp_path / "dense.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: dense-toy
        date: 2026-12-07
        benchmark: dense
        results: {results}
        manipulation_gate: {gate}
        code: {{same_commit: true, same_threads: true, clean: true}}
        primary_endpoint: {{probe: dense, encoder: student, measure: {measure}, split: test}}
        seeds: {list(SEEDS)}
        hypotheses:
          - {{id: H1, description: DenseCL, protocol: pilot, arm_treatment: densecl-w1, arm_control: densecl-w0,
             direction: two-sided, expects: higher}}
          - {{id: H2, description: MoCo v3, protocol: pilot, arm_treatment: mocov3-w1, arm_control: mocov3-w0,
             direction: two-sided, expects: higher}}
        test: paired-t
        correction: holm
        alpha: 0.05
        decision_rule: toy
        minimal_detectable_effect: {{value: {minimal_detectable_effect(1.0, 3, 0.025):.3f}, n: 3, alpha: 0.025,
                                    power: 0.8, sd: 1.0, derivation: toy}}
        secondary_endpoints:
          - {{id: pixels, metric: {{probe: dense, encoder: student, measure: pixel_accuracy, split: test}}}}
        """))
    return path


def test_a_dense_preregistration_reads_miou_and_checks_pretraining_against_random_init(tmp_path):
    results = tmp_path / "results"
    write_dense_runs(results)
    registered = load(dense_preregistration(tmp_path, results))
    assert registered.source.name == "dense" and registered.manipulation_gate
    assert registered.primary == Metric("dense", "student", "test", measure="mIoU")
    result = analyse(registered)
    first, second = result["hypotheses"]
    assert first["differences"] == pytest.approx([1.0, 2.0, 3.0])
    assert second["differences"] == pytest.approx([2.0, 0.0, 2.0])
    checks = result["manipulation_checks"]
    # DenseCL plain minus random init: 13-10, 14-11, 15-12 = 3, 3, 3 (no spread: the interval is a point above 0)
    assert checks["H1"]["difference"] == "student - random_init"
    assert checks["H1"]["differences"] == pytest.approx([3.0, 3.0, 3.0]) and checks["H1"]["passes"] is True
    # MoCo v3 plain minus random init: 0, 0, -1: the benchmark cannot show pretraining here
    assert checks["H2"]["differences"] == pytest.approx([0.0, 0.0, -1.0]) and checks["H2"]["passes"] is False
    assert result["benchmark"] == "dense" and result["manipulation_gate"] is True
    assert result["secondary_endpoints"]["pixels"]["by_hypothesis"]["H1"]["differences"] == pytest.approx([1, 2, 3])
    assert result["runs"]["load_average_1min"] == {"min": 2.0, "max": 2.0}  # each step's, from its machine


def test_the_gate_keeps_a_hypothesis_whose_manipulation_check_fails_from_being_confirmed(tmp_path, monkeypatch):
    results = tmp_path / "results"
    write_dense_runs(results)
    # make both effects clear (p tiny) so that only the gate decides
    from benchmarks import preregistration_analysis

    monkeypatch.setattr(preregistration_analysis, "holm", lambda ps: [0.001 for _ in ps])
    gated = analyse(load(dense_preregistration(tmp_path, results)))
    assert [h["confirmed"] for h in gated["hypotheses"]] == [True, False]
    ungated = analyse(load(dense_preregistration(tmp_path, results, gate="false")))
    assert [h["confirmed"] for h in ungated["hypotheses"]] == [True, True]


def test_a_dense_run_made_with_another_budget_is_refused(tmp_path):
    results = tmp_path / "results"
    write_dense_runs(results)
    path = results / "pilot" / "runs" / "mocov3-w0-s1.json"
    record = json.loads(path.read_text())
    record["budget"]["epochs"] += 1
    path.write_text(json.dumps(record))
    with pytest.raises(PreregistrationError, match=r"settings other than their protocol's current ones \(pilot/mocov3-w0-s1\)"):
        analyse(load(dense_preregistration(tmp_path, results)))


@pytest.mark.parametrize(("old", "new", "key", "message"), [
    ("measure: mIoU,", "measure: accuracy,", "primary_endpoint.measure", "not one of mIoU, pixel_accuracy"),
    ("probe: dense, encoder: student, measure: mIoU", "probe: knn, encoder: student, measure: mIoU",
     "primary_endpoint.probe", "not one of dense"),
    ("benchmark: dense", "benchmark: speed", "benchmark", "not one of quality, dense"),
    ("arm_control: mocov3-w0", "arm_control: byol-w0", "hypotheses[1].arm_control", "not an arm of protocol 'pilot'"),
    ("manipulation_gate: true", "manipulation_gate: maybe", "manipulation_gate", "not true or false"),
])
def test_a_bad_dense_key_stops_with_one_line(tmp_path, old, new, key, message):
    path = dense_preregistration(tmp_path, tmp_path / "results")
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(PreregistrationError) as error:
        load(path)
    assert str(error.value).startswith(f"{path}: {key}: ") and message in str(error.value)


def test_a_seed_a_committed_detection_result_used_is_not_fresh_for_the_dense_benchmark(tmp_path):
    repo = Repository(tmp_path)
    used = repo.write("benchmarks/results/detection/full/runs/mocov3-w0-s1.json")
    repo.commit(used)
    preregistration = repo.write("benchmarks/preregistered/dense.yaml",
                                 dense_preregistration(tmp_path, tmp_path / "benchmarks/results/dense").read_text())
    repo.commit(preregistration)
    found = violations(load(preregistration), tmp_path)
    assert len(found) == 1 and "seed 1 was used by 1 earlier committed results" in found[0]


def test_power_reads_the_committed_dense_pilot(tmp_path):
    repo = Repository(tmp_path)
    paths = [repo.write(f"benchmarks/results/dense/pilot/runs/{arm}-s{seed}.json", json.dumps(dense_record(arm, seed, miou)))
             for arm in ("densecl-w1", "densecl-w0") for seed, miou in zip(SEEDS, MIOU[arm], strict=True)]
    repo.commit(*paths)
    pairs = committed_differences("pilot", "densecl-w1", "densecl-w0", Metric("dense", "student", "test", measure="mIoU"),
                                  root=tmp_path, benchmark="dense")
    assert pairs == {"seeds": [0, 1, 2], "differences": [1.0, 2.0, 3.0], "commits": ["d" * 40]}


def test_power_of_a_pilot_scored_on_the_val_scenes_reads_them_as_val(tmp_path, monkeypatch):
    monkeypatch.setitem(dense_scenes.PROTOCOLS, "pilot", replace(dense_scenes.PROTOCOLS["pilot"], eval_split="val"))
    repo = Repository(tmp_path)
    records = [(f"benchmarks/results/dense/pilot/runs/{arm}-s{seed}.json", dense_record(arm, seed, miou))
               for arm in ("densecl-w1", "densecl-w0") for seed, miou in zip(SEEDS, MIOU[arm], strict=True)]
    for _, record in records:
        record["dense"]["split"] = "val"
    repo.commit(*[repo.write(path, json.dumps(record)) for path, record in records])
    test_metric = Metric("dense", "student", "test", measure="mIoU")
    (val_metric,) = SOURCES["dense"].protocol_metrics("pilot", (test_metric,))
    assert val_metric.split == "val"
    assert committed_differences("pilot", "densecl-w1", "densecl-w0", val_metric, root=tmp_path,
                                 benchmark="dense")["differences"] == [1.0, 2.0, 3.0]
    # read as the test split, the val scenes' scores are no scores
    assert committed_differences("pilot", "densecl-w1", "densecl-w0", test_metric, root=tmp_path,
                                 benchmark="dense")["differences"] == []
