"""Measure the offline quickstart: wall time of `resmo pretrain` (no arguments) and its kNN margin.

    python benchmarks/quickstart.py            # writes benchmarks/results/quickstart.json

Target (README): at most 180 s on a 2-core CPU machine without network, and the student's
kNN top-1 at least 15 points above a randomly initialised encoder of the same architecture.
Run it on an otherwise idle machine: on 2 cores, any other busy process slows torch's
threads down a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "quickstart.json"


def machine() -> dict:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    before = machine()
    with tempfile.TemporaryDirectory() as tmp:
        command = ["resmo", "pretrain", "--out", f"{tmp}/run"]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "resmo.cli", *command[1:]], check=True,
                       stdout=subprocess.DEVNULL, cwd=tmp)
        wall = time.perf_counter() - start
        summary = json.loads(Path(f"{tmp}/run/summary.json").read_text())
    result = {
        "command": "resmo pretrain",
        "date": time.strftime("%Y-%m-%d"),
        "machine": before,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "seed": summary["seed"],
        "wall_seconds_total": round(wall, 1),
        "wall_seconds_training": round(summary["wall_seconds"], 1),
        "knn_top1_student": summary["knn_top1_student"],
        "knn_top1_teacher": summary["knn_top1_teacher"],
        "knn_top1_random_init": summary["knn_top1_random_init"],
        "margin_points": round(summary["knn_top1_student"] - summary["knn_top1_random_init"], 1),
        "images_per_second": round(summary["images_per_second"], 1),
        "targets": {"wall_seconds_total_max": 180, "margin_points_min": 15},
    }
    result["meets_targets"] = result["wall_seconds_total"] <= 180 and result["margin_points"] >= 15
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
