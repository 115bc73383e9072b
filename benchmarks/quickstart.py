"""Measure the offline quickstart: wall time of `resmo pretrain` (no arguments) and its kNN margin.

    python -m benchmarks.quickstart            # writes benchmarks/results/quickstart.json

Target (README): at most 60 s on a 2-core CPU machine without network, and the student's
kNN top-1 at least 15 points above a randomly initialised encoder of the same architecture.
Then the plain method at the same settings (``resmo pretrain --resmo-weight 0``, one seed,
not timed): kNN and intra gap without ResMo, which the quickstart's last line points to.
Run it on an otherwise idle machine: on 2 cores, any other busy process slows torch's
threads down a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results_io import machine_info, write_result

RESULTS = Path(__file__).parent / "results" / "quickstart.json"


def _run(tmp: str, name: str, extra: list[str]) -> tuple[float, dict]:
    """Wall seconds of ``resmo pretrain --out TMP/NAME EXTRA`` and its summary.json."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "resmo.cli", "pretrain", "--out", f"{tmp}/{name}", *extra],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    wall = time.perf_counter() - start
    return wall, json.loads(Path(f"{tmp}/{name}/summary.json").read_text())


def _arm(summary: dict) -> dict:
    return {
        "knn_top1_student": summary["knn_top1_student"],
        "knn_top1_teacher": summary["knn_top1_teacher"],
        "intra_gap": {level: round(value, 4) for level, value in summary["intra_gap"].items()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    before = machine_info(load_average_1min=round(os.getloadavg()[0], 2))
    with tempfile.TemporaryDirectory() as tmp:
        wall, summary = _run(tmp, "run", [])
        load_after = round(os.getloadavg()[0], 2)
        _, plain = _run(tmp, "plain", ["--resmo-weight", "0"])
    result = {
        "command": "resmo pretrain",
        "date": time.strftime("%Y-%m-%d"),
        "machine": before,
        "load_average_1min_after": load_after,
        "seed": summary["seed"],
        "settings": {key: summary[key] for key in ("method", "backbone", "epochs", "batch_size", "resmo_weight")},
        "wall_seconds_total": round(wall, 1),
        "wall_seconds_training": round(summary["wall_seconds"], 1),
        "knn_top1_student": summary["knn_top1_student"],
        "knn_top1_teacher": summary["knn_top1_teacher"],
        "knn_top1_random_init": summary["knn_top1_random_init"],
        "margin_points": round(summary["knn_top1_student"] - summary["knn_top1_random_init"], 1),
        "images_per_second": round(summary["images_per_second"], 1),
        "intra_gap": _arm(summary)["intra_gap"],
        "plain": {"command": "resmo pretrain --resmo-weight 0", **_arm(plain)},
        "targets": {"wall_seconds_total_max": 60, "margin_points_min": 15},
    }
    result["meets_targets"] = result["wall_seconds_total"] <= 60 and result["margin_points"] >= 15
    return write_result(args.out, result)


if __name__ == "__main__":
    main()
