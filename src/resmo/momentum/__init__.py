"""The EMA teacher and momentum schedules."""

from resmo.momentum.ema import BUFFER_POLICIES, EMATeacher
from resmo.momentum.schedule import cosine_momentum, linear_warmup

__all__ = ["BUFFER_POLICIES", "EMATeacher", "cosine_momentum", "linear_warmup"]
