"""Evaluation: gap diagnostics, kNN and linear probes.

Light on import (``resmo.methods`` imports :mod:`resmo.eval.gap`): the run-level modules
(runs, features, probes, gap_diagnostics) are imported where used.
"""

from resmo.eval.gap import intra_gap
from resmo.eval.knn import weighted_knn
from resmo.eval.linear import linear_probe

__all__ = ["intra_gap", "linear_probe", "weighted_knn"]
