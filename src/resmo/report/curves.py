"""Training curves of one or several runs from ``metrics.csv``, as matplotlib figures.

- :func:`draw_losses`: every logged loss term ``train/<term>_step`` (``ssl``, ``resmo``,
  ``loss``, ...) against the global step, one panel per term;
- :func:`draw_intra_gap`: the intra gap ``gap/<level>_step`` = ``1 - mean cos(student,
  teacher)`` on the same views, per level (features, projection, output);
- :func:`draw_knn`: weighted kNN top-1 of student (filled markers, solid) and teacher (open
  markers, dashed) after each epoch (``knn/*_top1``; epoch 0 = random init from
  ``summary.json``) and teacher - student;
- :func:`draw_schedules`: learning rate, EMA momentum and ResMo weight per step.

Each run has its colour, marker and (step curves) line style (:func:`resmo.report.plotting.run_style`),
so compared runs with identical numbers stay visible; a series of fewer than
``MIN_POINTS_FOR_LINE`` points is drawn as markers without a connecting line.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from resmo.report.plotting import MIN_POINTS_FOR_LINE, bottom_legend, new_figure, no_data, run_style
from resmo.report.run_data import RunData, Series, legend_text

NOT_LOSSES = ("resmo_weight", "images_per_second", "lr", "momentum")
GAP_LEVELS = ("features", "projection", "output")
#: Share of the epoch span over which the kNN points of compared runs are spread.
DODGE = 0.03


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
    """One series per run; when comparing, each run has its own line style and open markers
    (nested sizes and shapes stay visible where runs coincide)."""
    drawn = False
    for index, run in enumerate(runs):
        series = _per_step(run, column) if per_step else run.series(column)
        if len(series):
            compare = len(runs) > 1
            ax.plot(series.steps, series.values, label=run.label,
                    **run_style(index, len(series), markers=compare, nested=compare))
            drawn = True
    return drawn


def _legend(figure, runs: list[RunData], extra: tuple[Line2D, ...] = (), *, lines: bool = True) -> None:
    """One legend below the panels: an entry per run as :func:`_draw` draws it (only when
    comparing; without ``lines``, a filled marker in the run's colour), plus ``extra``. An
    entry is the run's full name with the settings that differ on separate lines
    (:func:`~resmo.report.run_data.legend_text`); the figure grows to hold it all."""
    handles = []
    if len(runs) > 1:
        for index, run in enumerate(runs):
            style = run_style(index, MIN_POINTS_FOR_LINE, nested=lines)
            style.pop("markevery")
            handles.append(Line2D([], [], label=legend_text(run), **style | ({} if lines else {"ls": "None"})))
    handles += list(extra)
    if handles:
        bottom_legend(figure, handles)


def _finish(figure, runs: list[RunData]) -> Figure:
    _legend(figure, runs)
    return figure


def draw_losses(runs: list[RunData]) -> Figure:
    """One panel per loss term."""
    terms = loss_terms(runs) or ["loss"]
    figure, axes = new_figure(len(terms))
    for ax, term in zip(axes, terms, strict=True):
        if not _draw(ax, runs, f"train/{term}"):
            no_data(ax)
        ax.set_title(f"loss term: {term}")
        ax.set_xlabel("step")
    return _finish(figure, runs)


def draw_intra_gap(runs: list[RunData]) -> Figure:
    """One panel per level of the intra gap on the training views."""
    figure, axes = new_figure(len(GAP_LEVELS))
    for ax, level in zip(axes, GAP_LEVELS, strict=True):
        if not _draw(ax, runs, f"gap/{level}"):
            no_data(ax)
        ax.set_title(f"intra gap, {level}")
        ax.set_xlabel("step")
        ax.set_ylabel("1 - cos(student, teacher)")
    return _finish(figure, runs)


def knn_points(run: RunData, encoder: str) -> tuple[list[float], list[float]]:
    """(epochs completed, top-1) of the kNN monitor, with the random init at epoch 0."""
    series = run.series(f"knn/{encoder}_top1")
    epochs = [e + 1 for e in series.epochs]
    values = list(series.values)
    initial = run.summary.get("knn_top1_random_init")
    if initial is not None and values:
        epochs, values = [0.0, *epochs], [float(initial), *values]
    return epochs, values


def _shifts(runs: list[RunData]) -> list[float]:
    """Horizontal offset per run on the kNN panels: runs spread over ``DODGE`` of the epoch
    span, so runs with equal numbers sit side by side instead of on top of each other."""
    if len(runs) < 2:
        return [0.0] * len(runs)
    epochs = [e for run in runs for encoder in ("student", "teacher") for e in knn_points(run, encoder)[0]]
    span = max([1.0, *epochs])
    return [(index / (len(runs) - 1) - 0.5) * DODGE * span for index in range(len(runs))]


def draw_knn(runs: list[RunData]) -> Figure:
    """Student (filled markers, solid) and teacher (open markers, dashed) top-1 per epoch, and
    teacher - student; with fewer than ``MIN_POINTS_FOR_LINE`` evaluations markers only."""
    figure, (ax, gap_ax) = new_figure(2)
    drawn = False
    for index, (run, shift) in enumerate(zip(runs, _shifts(runs), strict=True)):
        student, teacher = knn_points(run, "student"), knn_points(run, "teacher")
        for (epochs, values), ls, hollow in ((student, "-", False), (teacher, "--", True)):
            if values:
                style = run_style(index, len(values), linestyle=ls)
                if hollow:  # open and larger, so a student point at the same value shows inside
                    style |= {"mfc": "none", "ms": style["ms"] + 2}
                ax.plot([e + shift for e in epochs], values, **style)
                drawn = True
        if student[1] and teacher[1]:
            by_epoch = dict(zip(*student, strict=True))
            pairs = [(e + shift, v - by_epoch[e]) for e, v in zip(*teacher, strict=True) if e in by_epoch]
            gap_ax.plot(*zip(*pairs, strict=True), **run_style(index, len(pairs), linestyle="-"))
    if not drawn:
        no_data(ax, "no kNN monitor logged")
        no_data(gap_ax, "no kNN monitor logged")
    ax.set_title("kNN top-1 (student filled, teacher open)")
    gap_ax.set_title("kNN top-1 gap: teacher - student")
    gap_ax.axhline(0.0, color="#999999", lw=0.8)
    for axis in (ax, gap_ax):
        axis.set_xlabel("epoch (runs drawn slightly apart)" if len(runs) > 1 else "epoch")
    ax.set_ylabel("top-1 (%)")
    styles = (Line2D([], [], color="#444444", marker="o", ms=6, label="student"),
              Line2D([], [], color="#444444", ls="--", marker="o", mfc="none", ms=8, label="teacher"))
    _legend(figure, runs, styles if drawn else (), lines=False)
    return figure


def draw_schedules(runs: list[RunData]) -> Figure:
    """Learning rate, EMA momentum and ResMo weight."""
    panels = (("train/lr", "learning rate"), ("train/momentum", "EMA momentum"),
              ("train/resmo_weight", "ResMo weight"))
    figure, axes = new_figure(len(panels))
    for ax, (column, title) in zip(axes, panels, strict=True):
        if not (_draw(ax, runs, column, per_step=False) or _draw(ax, runs, column)):
            no_data(ax)
        ax.set_title(title)
        ax.set_xlabel("step")
    return _finish(figure, runs)

