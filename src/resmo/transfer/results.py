"""Detection transfer results: mean and standard deviation over seeds, and the JSON file.

    <run>/transfer/detect-<teacher|student|random_init>-<VOC folder name>.json

holds ``settings`` (everything that decides the numbers), ``seeds`` (per seed: COCO-style AP,
AP50, AP75 and VOC07's 11-point VOC07_AP, VOC07_AP50, VOC07_AP75, the first / last / mean
training loss, seconds), ``mean`` and ``std`` (sample standard deviation over seeds, 0 for one
seed) of each AP.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

KEYS = ("AP", "AP50", "AP75", "VOC07_AP", "VOC07_AP50", "VOC07_AP75")
SHOWN = ("AP", "AP50", "AP75", "VOC07_AP50")  # printed; the JSON holds every key


def result_path(folder: Path, init: str, data_root: Path) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", data_root.resolve().name) or "voc"
    return folder / "transfer" / f"detect-{init}-{name}.json"


def aggregate(per_seed: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """``(mean, std)`` of AP, AP50, AP75 over the seeds."""
    mean = {key: round(statistics.fmean(r[key] for r in per_seed), 4) for key in KEYS}
    std = {key: round(statistics.stdev(r[key] for r in per_seed), 4) if len(per_seed) > 1 else 0.0 for key in KEYS}
    return mean, std


def format_scores(mean: dict[str, float], std: dict[str, float] | None = None) -> str:
    if std is None:
        return ", ".join(f"{key} {mean[key]:.2f}" for key in SHOWN)
    return ", ".join(f"{key} {mean[key]:.2f} ± {std[key]:.2f}" for key in SHOWN)


def write_result(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
