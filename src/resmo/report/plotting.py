"""Matplotlib plumbing for reports: figures on the Agg canvas (no display, no pyplot state).

Figures are built with the object API (``matplotlib.figure.Figure`` attached to a
``FigureCanvasAgg``), so plotting works headless and never touches pyplot's global
figure list or the user's interactive backend.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Colours of runs in comparison plots (matplotlib's tab10, colour-blind friendly order).
RUN_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)


#: Markers and line styles of runs, so runs with identical curves stay distinguishable.
RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
RUN_LINESTYLES = ("-", "--", ":", "-.")
#: Fewer points than this are drawn as markers only: a line through two or three
#: evaluations reads as a trend that was never measured.
MIN_POINTS_FOR_LINE = 4
#: Open-marker sizes that nest (large circle, square, small triangle) where runs coincide.
NESTED_SIZES = (9.0, 6.0, 3.5)
#: Markers per series on dense curves (``markevery``).
MARKERS_PER_CURVE = 8


def run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


def run_style(
    index: int, points: int, *, linestyle: str | None = None, markers: bool = True, nested: bool = False
) -> dict:
    """``Axes.plot`` keywords for run ``index``'s series of ``points`` points: its colour, line
    style (``linestyle``, else the run's own) and marker (with ``markers``; always below
    :data:`MIN_POINTS_FOR_LINE`, where no line is drawn; ``nested``: open, of the
    :data:`NESTED_SIZES`). On dense curves the markers are sparse and start at a different
    point per run, so identical runs do not cover each other."""
    style = {"color": run_colour(index), "lw": 1.2,
             "ls": "None" if points < MIN_POINTS_FOR_LINE else linestyle or RUN_LINESTYLES[index % len(RUN_LINESTYLES)]}
    if markers or points < MIN_POINTS_FOR_LINE:
        every = max(1, points // MARKERS_PER_CURVE)
        style |= {"marker": RUN_MARKERS[index % len(RUN_MARKERS)], "ms": 6,
                  "markevery": (index * max(1, every // 3) % every, every)}
        if nested:
            style |= {"mfc": "none", "ms": NESTED_SIZES[index % len(NESTED_SIZES)]}
    return style


def new_figure(ncols: int, nrows: int = 1, *, width: float = 4.2, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    """A ``nrows x ncols`` grid of axes on an Agg canvas, constrained layout."""
    figure = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    return figure, [ax for row in axes for ax in row]


def no_data(ax: Axes, text: str = "not logged") -> None:
    """Mark an empty panel, so a missing metric is visible rather than a blank square."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#888888")
    ax.set_xticks([])
    ax.set_yticks([])


def save_png(figure: Figure, path: str | Path, *, dpi: int = 100) -> Path:
    """Write ``figure`` as PNG (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi, facecolor="white")
    return path
