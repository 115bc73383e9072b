"""What a report reads from a run folder: recipe, logged metrics, summary, eval results.

``metrics.csv`` (Lightning's CSV logger) has one row per logging call with ``epoch`` and
``step`` columns; a value column is empty where that row did not log it. Each column
becomes a :class:`Series` of ``(step, epoch, value)`` with one point per ``(step, epoch)``
(the last one written wins, so a resumed run's repeated steps are not drawn twice).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from resmo.eval.results import read_results

EVAL_KINDS = ("knn", "linear", "linear_augmented", "gap")


@dataclass
class Series:
    steps: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None


@dataclass
class RunData:
    """One run folder, read once."""

    folder: Path
    config: dict[str, Any]
    metrics: dict[str, Series]
    summary: dict[str, Any]
    evals: dict[str, list[dict[str, Any]]]
    label: str = ""
    #: ``key=value`` of the recipe keys that tell this run apart from those it is compared with
    settings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.folder.name

    def series(self, column: str) -> Series:
        return self.metrics.get(column, Series())


def read_metrics(path: Path) -> dict[str, Series]:
    """Columns of a Lightning ``metrics.csv`` as :class:`Series` (see module doc)."""
    points: dict[str, dict[tuple[float, float], float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            step, epoch = _number(row.get("step")), _number(row.get("epoch"))
            for column, raw in row.items():
                if column in ("step", "epoch") or column is None:
                    continue
                value = _number(raw)
                if value is not None:
                    points.setdefault(column, {})[(step or 0.0, epoch or 0.0)] = value
    metrics = {}
    for column, by_position in points.items():
        ordered = sorted(by_position.items())
        metrics[column] = Series(
            [p[0][0] for p in ordered], [p[0][1] for p in ordered], [p[1] for p in ordered]
        )
    return metrics


def _number(raw: str | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_run(folder: str | Path) -> RunData:
    """Read a run folder; ``ValueError`` (one line) when it has no config.yaml or metrics.csv."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"run folder '{folder}' does not exist")
    for required in ("config.yaml", "metrics.csv"):
        if not (folder / required).is_file():
            raise ValueError(f"'{folder}' is not a run folder: {required} is missing")
    config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    evals = {kind: read_results(folder, kind) for kind in EVAL_KINDS}
    return RunData(folder, config, read_metrics(folder / "metrics.csv"), summary, evals, folder.name)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat |= flatten(value, name + ".")
        else:
            flat[name] = value
    return flat


def differing_settings(runs: list[RunData], *, ignore: tuple[str, ...] = ("out",)) -> list[str]:
    """Recipe keys whose values differ between ``runs`` (``out`` ignored), sorted."""
    flats = [flatten(run.config) for run in runs]
    keys = set().union(*flats) if flats else set()
    return sorted(
        key for key in keys
        if key not in ignore and len({json.dumps(f.get(key), sort_keys=True) for f in flats}) > 1
    )


#: Settings a legend entry shows under the run's name; more are counted in one more line.
LEGEND_SETTINGS = 4


def assign_labels(runs: list[RunData]) -> None:
    """Label each run by its full folder name; ``settings`` lists every recipe key
    (``key=value``) whose value differs between ``runs``."""
    keys = differing_settings(runs)
    for run in runs:
        flat = flatten(run.config)
        run.label = run.name
        run.settings = [f"{key}={flat.get(key)}" for key in keys]


def described(run: RunData) -> str:
    """The run's label followed by its differing settings: ``name (key=value, ...)``."""
    return run.label + (f" ({', '.join(run.settings)})" if run.settings else "")


def legend_text(run: RunData) -> str:
    """A legend entry: the run's label on the first line, then one differing setting per
    line (the first :data:`LEGEND_SETTINGS`, then how many more the settings table lists)."""
    lines = [run.label, *run.settings[:LEGEND_SETTINGS]]
    if len(run.settings) > LEGEND_SETTINGS:
        lines.append(f"+{len(run.settings) - LEGEND_SETTINGS} more differing settings (see the table)")
    return "\n".join(lines)
