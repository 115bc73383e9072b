"""Evaluation: gap diagnostics, kNN and linear probes (the intra gap itself is a training
metric: :mod:`resmo.losses.gap`).

Light on import: the run-level modules (runs, features, probes, gap_diagnostics) are
imported where used.
"""

from resmo.eval.knn import weighted_knn
from resmo.eval.linear import linear_probe

__all__ = ["linear_probe", "weighted_knn"]
