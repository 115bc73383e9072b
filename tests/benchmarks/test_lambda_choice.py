"""The default λ per method: the highest validation-split mean among the λ values run (ties: the smaller)."""

from __future__ import annotations

import json

import pytest

from benchmarks import lambda_choice
from benchmarks.protocol import PROTOCOLS, result_file, run_key

CONFIRM = PROTOCOLS["confirm"]


def write_confirm_runs(results, value, skip: str | None = None) -> None:
    """A run file per resmo arm and seed of the confirm protocol; ``value(arm, seed)`` is its
    validation-split student kNN."""
    for arm in CONFIRM.arms:
        for seed in arm.seeds:
            key = run_key(arm, seed)
            if key == skip:
                continue
            path = result_file(CONFIRM, key, results)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"fingerprint": CONFIRM.expected_fingerprint(key),
                                        "monitor": {"split": "held-out 10% of train", "student": value(arm, seed)}}))


def test_the_higher_validation_mean_wins_and_a_tie_goes_to_the_smaller_lambda(tmp_path):
    def value(arm, seed):
        if arm.method == "mocov3":  # λ = 0.3 is 0.5 above λ = 0 at every seed
            return 30.0 + seed % 3 + (0.5 if arm.weight else 0.0)
        return 40.0 + seed % 2  # BYOL: λ = 1 ties λ = 0
    write_confirm_runs(tmp_path, value)
    assert lambda_choice.main(["--results-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "confirm" / "lambda_choice.json").read_text())
    mocov3, byol = result["methods"]["mocov3"], result["methods"]["byol"]
    assert mocov3["chosen"] == 0.3 and byol["chosen"] == 0.0
    assert mocov3["minus_lambda_0"]["0.3"]["mean_difference"] == pytest.approx(0.5)
    assert mocov3["minus_lambda_0"]["0.3"]["n"] == 10
    assert byol["mean"]["0"] == byol["mean"]["1"] == pytest.approx(40.5)


def test_it_reads_all_runs_or_none(tmp_path, capsys):
    write_confirm_runs(tmp_path, lambda arm, seed: 1.0, skip="byol-w1-s107")
    assert lambda_choice.main(["--results-dir", str(tmp_path)]) == 2
    assert "1 runs of protocol confirm are not saved yet (byol-w1-s107)" in capsys.readouterr().err
    assert not (tmp_path / "confirm" / "lambda_choice.json").exists()


def test_resmos_default_weights_are_the_committed_choice():
    """resmo.losses.default_weight holds what lambda_choice.json chose, and the choice recomputes
    from the committed confirmatory runs."""
    from resmo.losses.default_weight import CHOSEN_ON_VALIDATION

    committed = json.loads((lambda_choice.RESULTS / "confirm" / "lambda_choice.json").read_text())
    assert CHOSEN_ON_VALIDATION == {method: row["chosen"] for method, row in committed["methods"].items()}
    values, missing = lambda_choice.validation_values(CONFIRM, lambda_choice.RESULTS)
    assert missing == []
    assert {method: lambda_choice.choose(by_weight)["chosen"] for method, by_weight in values.items()} == CHOSEN_ON_VALIDATION
