"""The runnable examples in examples/: they train, and the ResMo term is really in the loss."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest

from resmo.losses.default_weight import default_weight

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FAST = ["--steps", "2", "--batch-size", "16", "--log-every", "1"]


def load_example(name: str):
    if name == "lightly_byol":
        pytest.importorskip("lightly")
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=["plain_pytorch_mocov3", "lightly_byol"])
def runs(request):
    """Two short runs of one example from the same seed: its default weight and 0."""
    example = load_example(request.param)
    with_resmo = example.main(FAST)
    without_resmo = example.main([*FAST, "--resmo-weight", "0"])
    return with_resmo, without_resmo


def test_runs_and_reports_finite_numbers(runs, request):
    for result in runs:
        assert result["steps"] == 2 and len(result["history"]) == 2
        for record in result["history"]:
            for key in ("loss", "ssl_loss", "resmo_loss", "intra_gap"):
                assert math.isfinite(record[key]), (key, record)
        assert result["loss"] == result["history"][-1]["loss"]
    method = {"plain_pytorch_mocov3": "mocov3", "lightly_byol": "byol"}[request.node.callspec.params["runs"]]
    assert runs[0]["resmo_weight"] == default_weight(method)  # the example's default is resmo's for the method
    assert runs[1]["resmo_weight"] == 0.0


def test_intra_gap_is_the_same_first_forward_and_then_follows_the_weight(runs):
    """Step 0 sees the same weights in both runs (same seed): the same gap, above 0 since the
    student's output passes through the predictor the teacher lacks. Step 1 follows one update
    whose gradients differ (ResMo on or off), so the gaps differ."""
    with_resmo, without_resmo = (result["history"] for result in runs)
    assert with_resmo[0]["intra_gap"] == pytest.approx(without_resmo[0]["intra_gap"], rel=1e-6)
    assert with_resmo[0]["intra_gap"] > 0.0
    assert with_resmo[1]["intra_gap"] != pytest.approx(without_resmo[1]["intra_gap"], rel=1e-6)


def test_resmo_term_is_added_to_the_loss(runs):
    with_resmo, without_resmo = (result["history"][0] for result in runs)
    # Same seed, so the first forward pass is identical whatever the weight.
    assert with_resmo["ssl_loss"] == pytest.approx(without_resmo["ssl_loss"], rel=1e-6)
    assert with_resmo["resmo_loss"] == pytest.approx(without_resmo["resmo_loss"], rel=1e-6)
    assert without_resmo["loss"] == pytest.approx(without_resmo["ssl_loss"], rel=1e-6)
    difference = with_resmo["loss"] - without_resmo["loss"]
    assert difference == pytest.approx(runs[0]["resmo_weight"] * with_resmo["resmo_loss"], rel=1e-5)
    assert with_resmo["resmo_loss"] > 0.0
    # ResMo with the cosine distance is 2 - 2 cos on the same tensors as the gap (1 - cos).
    assert with_resmo["resmo_loss"] == pytest.approx(2.0 * with_resmo["intra_gap"], rel=1e-5)


def test_resmo_term_changes_the_gradients(runs):
    """After one optimizer step, the runs with and without ResMo have different weights."""
    with_resmo, without_resmo = (result["history"][1] for result in runs)
    assert with_resmo["ssl_loss"] != pytest.approx(without_resmo["ssl_loss"], rel=1e-6)


@pytest.mark.parametrize("name", ["plain_pytorch_mocov3", "lightly_byol"])
def test_prints_a_final_line(name, capsys):
    load_example(name).main(["--steps", "1", "--batch-size", "8", "--resmo-weight", "0.5"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("final: steps=1 resmo_weight=0.5 loss=")
    assert "intra_gap=" in lines[-1]


@pytest.mark.slow  # a fresh process (the fast lane does without it)
def test_plain_example_runs_as_a_script():
    script = EXAMPLES / "plain_pytorch_mocov3.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--steps", "1", "--batch-size", "8"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert completed.stdout.strip().splitlines()[-1].startswith(f"final: steps=1 resmo_weight={default_weight('mocov3'):g} ")
