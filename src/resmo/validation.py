"""Checks for user-facing settings.

Every invalid setting raises :class:`ValueError` whose message names the setting, the
value given and what is allowed, so a user can fix a recipe without reading code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(message: object) -> str:
    """``message`` on a single line: each line break (from a value, key or path that holds
    one) is shown as its escape (``\\n``), so an error is always one line on stderr."""
    return _LINE_BREAKS.sub(lambda match: repr(match.group())[1:-1], str(message)).strip()


def check_choice(setting: str, value: object, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; raise ``ValueError`` otherwise."""
    allowed = sorted(allowed)
    if value not in allowed:
        raise ValueError(f"{setting}={value!r} is not valid; allowed values: {', '.join(allowed)}")
    return value  # type: ignore[return-value]


def check_non_negative(setting: str, value: float) -> float:
    """Return ``value`` if it is a finite number >= 0."""
    if not _is_number(value) or not 0 <= value < float("inf"):
        raise ValueError(f"{setting}={value!r} is not valid; allowed values: a number >= 0")
    return float(value)


def check_positive(setting: str, value: float) -> float:
    """Return ``value`` if it is a finite number > 0."""
    if not _is_number(value) or not value > 0 or value == float("inf"):
        raise ValueError(f"{setting}={value!r} is not valid; allowed values: a number > 0")
    return float(value)


def check_unit_interval(setting: str, value: float) -> float:
    """Return ``value`` if it lies in the closed interval [0, 1]."""
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{setting}={value!r} is not valid; allowed values: a number in [0, 1]")
    return float(value)


def check_positive_int(setting: str, value: int) -> int:
    """Return ``value`` if it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{setting}={value!r} is not valid; allowed values: an integer >= 1")
    return value


def check_non_negative_int(setting: str, value: int) -> int:
    """Return ``value`` if it is an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{setting}={value!r} is not valid; allowed values: an integer >= 0")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
