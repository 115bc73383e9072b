"""Histogram of same-view cosine similarities ``cos(student_l(x), teacher_l(x))``, one panel
per level, drawn from the bin counts that ``resmo gap`` saves
(:func:`resmo.eval.gap_diagnostics.cosine_histogram`); the mean is marked."""

from __future__ import annotations

from pathlib import Path

from resmo.report.plotting import new_figure, no_data, save_png


def _mean(edges: list[float], counts: list[int]) -> float | None:
    total = sum(counts)
    if not total:
        return None
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return sum(c * n for c, n in zip(centres, counts, strict=True)) / total


def plot_cosine_histograms(
    histograms: dict[str, dict[str, list]], path: str | Path, *, title: str = "",
    gaps: dict[str, float] | None = None,
) -> Path:
    """``histograms[level] = {"edges": [B + 1], "counts": [B]}`` -> one PNG. Panel titles
    give ``gaps[level]`` (exact intra gap) or else ``1 - mean`` from the bin centres."""
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
        mean = _mean(edges, counts)
        if mean is not None:
            ax.axvline(mean, color="#c44e52", ls="--", lw=1.2, label=f"mean ~{mean:.3f}")
            ax.legend(fontsize=8, loc="upper left")
        ax.set_xlim(-1.0, 1.0)
        gap = (gaps or {}).get(level, 1.0 - (mean or 0.0))
        ax.set_title(f"{level}: intra gap {gap:.3f}")
        ax.set_xlabel("cos(student, teacher), same view")
        ax.set_ylabel("images")
    if title:
        figure.suptitle(title, fontsize=9)
    return save_png(figure, path)
