"""SSL losses as pure functions, plus the small stateful pieces (queue, centre)."""

from resmo.losses.byol import byol_regression
from resmo.losses.dense import dense_correspondence, dense_info_nce
from resmo.losses.dino import DinoCenter, dino_cross_entropy
from resmo.losses.gap import intra_gap
from resmo.losses.infonce import info_nce
from resmo.losses.queue import MoCoQueue
from resmo.losses.resmo import (
    DISTANCES,
    LEVELS,
    ResMoSettings,
    kd_cross_entropy,
    residual_momentum_loss,
)

__all__ = [
    "DISTANCES", "LEVELS", "DinoCenter", "MoCoQueue", "ResMoSettings", "byol_regression",
    "dense_correspondence", "dense_info_nce", "dino_cross_entropy", "info_nce", "intra_gap", "kd_cross_entropy", "residual_momentum_loss",
]
