"""Matplotlib plumbing for reports: figures on the Agg canvas (no display, no pyplot state).

Figures are built with the object API (``matplotlib.figure.Figure`` attached to a
``FigureCanvasAgg``), so plotting works headless and never touches pyplot's global
figure list or the user's interactive backend.

Nothing is cut off: :func:`bottom_legend` gives a legend below the panels as many columns
as the figure's width holds and grows the figure by its height, and :func:`fit_to_texts`
(run by :func:`save_png`) grows a figure until everything it draws, every title, label and
legend text included, lies inside it (long run names, data paths).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend

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
#: Blank space (inches) kept around a legend or text that made its figure grow.
FIT_MARGIN = 0.15


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


def bottom_legend(figure: Figure, handles: list[Artist], *, max_columns: int = 3, fontsize: float = 8) -> Legend:
    """A legend of ``handles`` below the panels (constrained layout's ``outside lower center``)
    with the most columns, up to ``max_columns``, whose width fits the figure (one column
    otherwise, the figure widened to it); the figure grows by the legend's height, so the
    panels keep their size however many lines the entries have."""
    renderer = figure.canvas.get_renderer()
    for columns in range(max(1, min(len(handles), max_columns)), 0, -1):
        legend = figure.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize=fontsize)
        box = legend.get_window_extent(renderer)
        if columns == 1 or box.width + 2 * FIT_MARGIN * figure.dpi <= figure.bbox.width:
            break
        legend.remove()
    width, height = figure.get_size_inches()
    figure.set_size_inches(max(width, box.width / figure.dpi + 2 * FIT_MARGIN), height + box.height / figure.dpi)
    return legend


def fit_to_texts(figure: Figure, *, rounds: int = 3) -> Figure:
    """Grow ``figure`` until everything it draws lies inside it (a suptitle with a long data
    path, a legend entry wider than the figure): by the overflow of its tight bounding box
    (``Figure.get_tightbbox``, what ``bbox_inches="tight"`` would save) on each side, laid out
    again (constrained layout re-centres titles and legends)."""
    for _ in range(rounds):
        figure.draw_without_rendering()
        used, (width, height) = figure.get_tightbbox(figure.canvas.get_renderer()), figure.get_size_inches()
        wider = max(0.0, -used.x0) + max(0.0, used.x1 - width)
        taller = max(0.0, -used.y0) + max(0.0, used.y1 - height)
        if wider * figure.dpi < 0.5 and taller * figure.dpi < 0.5:  # within half a pixel
            break
        grow = [extra + 2 * FIT_MARGIN if extra * figure.dpi >= 0.5 else 0.0 for extra in (wider, taller)]
        figure.set_size_inches(width + grow[0], height + grow[1])
    return figure


def save_png(figure: Figure, path: str | Path, *, dpi: int = 100) -> Path:
    """Write ``figure`` as PNG (parents created; grown first so that no text is cut off,
    :func:`fit_to_texts`) and return the path."""
    fit_to_texts(figure)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi, facecolor="white")
    return path
