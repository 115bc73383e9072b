"""``resmo report RUN [RUN ...]``: one HTML page per run, and a comparison page.

Per run, ``<run>/report/index.html`` (PNGs beside it): recipe summary, final numbers,
student and teacher eval results (from ``resmo eval`` / ``resmo gap``), curves of every
loss term, the intra gap per level, student and teacher kNN over epochs, learning rate,
momentum and ResMo weight, and the held-out cosine histograms of ``resmo gap``.

With several runs, also a comparison page, by default
``<first run>/report/compare-<YYYYmmdd-HHMMSS>/index.html`` (``--out DIR`` to choose): the
same curves overlaid (a colour, marker and line style per run), the recipe keys that
differ, and the final table with mean ± std over the distinct seeds of each configuration
(runs that repeat a seed count once and are named; see :mod:`resmo.report.tables`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from resmo.report import curves
from resmo.report.histogram import plot_cosine_histograms
from resmo.report.html import Section, write_page
from resmo.report.numbers import cosine_text
from resmo.report.plotting import save_png
from resmo.report.run_data import (
    RunData,
    assign_labels,
    described,
    differing_settings,
    flatten,
    read_run,
)
from resmo.report.tables import Table, eval_table, final_table, repeated_seeds

CURVES = (
    ("losses.png", "Loss terms", curves.draw_losses),
    ("intra_gap.png", "Intra gap per level (training views)", curves.draw_intra_gap),
    ("knn.png", "kNN top-1 over epochs: student and teacher", curves.draw_knn),
    ("schedules.png", "Learning rate, momentum and ResMo weight", curves.draw_schedules),
)


@dataclass
class ReportFiles:
    runs: list[Path] = field(default_factory=list)
    comparison: Path | None = None
    images: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. runs that repeat a seed


def _command(folders: list[Path]) -> str:
    return "produced by: resmo report " + " ".join(str(f) for f in folders)


def _curve_sections(runs: list[RunData], out: Path, command: str) -> tuple[list[Section], list[Path]]:
    sections, images = [], []
    for filename, heading, draw in CURVES:
        png = save_png(draw(runs), out / filename)
        images.append(png)
        sections.append(Section(heading, images=[png], notes=[f"{png.name}; {command}"]))
    return sections, images


def _overview(run: RunData) -> Section:
    flat, summary = flatten(run.config), run.summary
    rows = [[key, str(flat.get(key))] for key in (
        "method", "backbone", "data.name", "train.epochs", "train.batch_size", "seed",
        "resmo.weight", "resmo.level", "resmo.distance", "optimizer.name", "optimizer.lr")]
    for key in ("wall_seconds", "images_per_second", "world_size"):
        if summary.get(key) is not None:
            rows.append([key, f"{summary[key]:.1f}" if isinstance(summary[key], float) else str(summary[key])])
    text = [f"run folder: {run.folder}"] + ([] if summary else ["no summary.json yet: the run is unfinished"])
    return Section("Run", text=text, tables=[Table(["setting", "value"], rows)])


def _gap_section(run: RunData, out: Path) -> tuple[Section | None, list[Path]]:
    saved = run.evals.get("gap", [])
    if not saved:
        return None, []
    images, rows = [], []
    for index, result in enumerate(saved):
        png = plot_cosine_histograms(
            result["cosine_histogram"], out / f"gap_hist_{index}.png", gaps=result["intra_gap"],
            means=result.get("cosine_mean"),
            title=f"{result['data']} val ({result['num_val']} images), checkpoint step {result.get('global_step')}",
        )
        images.append(png)
        knn = result["knn"]
        rows.append([result["data"], *(cosine_text(result["intra_gap"][level]) for level in curves.GAP_LEVELS),
                     f"{knn['student']['top1']:.2f}", f"{knn['teacher']['top1']:.2f}",
                     f"{knn['teacher_minus_student']['top1']:+.2f}"])
    columns = ["data", *(f"intra gap {level}" for level in curves.GAP_LEVELS),
               "kNN student top-1", "kNN teacher top-1", "teacher - student"]
    section = Section("Held-out gap diagnostics (resmo gap)", tables=[Table(columns, rows)], images=images,
                      notes=["same-view cosine of student and teacher on held-out images, eval mode"])
    return section, images


def run_report(run: RunData, out: Path | None = None) -> tuple[Path, list[Path]]:
    """Write ``<run>/report/index.html`` (or ``out/index.html``); return it and its PNGs."""
    out = Path(out) if out else run.folder / "report"
    command = _command([run.folder])
    sections = [_overview(run), Section("Final numbers", tables=[final_table([run])]),
                Section("Eval results: student and teacher", tables=[eval_table(run)],
                        notes=["from eval/*.json, written by resmo eval knn / resmo eval linear"])]
    gap, gap_images = _gap_section(run, out)
    curve_sections, images = _curve_sections([run], out, command)
    sections += ([gap] if gap else []) + curve_sections
    return write_page(out / "index.html", f"resmo report: {run.name}", sections), images + gap_images


def comparison_report(runs: list[RunData], out: Path) -> tuple[Path, list[Path]]:
    """Write ``out/index.html`` comparing ``runs``; return it and its PNGs."""
    command = _command([run.folder for run in runs])
    keys = differing_settings(runs)
    flats = [flatten(run.config) for run in runs]
    differences = Table(["setting", *(run.name for run in runs)],
                        [[key, *(str(flat.get(key)) for flat in flats)] for key in keys])
    sections = [
        Section("Runs", text=[f"{described(run)}: {run.folder}" for run in runs]),
        Section("Settings that differ", tables=[differences]),
        Section("Final numbers (mean ± std over the distinct seeds of one configuration)",
                text=repeated_seeds(runs), tables=[final_table(runs)]),
    ]
    sections += [Section(f"Eval results: {run.label}", tables=[eval_table(run)]) for run in runs]
    curve_sections, images = _curve_sections(runs, out, command)
    return write_page(out / "index.html", f"resmo comparison of {len(runs)} runs", sections + curve_sections), images


def build_report(folders: list[str | Path], out: str | Path | None = None) -> ReportFiles:
    """Per-run pages (``<run>/report/``; for a single run ``out`` if given), plus a comparison
    page in ``out`` (default ``<first run>/report/compare-<time>``) when more than one run is
    given. Raises ``ValueError`` for a folder that is not a run."""
    if not folders:
        raise ValueError("give at least one run folder")
    runs = [read_run(folder) for folder in folders]
    assign_labels(runs)
    files = ReportFiles()
    single_out = Path(out) if out and len(runs) == 1 else None
    for run in runs:
        page, images = run_report(run, single_out)
        files.runs.append(page)
        files.images += images
    if len(runs) > 1:
        target = Path(out) if out else runs[0].folder / "report" / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
        files.comparison, images = comparison_report(runs, target)
        files.images += images
        files.notes = repeated_seeds(runs)
    return files
