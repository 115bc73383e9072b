"""Histogram of same-view cosine similarities ``cos(student_l(x), teacher_l(x))``, one panel
per level, drawn from the bin counts that ``resmo gap`` saves
(:func:`resmo.eval.gap_diagnostics.cosine_histogram`); the mean is marked.

The x axis spans the occupied bins (plus half a bin each side), not the whole [-1, 1], so
cosines that sit in 0.85..1 fill the panel. Numbers in titles and legends are formatted by
:func:`resmo.report.numbers.cosine_text`, as ``resmo gap`` prints them.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from resmo.report.numbers import cosine_text
from resmo.report.plotting import new_figure, no_data, save_png


def _mean(edges: list[float], counts: list[int]) -> float | None:
    total = sum(counts)
    if not total:
        return None
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return sum(c * n for c, n in zip(centres, counts, strict=True)) / total


def occupied_range(edges: list[float], counts: list[int]) -> tuple[float, float]:
    """From the first non-empty bin to the last, widened by half a bin each side."""
    filled = [i for i, count in enumerate(counts) if count]
    first, last = filled[0], filled[-1] + 1
    pad = (edges[last] - edges[first]) / (last - first) / 2
    return edges[first] - pad, edges[last] + pad


def draw_cosine_histograms(
    histograms: dict[str, dict[str, list]], *, title: str = "",
    gaps: dict[str, float] | None = None, means: dict[str, float] | None = None,
) -> Figure:
    """``histograms[level] = {"edges": [B + 1], "counts": [B]}`` -> a figure. Titles give
    ``gaps[level]`` and legends ``means[level]`` (the exact values ``resmo gap`` prints); without
    them, estimates from the bin centres, marked ``~``."""
    levels = list(histograms) or ["output"]
    figure, axes = new_figure(len(levels), width=3.8, height=3.0)
    for ax, level in zip(axes, levels, strict=True):
        histogram = histograms.get(level)
        if not histogram or not sum(histogram["counts"]):
            no_data(ax)
            continue
        edges, counts = histogram["edges"], histogram["counts"]
        widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
        ax.bar(edges[:-1], counts, width=widths, align="edge", color="#4c72b0", edgecolor="white", lw=0.3)
        exact = (means or {}).get(level)
        mean = exact if exact is not None else _mean(edges, counts)
        ax.axvline(mean, color="#c44e52", ls="--", lw=1.2,
                   label=f"mean {cosine_text(mean)}" if exact is not None else f"mean ~{cosine_text(mean)}")
        ax.legend(fontsize=8, loc="best")
        ax.set_xlim(*occupied_range(edges, counts))
        gap = (gaps or {}).get(level)
        ax.set_title(f"{level}: intra gap {cosine_text(gap)}" if gap is not None
                     else f"{level}: intra gap ~{cosine_text(1.0 - mean)}")
        ax.set_xlabel("cos(student, teacher), same view")
        ax.set_ylabel("images")
    if title:
        figure.suptitle(title, fontsize=9)
    return figure


def plot_cosine_histograms(
    histograms: dict[str, dict[str, list]], path: str | Path, *, title: str = "",
    gaps: dict[str, float] | None = None, means: dict[str, float] | None = None,
) -> Path:
    """:func:`draw_cosine_histograms` saved as PNG at ``path``."""
    return save_png(draw_cosine_histograms(histograms, title=title, gaps=gaps, means=means), path)
