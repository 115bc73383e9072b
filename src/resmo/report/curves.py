"""Training curves of one or several runs (one colour per run), from ``metrics.csv``.

- :func:`plot_losses`: every logged loss term ``train/<term>_step`` (``ssl``, ``resmo``,
  ``loss``, ...) against the global step, one panel per term;
- :func:`plot_intra_gap`: the intra gap ``gap/<level>_step`` = ``1 - mean cos(student,
  teacher)`` on the same views, per level (features, projection, output);
- :func:`plot_knn`: weighted kNN top-1 of student (solid) and teacher (dashed) after each
  epoch (``knn/*_top1``; epoch 0 = random init from ``summary.json``) and teacher - student;
- :func:`plot_schedules`: learning rate, EMA momentum and ResMo weight per step.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.lines import Line2D

from resmo.report.plotting import new_figure, no_data, run_colour, save_png
from resmo.report.run_data import RunData, Series

NOT_LOSSES = ("resmo_weight", "images_per_second", "lr", "momentum")
GAP_LEVELS = ("features", "projection", "output")


def loss_terms(runs: list[RunData]) -> list[str]:
    """Names of the loss terms any run logged, ``loss`` (the total) last."""
    names = set()
    for run in runs:
        for column in run.metrics:
            if column.startswith("train/") and column.endswith(("_step", "_epoch")):
                term = column[len("train/"):].rsplit("_", 1)[0]
                if term not in NOT_LOSSES:
                    names.add(term)
    return sorted(names, key=lambda name: (name == "loss", name))


def _per_step(run: RunData, name: str) -> Series:
    """``<name>_step`` if logged, else the epoch means ``<name>_epoch``."""
    series = run.series(f"{name}_step")
    return series if len(series) else run.series(f"{name}_epoch")


def _draw(ax, runs: list[RunData], column: str, *, per_step: bool = True) -> bool:
    drawn = False
    for index, run in enumerate(runs):
        series = _per_step(run, column) if per_step else run.series(column)
        if len(series):
            marker = "o" if len(series) < 3 else None
            ax.plot(series.steps, series.values, color=run_colour(index), label=run.label, lw=1.2, marker=marker)
            drawn = True
    return drawn


def _legend(figure, runs: list[RunData], extra: tuple[Line2D, ...] = ()) -> None:
    """One legend below the panels: a colour per run (only when comparing), plus ``extra``."""
    handles = [Line2D([], [], color=run_colour(i), label=run.label) for i, run in enumerate(runs)] if len(runs) > 1 else []
    handles += list(extra)
    if handles:
        figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), fontsize=8)


def _finish(figure, runs: list[RunData], path: Path) -> Path:
    _legend(figure, runs)
    return save_png(figure, path)


def plot_losses(runs: list[RunData], path: str | Path) -> Path:
    terms = loss_terms(runs) or ["loss"]
    figure, axes = new_figure(len(terms))
    for ax, term in zip(axes, terms, strict=True):
        if not _draw(ax, runs, f"train/{term}"):
            no_data(ax)
        ax.set_title(f"loss term: {term}")
        ax.set_xlabel("step")
    return _finish(figure, runs, Path(path))


def plot_intra_gap(runs: list[RunData], path: str | Path) -> Path:
    figure, axes = new_figure(len(GAP_LEVELS))
    for ax, level in zip(axes, GAP_LEVELS, strict=True):
        if not _draw(ax, runs, f"gap/{level}"):
            no_data(ax)
        ax.set_title(f"intra gap, {level}")
        ax.set_xlabel("step")
        ax.set_ylabel("1 - cos(student, teacher)")
    return _finish(figure, runs, Path(path))


def knn_points(run: RunData, encoder: str) -> tuple[list[float], list[float]]:
    """(epochs completed, top-1) of the kNN monitor, with the random init at epoch 0."""
    series = run.series(f"knn/{encoder}_top1")
    epochs = [e + 1 for e in series.epochs]
    values = list(series.values)
    initial = run.summary.get("knn_top1_random_init")
    if initial is not None and values:
        epochs, values = [0.0, *epochs], [float(initial), *values]
    return epochs, values


def plot_knn(runs: list[RunData], path: str | Path) -> Path:
    figure, (ax, gap_ax) = new_figure(2)
    drawn = False
    for index, run in enumerate(runs):
        colour = run_colour(index)
        student, teacher = knn_points(run, "student"), knn_points(run, "teacher")
        if student[1]:
            ax.plot(*student, color=colour, marker="o", ms=3)
            drawn = True
        if teacher[1]:
            ax.plot(*teacher, color=colour, ls="--", marker="s", ms=3)
            drawn = True
        if student[1] and teacher[1]:
            by_epoch = dict(zip(*student, strict=True))
            pairs = [(e, v - by_epoch[e]) for e, v in zip(*teacher, strict=True) if e in by_epoch]
            gap_ax.plot([p[0] for p in pairs], [p[1] for p in pairs], color=colour, marker="o", ms=3)
    if not drawn:
        no_data(ax, "no kNN monitor logged")
        no_data(gap_ax, "no kNN monitor logged")
    ax.set_title("kNN top-1 (student solid, teacher dashed)")
    gap_ax.set_title("kNN top-1 gap: teacher - student")
    gap_ax.axhline(0.0, color="#999999", lw=0.8)
    for axis in (ax, gap_ax):
        axis.set_xlabel("epoch")
    ax.set_ylabel("top-1 (%)")
    styles = (Line2D([], [], color="#444444", marker="o", ms=3, label="student"),
              Line2D([], [], color="#444444", ls="--", marker="s", ms=3, label="teacher"))
    _legend(figure, runs, styles if drawn else ())
    return save_png(figure, Path(path))


def plot_schedules(runs: list[RunData], path: str | Path) -> Path:
    panels = (("train/lr", "learning rate"), ("train/momentum", "EMA momentum"),
              ("train/resmo_weight", "ResMo weight"))
    figure, axes = new_figure(len(panels))
    for ax, (column, title) in zip(axes, panels, strict=True):
        if not (_draw(ax, runs, column, per_step=False) or _draw(ax, runs, column)):
            no_data(ax)
        ax.set_title(title)
        ax.set_xlabel("step")
    return _finish(figure, runs, Path(path))
