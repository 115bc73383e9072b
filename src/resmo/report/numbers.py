"""Number formatting shared by printed summaries, report tables and plot labels, so a value
in a legend or title reads exactly as where it is printed."""

from __future__ import annotations


def cosine_text(value: float) -> str:
    """A cosine or intra gap as ``resmo gap`` prints it and reports show it (4 decimals)."""
    return f"{value:.4f}"
