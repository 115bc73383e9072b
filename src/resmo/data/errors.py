"""The one error type of the data layer.

:class:`DataError` subclasses :class:`ValueError`, so callers that already catch bad
settings catch it too. Its message is a single actionable line: it names the path or
dataset at fault and says what to do about it.
"""

from __future__ import annotations


class DataError(ValueError):
    """A dataset could not be found, read or downloaded (one-line, actionable message)."""
