"""The training loop of two commits side by side: `resmo pretrain` wall time and images/s.

    python -m benchmarks.loop_before_after --before c8ee5ee     # -> benchmarks/results/loop_before_after.json

Checks out ``--before`` (and ``--after``, default the current checkout) into temporary git
worktrees and runs the same ``resmo pretrain`` command (the offline quickstart, no kNN of
the random-init encoder beyond what the command does) from each, taking turns, ``--rounds``
times; each run's ``summary.json`` gives the training images/s (mean over epochs) and its
wall time is measured around the command. The medians are compared: ``ratio = after /
before`` in images/s (above 1: the after commit trains faster). The kNN and intra-gap numbers
of both sides are recorded too, so a change of results shows. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results_io import machine_info, write_result

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "loop_before_after.json"
PROJECT = HERE.parent


def worktree(commit: str, folder: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), commit], cwd=PROJECT, check=True,
                   capture_output=True)
    return folder


def pretrain(source: Path, out: Path, extra: list[str]) -> dict:
    """One ``resmo pretrain`` from the package under ``source/src``: wall seconds and summary."""
    env = {**os.environ, "PYTHONPATH": str(source / "src")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "resmo.cli", "pretrain", "--out", str(out), *extra], env=env,
                   cwd=out.parent, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    return {"wall_seconds": wall, "images_per_second": summary["images_per_second"],
            "knn_top1_student": summary["knn_top1_student"], "intra_gap": summary["intra_gap"]}


def commit_of(source: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, check=True, capture_output=True,
                          text=True).stdout.strip()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop_before_after", description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit to compare against")
    parser.add_argument("--after", help="the commit to measure (default: this checkout)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("extra", nargs="*", help="arguments for resmo pretrain (default: none, the quickstart)")
    args = parser.parse_args(argv)
    before_load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sides = {"before": worktree(args.before, tmp / "before"),
                 "after": worktree(args.after, tmp / "after") if args.after else PROJECT}
        try:
            runs: dict[str, list[dict]] = {side: [] for side in sides}
            for round_ in range(args.rounds):
                for side, source in sides.items():
                    runs[side].append(pretrain(source, tmp / f"{side}-{round_}", args.extra))
            commits = {side: commit_of(source) for side, source in sides.items()}
        finally:
            for side in ("before", "after"):
                if sides.get(side) not in (None, PROJECT):
                    subprocess.run(["git", "worktree", "remove", "--force", str(sides[side])], cwd=PROJECT,
                                   capture_output=True)
    medians = {side: {key: statistics.median(run[key] for run in runs[side])
                      for key in ("wall_seconds", "images_per_second")} for side in runs}
    result = {
        "command": "python -m benchmarks.loop_before_after --before " + args.before + "".join(f" {a}" for a in args.extra),
        "machine": machine_info(load_average_1min=round(before_load, 2)),
        "date": time.strftime("%Y-%m-%d"),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "commits": commits,
        "runs": runs,
        "medians": medians,
        "ratio_images_per_second": round(medians["after"]["images_per_second"] / medians["before"]["images_per_second"], 3),
        "same_results": all(a["knn_top1_student"] == b["knn_top1_student"] and a["intra_gap"] == b["intra_gap"]
                            for a, b in zip(runs["before"], runs["after"], strict=True)),
    }
    return write_result(args.out, result)


if __name__ == "__main__":
    main()
