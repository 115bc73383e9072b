"""Evaluation results as JSON files in the run folder.

    <run>/eval/<kind>-<data tag>.json     kind: knn, linear, linear_augmented, gap

Every file starts with the same header (which checkpoint, which encoder weights, which
data) so a report can tell results of different checkpoints or data sets apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from resmo.eval.features import EvalData
from resmo.eval.runs import LoadedRun


def result_path(run: LoadedRun, kind: str, data: EvalData) -> Path:
    return run.results_dir / f"{kind}-{data.tag}.json"


def header(run: LoadedRun, data: EvalData, kind: str) -> dict[str, Any]:
    """What every result file records about its inputs."""
    return {
        "kind": kind,
        "checkpoint": str(run.checkpoint),
        "checkpoint_sha256": run.checkpoint_sha256,
        "epoch": run.epoch,
        "global_step": run.global_step,
        "method": run.config.method,
        "backbone": run.config.backbone,
        "resmo_weight": run.config.resmo.weight,
        "data": data.name,
        "data_tag": data.tag,
        "image_size": data.image_size,
        "num_train": len(data.train),  # type: ignore[arg-type]
        "num_val": len(data.val),  # type: ignore[arg-type]
        "num_classes": data.num_classes,
    }


def write_result(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def read_results(folder: str | Path, kind: str) -> list[dict[str, Any]]:
    """Every ``eval/<kind>-*.json`` of a run folder (unreadable files are skipped)."""
    results = []
    for path in sorted((Path(folder) / "eval").glob(f"{kind}-*.json")):
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(payload, dict) and payload.get("kind") == kind:
            payload["path"] = str(path)
            results.append(payload)
    return results


def teacher_minus_student(results: dict[str, dict[str, float]]) -> dict[str, float] | None:
    """``teacher[m] - student[m]`` for every metric both have (None without both)."""
    student, teacher = results.get("student"), results.get("teacher")
    if student is None or teacher is None:
        return None
    return {m: teacher[m] - student[m] for m in student if m in teacher}
