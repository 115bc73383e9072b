"""The long protocol's curves: aggregation over seeds, paired effects per epoch, figures."""

from __future__ import annotations

import json

import pytest

from benchmarks import long_curves, protocol

LONG = protocol.PROTOCOLS["long"]


def run_record(student: dict[int, float], teacher: dict[int, float], gaps: dict[int, float]) -> dict:
    return {"curves": {
        "knn": [{"epoch": e, "student": student[e], "teacher": teacher[e]} for e in sorted(student)],
        "intra_gap": {"output": [{"epoch": e, "value": v} for e, v in sorted(gaps.items())]}}}


@pytest.fixture
def results(tmp_path):
    """MoCo v3 plain and λ=1 at seeds 0-2, kNN at epochs 3 and 6; BYOL plain at seed 0 only."""
    folder = tmp_path / "long" / "runs"
    folder.mkdir(parents=True)
    records = {}
    for seed in (0, 1, 2):
        records[f"mocov3-w0-s{seed}"] = run_record({3: 20.0 + seed, 6: 30.0 + seed}, {3: 19.0, 6: 31.0},
                                                   {1: 0.5, 2: 0.4})
        records[f"mocov3-w1-s{seed}"] = run_record({3: 21.0 + seed, 6: 30.0 + 2 * seed}, {3: 19.5, 6: 32.0},
                                                   {1: 0.3, 2: 0.2})
    records["byol-w0-s0"] = run_record({3: 10.0, 6: 12.0}, {3: 11.0, 6: 14.0}, {1: 0.6})
    for key, record in records.items():
        (folder / f"{key}.json").write_text(json.dumps({"fingerprint": LONG.expected_fingerprint(key), **record}))
    (folder / "byol-w1-s0.json").write_text(json.dumps({"fingerprint": "older settings", **records["byol-w0-s0"]}))
    return tmp_path


def test_curves_are_seed_means_and_effects_are_paired_by_seed(results):
    curves = long_curves.aggregate(LONG, long_curves.load_runs(LONG, results))
    arms = {arm["key"]: arm for arm in curves["arms"]}
    plain = arms["mocov3-w0"]["curves"]
    assert plain["student"] == [{"epoch": 3, "mean": 21.0, "std": 1.0, "n": 3},
                                {"epoch": 6, "mean": 31.0, "std": 1.0, "n": 3}]
    assert plain["teacher_minus_student"][0] == {"epoch": 3, "mean": -2.0, "std": 1.0, "n": 3}
    assert arms["mocov3-w1"]["curves"]["intra_gap_output"][1] == pytest.approx({"epoch": 2, "mean": 0.2, "std": 0.0, "n": 3})
    effect = next(e for e in curves["effects"] if e["arm"] == "mocov3-w1" and e["encoder"] == "student")
    first, last = effect["by_epoch"]
    assert (first["epoch"], first["per_seed"], first["mean"], first["ci95"]) == (3, [1.0, 1.0, 1.0], 1.0, [1.0, 1.0])
    assert last["per_seed"] == [0.0, 1.0, 2.0] and last["mean"] == 1.0
    assert last["ci95"] == pytest.approx([1.0 - 4.303 / 3 ** 0.5, 1.0 + 4.303 / 3 ** 0.5])
    # a run made with other settings is not used: BYOL + ResMo has no run yet
    assert "byol-w1-s0" in curves["missing_runs"] and arms["byol-w1"]["seeds"] == []
    byol = next(e for e in curves["effects"] if e["arm"] == "byol-w1" and e["encoder"] == "student")
    assert byol["by_epoch"] == []


def test_one_command_writes_the_json_and_the_three_figures(results, tmp_path):
    figures = tmp_path / "docs" / "figures"
    assert long_curves.main(["--results-dir", str(results), "--figures", str(figures)]) == 0
    written = json.loads((results / "long" / "curves.json").read_text())
    assert written["command"] == "python -m benchmarks.long_curves" and written["code"]["resmo_version"]
    for name in ("long_knn.png", "long_gap.png", "long_teacher_minus_student.png"):
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_docs_show_the_runs_made_the_last_epoch_and_paired_effects_with_intervals(results, tmp_path):
    from benchmarks import render_docs

    assert long_curves.main(["--results-dir", str(results), "--figures", str(tmp_path / "figures")]) == 0
    curves = json.loads((results / "long" / "curves.json").read_text())
    text = "\n".join(render_docs.long_section(curves))
    assert "**In progress**: 7 of 15 runs made" in text and "byol-w1-s0" in text  # older settings: not counted
    # MoCo v3 at epoch 6: students 30, 31, 32 plain; 30, 32, 34 with λ=1 -> differences 0, 1, 2
    assert "| MoCo v3 | 0, 1, 2 | 6 | 31.0 ± 1.0 | 31.0 ± 0.0 | +0.0 ± 1.0 | 0.400 ± 0.000 |" in text
    assert "| MoCo v3 + ResMo (λ=1) | student | +1.00 [" in text and "(n=3) | +1.00 [" in text
    assert "| epoch 3 | epoch 6 |" in text and "figures/long_knn.png" in text
    # epoch 3: differences 1, 1, 1 (interval [1, 1]: above 0); epoch 6: 0, 1, 2 (contains 0)
    assert ("- MoCo v3 + ResMo (λ=1), student kNN: interval excludes 0 at 1 of the 2 epochs measured (above 0 at "
            "epoch 3); epoch 3: +1.00 [+1.00, +1.00]; epoch 6: +1.00 [-1.48, +3.48] (teacher - student of the plain "
            "method at epochs 3: -2.0, 6: +0.0); 3 seeds per arm; runs' commits not recorded: exploratory.") in text
    # with the runs' commits and the summary's thread counts
    made = render_docs.long_provenance({**curves, "code_commits": ["a", "b"]}, {"torch_threads_per_run": [1, 2]})
    assert made == "runs made at 2 commits and with 1 and 2 torch threads"
    assert render_docs.long_provenance({"code_commits": ["a"]}, {"torch_threads_per_run": [1]}) == \
        "runs made at 1 commit and with 1 torch thread"
