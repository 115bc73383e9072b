"""Evaluation: gap diagnostics, kNN and linear probes."""

from resmo.eval.gap import intra_gap

__all__ = ["intra_gap"]
