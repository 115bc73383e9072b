"""Checks for the data layer's tuple-valued settings (scales, per-view probabilities).

They follow :mod:`resmo.validation`: an invalid value raises :class:`ValueError` naming the
setting, the value given and what is allowed.
"""

from __future__ import annotations

from collections.abc import Sequence

from resmo.validation import check_unit_interval


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_scale(setting: str, value: object) -> tuple[float, float]:
    """Return ``value`` as ``(low, high)`` with ``0 < low <= high <= 1``."""
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(_is_number(v) for v in value)
        and 0 < value[0] <= value[1] <= 1
    ):
        return float(value[0]), float(value[1])
    raise ValueError(
        f"{setting}={value!r} is not valid; allowed values: a pair (low, high) with 0 < low <= high <= 1"
    )


def check_probabilities(setting: str, value: object, count: int) -> tuple[float, ...]:
    """Return ``count`` probabilities: one number for every view, or one per view."""
    if _is_number(value):
        return (check_unit_interval(setting, value),) * count
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == count
        and all(_is_number(v) and 0 <= v <= 1 for v in value)
    ):
        return tuple(float(v) for v in value)
    raise ValueError(
        f"{setting}={value!r} is not valid; allowed values: a number in [0, 1] "
        f"or {count} numbers in [0, 1] (one per view)"
    )


def check_channel_stats(setting: str, value: object, *, positive: bool) -> tuple[float, ...]:
    """Return three per-channel numbers (``> 0`` when ``positive``), e.g. a mean or std."""
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 3
        and all(_is_number(v) and (v > 0 or not positive) for v in value)
    ):
        return tuple(float(v) for v in value)
    allowed = "three numbers > 0" if positive else "three numbers"
    raise ValueError(f"{setting}={value!r} is not valid; allowed values: {allowed} (R, G, B)")


def check_optional_bool(setting: str, value: object) -> bool | None:
    """Return ``value`` if it is ``True``, ``False`` or ``None`` (automatic)."""
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"{setting}={value!r} is not valid; allowed values: true, false or null (auto)")


def check_range(setting: str, value: object, low: float, high: float) -> float:
    """Return ``value`` if it is a number in ``[low, high]``."""
    if _is_number(value) and low <= value <= high:
        return float(value)
    raise ValueError(f"{setting}={value!r} is not valid; allowed values: a number in [{low}, {high}]")
