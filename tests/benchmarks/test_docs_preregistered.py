"""docs/benchmarks.md's confirmatory section: progress before the analysis, the decision table after."""

from __future__ import annotations

import shutil

from benchmarks.docs_preregistered import lambda_choice_part, preregistered_section
from benchmarks.preregistration_analysis import analyse
from benchmarks.preregistration_schema import load
from benchmarks.results_io import save_json
from tests.benchmarks.test_preregistration import toy_preregistration, write_runs


def test_before_its_analysis_a_preregistration_shows_what_it_tests_not_its_progress(tmp_path):
    results = tmp_path / "results"
    write_runs(results)
    (results / "smoke" / "runs" / "byol-w1-s104.json").unlink()
    folder = tmp_path / "preregistered"
    folder.mkdir()
    shutil.move(toy_preregistration(tmp_path, results), folder / "toy.yaml")
    text = "\n".join(preregistered_section(tmp_path / "outputs", folder))
    assert "### toy: runs under way" in text
    assert "H1: mocov3-w0.3 vs mocov3-w0; H2: byol-w1 vs byol-w0. Its 20 runs:" in text
    assert "19" not in text  # the saved runs are not counted: the page would change with every run
    assert "`python -m benchmarks.quality_cifar10 --protocol smoke`" in text
    assert "committed in `not committed yet`" in text


def test_after_its_analysis_the_table_gives_effect_interval_p_holm_and_decision(tmp_path):
    results = tmp_path / "results"
    write_runs(results)
    folder = tmp_path / "preregistered"
    folder.mkdir()
    path = shutil.move(toy_preregistration(tmp_path, results), folder / "toy.yaml")
    save_json(tmp_path / "outputs" / "toy.json", analyse(load(path)))
    lines = preregistered_section(tmp_path / "outputs", folder)
    text = "\n".join(lines)
    # H1 (tests/benchmarks/test_preregistration.py): differences 1..5, mean 3, t interval 3 ± 2.776 x 0.7071,
    # p 0.0132 (Holm x 2: 0.0265), exact Wilcoxon 0.0625; H2: mean 0.3, p 0.3046 (Holm: the same)
    assert "| H1: mocov3-w0.3 vs mocov3-w0 | 5 | +3.00 | [+1.04, +4.96] | 0.013 | 0.026 | 0.062 | **confirmed** |" in text
    # H2: differences 0.5, -0.5, 1, 0, 0.5: sd sqrt(0.325) = 0.570, half width 2.776 x 0.570 / sqrt(5) = 0.708
    assert "| H2: byol-w1 vs byol-w0 | 5 | +0.30 | [-0.41, +1.01] | 0.305 | 0.305 | 0.375 | not confirmed |" in text
    assert text.count("not confirmed |") == 1
    # the manipulation check: teacher - student of the plain arm (toy teachers at 0: far below)
    assert "- Manipulation check of H1 (mocov3-w0, teacher - student, paired by seed): -9.10" in text
    assert "- Exploratory, knn_top1_teacher_k20 on test, H1: +3.00 [+1.04, +4.96], raw p 0.013." in text
    assert "from code `aaaaaaaaaaaa` (1 torch thread: 20 runs), load average 1.0-2.0" in text


def test_the_default_lambda_part_shows_the_choice_and_how_close_it_was(tmp_path):
    choice = {"protocol": "confirm", "date": "2026-12-08", "metric": "student kNN", "rule": "highest mean",
              "methods": {"mocov3": {"chosen": 0.3, "mean": {"0": 35.0, "0.3": 35.5},
                                     "minus_lambda_0": {"0.3": {"n": 10, "mean_difference": 0.5,
                                                                "ci95": [-0.1, 1.1], "p": 0.09}}}}}
    text = "\n".join(lambda_choice_part(choice))
    assert "### The default λ, chosen on the validation split" in text
    assert ("- mocov3: λ = 0.3 (means: λ = 0: 35.00, λ = 0.3: 35.50; λ = 0.3 minus λ = 0: +0.50 [-0.10, +1.10], "
            "p 0.090; exploratory: the validation split used to choose, not a pre-registered hypothesis).") in text
