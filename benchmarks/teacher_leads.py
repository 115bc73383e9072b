"""Where does the plain teacher lead its student? An exploratory search on the validation split.

ResMo's premise is a teacher ahead of its student, with a residual to close. In the short
protocol (``benchmarks.protocol``: learning rate decayed to 0, momentum 0.96 -> 1 over two
epochs) the EMA teacher trails its student in every run. This script trains the *plain*
method (no ResMo) under a few schedules and records the kNN top-1 of student and teacher
after every epoch on a validation split held out of CIFAR-10's training images
(``data.val_fraction``): CIFAR-10's test split is never read here, so the regime chosen from
these runs can be tested on it afterwards.

Schedules (``SCHEDULES``): the short protocol's (``cosine-lr-m0.96-to-1``), and constant
learning rates with a constant momentum (an EMA that keeps averaging a student that keeps
moving: Polyak averaging, the mean-teacher effect), and a decayed rate with a constant momentum.

    python -m benchmarks.teacher_leads                          # every schedule, seed 0
    python -m benchmarks.teacher_leads --schedule constant-lr-m0.99 --seeds 0 1 2
    python -m benchmarks.teacher_leads --jobs 1                 # one run at a time

Each run is ``resmo pretrain`` in its own process with one torch thread (``--jobs`` at a
time, default 2); its result (the per-epoch kNN history, teacher - student at the end, the
machine, the load and the code commit) goes to ``benchmarks/results/teacher_leads/<run>.json``
as soon as it finishes, and a finished run is not repeated (delete its file to redo it).
These are exploratory measurements: nothing here is a confirmatory test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.cifar10_folder import cache_root, cifar10_folder
from benchmarks.folder_subset import subset_folder
from benchmarks.results_io import code_provenance, machine_info

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "teacher_leads"
PROG = "python -m benchmarks.teacher_leads"


@dataclass(frozen=True)
class Schedule:
    """Learning rate, teacher momentum and (where they differ from ``BUDGET``) the data and
    length of one search arm."""

    lr: float
    constant_lr: bool  # True: ``optimizer.min_lr = lr`` (warm-up, then constant)
    momentum: float
    final_momentum: float
    train_per_class: int = 1000
    epochs: int = 8
    batch_size: int = 256
    knn_every_epochs: int = 1


SCHEDULES = {
    "cosine-lr-m0.96-to-1": Schedule(0.005, False, 0.96, 1.0),  # the short protocol's
    "cosine-lr-m0.99": Schedule(0.005, False, 0.99, 0.99),
    "constant-lr-m0.99": Schedule(0.005, True, 0.99, 0.99),
    "constant-lr-m0.996": Schedule(0.005, True, 0.996, 0.996),
    # fewer images for longer: the student reaches a plateau, where the EMA's lag costs little
    "small-constant-lr-m0.99": Schedule(0.005, True, 0.99, 0.99, train_per_class=300, epochs=40,
                                        batch_size=128, knn_every_epochs=4),
    "small-constant-lr-m0.996": Schedule(0.005, True, 0.996, 0.996, train_per_class=300, epochs=40,
                                         batch_size=128, knn_every_epochs=4),
}

#: What every search run shares: CIFAR-10 training images (``Schedule.train_per_class`` per
#: class), of which ``val_fraction`` are held out for the kNN monitor, MoCo v3 on resnet_small
#: width 8 at 32 px, AdamW.
BUDGET = {"method": "mocov3", "val_fraction": 0.1, "width": 8, "warmup_epochs": 0.5, "weight_decay": 1e-4,
          "hidden_dim": 512, "out_dim": 128, "temperature": 0.2}


def pretrain_arguments(schedule: Schedule, seed: int, data: Path, out: Path) -> list[str]:
    b, method = BUDGET, BUDGET["method"]
    return [
        "pretrain", "--method", method, "--backbone", "resnet_small", "--data", str(data),
        "--epochs", str(schedule.epochs), "--batch-size", str(schedule.batch_size), "--resmo-weight", "0",
        "--seed", str(seed), "--out", str(out), "--resume", "auto",
        "data.image_size=32", "data.pipeline=batched", "data.num_workers=1", f"data.val_fraction={b['val_fraction']}",
        f"backbone_options.resnet_small.width={b['width']}",
        "optimizer.name=adamw", f"optimizer.lr={schedule.lr}", f"optimizer.weight_decay={b['weight_decay']}",
        f"optimizer.warmup_epochs={b['warmup_epochs']}",
        *([f"optimizer.min_lr={schedule.lr}"] if schedule.constant_lr else []),
        f"monitor.knn_every_epochs={schedule.knn_every_epochs}", "monitor.knn_max_train=10000",
        "monitor.knn_max_val=10000",
        "train.progress_bar=false", "train.accelerator=cpu",
        f"method_options.{method}.hidden_dim={b['hidden_dim']}", f"method_options.{method}.out_dim={b['out_dim']}",
        f"method_options.{method}.predictor_hidden_dim={b['hidden_dim']}",
        f"method_options.{method}.temperature={b['temperature']}",
        f"method_options.{method}.momentum={schedule.momentum}",
        f"method_options.{method}.final_momentum={schedule.final_momentum}",
    ]


def data_folder(schedule: Schedule, work: Path) -> Path:
    """The first ``train_per_class`` images of each CIFAR-10 class (linked, not copied)."""
    per_class = schedule.train_per_class
    return subset_folder(cifar10_folder(), work / "data" / f"cifar10-{per_class}", {"train": per_class})


def run_once(name: str, seed: int, work: Path, results: Path) -> dict:
    """Train one run in a fresh process (one torch thread) and write its result file."""
    data = data_folder(SCHEDULES[name], work)
    out = work / "runs" / f"{name}-s{seed}"
    arguments = pretrain_arguments(SCHEDULES[name], seed, data, out)
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "resmo.cli", *arguments], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name}-s{seed}: resmo pretrain exited {done.returncode}: {done.stderr.strip()[-400:]}")
    summary = json.loads((out / "summary.json").read_text())
    history = [{"epoch": row["epoch"], "student": row["knn_top1_student"], "teacher": row["knn_top1_teacher"]}
               for row in summary["knn_history"]]
    last = history[-1]
    record = {
        "run": f"{name}-s{seed}", "schedule": name, "settings": asdict(SCHEDULES[name]), "budget": BUDGET,
        "seed": seed, "split": summary.get("monitor_split"), "val_images": summary.get("val_images"),
        "train_images": summary["train_images"], "knn_history": history,
        "teacher_minus_student": round(last["teacher"] - last["student"], 4),
        "best_teacher_minus_student": max(round(r["teacher"] - r["student"], 4) for r in history),
        "wall_seconds": time.perf_counter() - started, "load_average_1min_start": load_start,
        "load_average_1min_end": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d"),
        "machine": machine_info(torch_threads=1), "code": code_provenance(),
        "command": "resmo " + " ".join(a if not a.startswith(str(work)) and a != str(data) else
                                       ("RUN" if a.startswith(str(work)) else "CIFAR10_SUBSET") for a in arguments),
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}-s{seed}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--schedule", nargs="+", choices=sorted(SCHEDULES), default=list(SCHEDULES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=cache_root() / "teacher_leads")
    args = parser.parse_args(argv)
    for name in args.schedule:  # made one at a time, before the runs share them
        data_folder(SCHEDULES[name], args.work_dir)
    todo = [(name, seed) for name in args.schedule for seed in args.seeds
            if not (args.results / f"{name}-s{seed}.json").is_file()]
    print(f"{len(todo)} runs to make ({args.jobs} at a time); results: {args.results}", flush=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for record in pool.map(lambda job: run_once(*job, args.work_dir, args.results), todo):
            print(f"{record['run']}: teacher - student {record['teacher_minus_student']:+.2f} at the end "
                  f"(best {record['best_teacher_minus_student']:+.2f}); {record['wall_seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
