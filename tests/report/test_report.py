"""`resmo report`: per-run pages and a comparison of ResMo on / off with two seeds."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import statistics

import numpy as np
import pytest
from PIL import Image

from resmo.losses.default_weight import default_weight
from resmo.report.plotting import run_colour
from resmo.report.run_data import read_metrics, read_run
from resmo.report.tables import final_table, group_runs
from tests.eval_helpers import make_run, run_cli


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Runs ResMo on (seeds 0, 1) and off (seed 0); eval + gap on the first; the report."""
    from resmo.cli import main

    root = tmp_path_factory.mktemp("report")
    runs = {
        "on0": make_run(root / "on0", samples=128),
        "on1": make_run(root / "on1", "seed=1", samples=128),
        "off": make_run(root / "off", "resmo.weight=0", samples=128),
    }
    assert main(["eval", "knn", str(runs["on0"]), "--k", "20"]) == 0
    assert main(["gap", str(runs["on0"])]) == 0
    assert main(["report", *map(str, runs.values()), "--out", str(root / "compare")]) == 0
    return runs, root / "compare"


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int64)


def colour_pixels(image: np.ndarray, colour: str) -> int:
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return int((np.abs(image - rgb).sum(axis=2) < 40).sum())


def page_text(path) -> str:
    text = re.sub(r"<[^>]+>", " ", path.read_text())
    return html.unescape(re.sub(r"\s+", " ", text))


def test_every_png_is_a_real_non_blank_image(report):
    runs, compare = report
    pngs = sorted(compare.glob("*.png")) + sorted(runs["on0"].glob("report/*.png"))
    names = {p.name for p in pngs}
    assert {"losses.png", "intra_gap.png", "knn.png", "schedules.png", "gap_hist_0.png"} <= names
    for png in pngs:
        image = pixels(png)
        assert image.shape[0] >= 200 and image.shape[1] >= 400, png
        assert image.var() > 0, png
        colours = np.unique(image[..., 0] * 65536 + image[..., 1] * 256 + image[..., 2])
        assert len(colours) > 20, png  # text, axes and curves, not one flat colour
        assert (image == 255).all(axis=2).mean() < 0.97, png  # not (almost) all white


def test_comparison_curves_draw_every_run(report):
    _, compare = report
    for name in ("intra_gap.png", "knn.png", "schedules.png"):  # schedules are equal, still all drawn
        image = pixels(compare / name)
        for index in range(3):
            assert colour_pixels(image, run_colour(index)) > 100, (name, index)
    # the ResMo term is only logged with ResMo on: the off run (third colour) is in the
    # ssl and total-loss panels only, so it has fewer pixels than the first run
    losses = pixels(compare / "losses.png")
    assert colour_pixels(losses, run_colour(2)) < colour_pixels(losses, run_colour(0))


def test_pages_are_self_contained(report):
    runs, compare = report
    for page in [compare / "index.html", *(run / "report" / "index.html" for run in runs.values())]:
        text = page.read_text()
        sources = re.findall(r'src="([^"]+)"', text)
        assert sources and all(s.startswith("data:image/png;base64,") for s in sources), page
        assert "href=" not in text
    first = re.search(r'src="data:image/png;base64,([^"]+)"', (compare / "index.html").read_text()).group(1)
    assert base64.b64decode(first) == (compare / "losses.png").read_bytes()


def test_run_page_shows_student_and_teacher_eval_numbers(report):
    runs, _ = report
    (knn,) = (runs["on0"] / "eval").glob("knn-*.json")
    saved = json.loads(knn.read_text())
    student, teacher = saved["results"]["student"]["k20"], saved["results"]["teacher"]["k20"]
    text = page_text(runs["on0"] / "report" / "index.html")
    row = f"{student['top1']:.2f} {student['top5']:.2f} {teacher['top1']:.2f} {teacher['top5']:.2f} {teacher['top1'] - student['top1']:+.2f}"
    assert row in text
    assert "Held-out gap diagnostics" in text
    (gap,) = (runs["on0"] / "eval").glob("gap-*.json")
    assert f"{json.loads(gap.read_text())['intra_gap']['output']:.4f}" in text


def test_final_table_gives_mean_and_std_over_seeds(report):
    runs, compare = report
    summaries = [json.loads((runs[name] / "summary.json").read_text()) for name in ("on0", "on1")]
    values = [s["knn_top1_teacher"] for s in summaries]
    mean, std = statistics.fmean(values), statistics.stdev(values)
    text = page_text(compare / "index.html")
    assert f"kNN top-1 teacher (monitor) {mean:.2f} ± {std:.2f} (n=2)" in text
    assert f"resmo.weight={default_weight('mocov3', 'synthetic')}: 2 seeds (on0, on1; seeds 0, 1)" in text  # the default λ
    assert "Settings that differ" in text and "resmo.weight" in text


def test_group_runs_ignores_seed_only(report):
    runs, _ = report
    data = [read_run(runs[name]) for name in ("on0", "on1", "off")]
    assert [[r.name for r in g] for g in group_runs(data)] == [["on0", "on1"], ["off"]]
    table = final_table(data)
    assert len(table.columns) == 3


def test_read_metrics_skips_blanks_and_keeps_last_duplicate(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/loss_step,knn/student_top1\n0,0,2.0,\n0,1,1.5,\n0,1,1.25,\n0,1,,40.0\n")
    metrics = read_metrics(path)
    assert metrics["train/loss_step"].steps == [0.0, 1.0] and metrics["train/loss_step"].values == [2.0, 1.25]
    assert metrics["knn/student_top1"].values == [40.0]


def test_single_run_report_with_out(report, tmp_path, capsys):
    runs, _ = report
    code, out, _ = run_cli(["report", runs["off"], "--out", tmp_path / "single"], capsys)
    assert code == 0 and "comparison" not in out
    assert (tmp_path / "single" / "index.html").is_file()
    assert "no results yet" in page_text(tmp_path / "single" / "index.html")


@pytest.mark.slow  # three more runs of its own (the fast lane keeps the module's shared report)
def test_repeated_seed_is_counted_once_and_report_lands_in_the_first_run(report, tmp_path, capsys, monkeypatch):
    """Two runs of one recipe and seed: no "± 0.00 (n=2)"; the comparison goes to
    ``<first run>/report/compare-<time>/`` (not ./reports) and stdout says where and why."""
    runs, _ = report
    first, again = tmp_path / "first", tmp_path / "again"
    for copy in (first, again):
        shutil.copytree(runs["on0"], copy, ignore=shutil.ignore_patterns("report"))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(["report", first, again], capsys)
    assert code == 0
    note = "runs first and again repeat seed 0: counted once"
    assert note in out.splitlines()
    (written,) = [line for line in out.splitlines() if line.startswith("comparison report written to ")]
    page = tmp_path / written.removeprefix("comparison report written to ")
    assert page.is_file() and page.parent.parent == first / "report" and page.parent.name.startswith("compare-")
    assert not (tmp_path / "reports").exists()
    text = page_text(page)
    assert note in text and "(n=2)" not in text and "1 seed (first, again; seed 0)" in text
    teacher = json.loads((runs["on0"] / "summary.json").read_text())["knn_top1_teacher"]
    assert f"kNN top-1 teacher (monitor) {teacher:.2f} kNN" in text  # the plain value, no ±
