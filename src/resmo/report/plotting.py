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


def run_colour(index: int) -> str:
    return RUN_COLOURS[index % len(RUN_COLOURS)]


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
