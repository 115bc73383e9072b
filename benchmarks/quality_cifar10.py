"""Quality on real CIFAR-10 (CPU): ResMo against the plain method, resmo against LightlySSL.

    python -m benchmarks.quality_cifar10            # the full protocol (hours; resumable)
    python -m benchmarks.quality_cifar10 --smoke    # the same table on a few hundred images (minutes)
    python -m benchmarks.quality_cifar10 --protocol long   # MoCo v3 / BYOL +- ResMo over 30 epochs (hours)
    nohup python -m benchmarks.quality_cifar10 > quality.log 2>&1 &    # in the background

Arms, seeds and budgets are in ``protocol.py``. Every run's result is cached in
``benchmarks/results/quality/<protocol>/runs/<run>.json`` (keyed by a fingerprint of its
settings); run folders and checkpoints live in ``~/.cache/resmo/benchmarks/quality/``
(``--work-dir``). Started again, the script skips finished runs and continues unfinished
ones from their last checkpoint (``resmo pretrain --resume auto``). When every run is
done it writes ``summary.json`` beside ``runs/`` (and, for the full protocol,
``docs/figures/quality_cifar10.png``); ``render_docs.py`` turns the JSON into
docs/benchmarks.md.

resmo runs are ``resmo pretrain`` then ``resmo eval knn``, ``resmo eval linear`` and
``resmo gap`` on the whole test split, through the CLI entry point in-process. Random-init
and LightlySSL backbones go through the same probe functions (``backbone_probes.py``).
Runs execute ``--jobs`` at a time (default 2), each with one torch thread.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.cifar10_folder import DataMissing, cache_root, cifar10_folder
from benchmarks.folder_subset import subset_folder
from benchmarks.protocol import PROTOCOLS, Protocol, cached_result, pretrain_arguments, result_file
from benchmarks.quality_summary import summarise
from benchmarks.results_io import code_provenance, machine_info

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "quality"


def data_folder(protocol: Protocol, work: Path, given: Path | None) -> Path:
    folder = given or cifar10_folder()
    budget = protocol.budget
    if budget.train_per_class is None and budget.test_per_class is None:
        return folder
    counts = {"train": budget.train_per_class or 5000, "test": budget.test_per_class or 1000}
    return subset_folder(folder, work / "data" / f"cifar10-{counts['train']}-{counts['test']}", counts)


# --- one run (in its own process) ---------------------------------------------------------
def run_resmo(protocol: Protocol, arm, seed: int, folder: Path, out: Path) -> dict:
    from resmo.cli import main as resmo_main
    from resmo.eval.results import read_results

    budget = protocol.budget
    arguments = pretrain_arguments(budget, arm, seed, str(folder), str(out))
    start = time.perf_counter()
    if resmo_main(arguments) != 0:
        raise RuntimeError(f"resmo {shlex.join(arguments)} failed")
    train_seconds = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    start = time.perf_counter()
    ks = [str(k) for k in budget.knn_k]
    for command in (["eval", "knn", str(out), "--encoder", "both", "--k", *ks],
                    ["eval", "linear", str(out), "--encoder", "both", "--steps", str(budget.linear_steps)],
                    ["gap", str(out), "--k", ks[0]]):
        if resmo_main(command) != 0:
            raise RuntimeError(f"resmo {shlex.join(command)} failed")
    eval_seconds = time.perf_counter() - start
    knn, linear, gap = (read_results(out, kind)[-1] for kind in ("knn", "linear", "gap"))
    return {
        "command": "resmo " + shlex.join(arguments).replace(str(folder), "CIFAR10_FOLDER").replace(str(out), "RUN"),
        "knn": {enc: {k: v["top1"] for k, v in r.items()} for enc, r in knn["results"].items()},
        "linear": {enc: r["top1"] for enc, r in linear["results"].items()},
        "intra_gap": {level: gap["intra_gap"][level] for level in ("features", "output")},
        "train_seconds": train_seconds, "eval_seconds": eval_seconds,
        "images_per_second": summary.get("images_per_second"),
        "monitor_knn_random_init": summary.get("knn_top1_random_init"),
        **({"eval_split": "test", "monitor": {  # the kNN monitor at the end, on the held-out split
            "split": summary.get("monitor_split"), "val_images": summary.get("val_images"),
            "student": summary.get("knn_top1_student"), "teacher": summary.get("knn_top1_teacher")}}
           if budget.val_fraction is not None else {}),
        **({"curves": training_curves(summary, out / "metrics.csv")} if budget.knn_every_epochs else {}),
    }


def training_curves(summary: dict, metrics_csv: Path) -> dict:
    """Per-epoch curves of a run: the online kNN of student and teacher (every few epochs,
    from ``summary.json``) and the epoch means of the intra gap per level (``metrics.csv``)."""
    gaps: dict[str, dict[int, float]] = {}
    with metrics_csv.open(newline="") as file:
        for row in csv.DictReader(file):
            for level in ("features", "projection", "output"):
                value = row.get(f"gap/{level}_epoch")
                if value:
                    gaps.setdefault(level, {})[int(row["epoch"]) + 1] = float(value)
    return {
        "knn": [{"epoch": r["epoch"], "student": r["knn_top1_student"], "teacher": r["knn_top1_teacher"]}
                for r in summary.get("knn_history", [])],
        "intra_gap": {level: [{"epoch": e, "value": v} for e, v in sorted(values.items())]
                      for level, values in gaps.items()},
    }


def run_lightly(protocol: Protocol, arm, seed: int, folder: Path) -> dict:
    import lightly

    from benchmarks.backbone_probes import folder_splits, probe_backbones, same_view_gap
    from benchmarks.lightly_baselines import train

    budget = protocol.budget
    splits = folder_splits(folder)
    model, timing = train(
        arm.method, splits.train, width=budget.width, epochs=budget.epochs,
        batch_size=budget.batch_size, lr=budget.lr, weight_decay=budget.weight_decay,
        warmup_epochs=budget.warmup_epochs, momentum=budget.momentum, hidden_dim=budget.hidden_dim,
        out_dim=budget.out_dim, temperature=budget.temperature, seed=seed,
    )
    start = time.perf_counter()
    model.eval()
    probes = probe_backbones({"student": model.backbone, "teacher": model.teacher_backbone}, splits,
                             ks=budget.knn_k, linear_steps=budget.linear_steps)
    gap = same_view_gap(model.student, model.teacher, splits)
    return {"lightly_version": lightly.__version__, **probes, "intra_gap": gap,
            "train_seconds": timing["train_seconds"], "eval_seconds": time.perf_counter() - start,
            "images_per_second": timing["images_per_second"]}


def run_random(protocol: Protocol, seed: int, folder: Path) -> dict:
    import torch

    from benchmarks.backbone_probes import folder_splits, probe_backbones
    from resmo import create_backbone

    torch.manual_seed(seed)
    backbone = create_backbone("resnet_small", width=protocol.budget.width)
    start = time.perf_counter()
    probes = probe_backbones({"random": backbone}, folder_splits(folder), ks=protocol.budget.knn_k,
                             linear_steps=protocol.budget.linear_steps)
    return {**probes, "eval_seconds": time.perf_counter() - start}


def run_one(protocol: Protocol, key: str, folder: Path, work: Path, results: Path) -> Path:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    arm, seed = protocol.parse(key)
    tag = protocol.expected_fingerprint(key)
    record = {"protocol": protocol.name, "key": key, "seed": seed, "fingerprint": tag, "date": time.strftime("%Y-%m-%d"),
              "machine": machine_info(), "load_average_1min_start": round(os.getloadavg()[0], 2),
              "code": code_provenance()}
    if arm is None:
        record |= {"arm": "random-init", "impl": "resmo"} | run_random(protocol, seed, folder)
    else:
        record |= {"arm": arm.key, "impl": arm.impl}
        if arm.impl == "lightly":
            record |= run_lightly(protocol, arm, seed, folder)
        else:
            # a folder per fingerprint: changed settings never resume an old run's checkpoint
            record |= run_resmo(protocol, arm, seed, folder, work / "runs" / f"{key}-{tag}")
    record["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    path = result_file(protocol, key, results)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, path)
    return path


# --- scheduling -----------------------------------------------------------------------------
def run_pending(protocol: Protocol, pending: list[str], *, jobs: int, base_argv: list[str],
                work: Path) -> list[str]:
    """Run ``pending`` keys ``jobs`` at a time in child processes; returns the failed keys."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    queue, running, failed = list(pending), {}, []
    while queue or running:
        while queue and len(running) < jobs:
            key = queue.pop(0)
            log = open(logs / f"{key}.log", "a")  # noqa: SIM115 - closed when the child ends
            child = subprocess.Popen([sys.executable, "-m", "benchmarks.quality_cifar10", *base_argv, "--one", key],
                                     stdout=log, stderr=subprocess.STDOUT, env=env)
            running[key] = (child, log, time.perf_counter())
            print(f"[{time.strftime('%H:%M:%S')}] started {key} (log: {logs / f'{key}.log'})", flush=True)
        time.sleep(1.0)
        for key, (child, log, started) in list(running.items()):
            if child.poll() is None:
                continue
            log.close()
            del running[key]
            status = "done" if child.returncode == 0 else f"FAILED (exit {child.returncode})"
            if child.returncode != 0:
                failed.append(key)
            print(f"[{time.strftime('%H:%M:%S')}] {status}: {key} in {time.perf_counter() - started:.0f} s",
                  flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality_cifar10", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the smoke protocol (minutes)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), help="full (default), smoke or long (hours)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--data-folder", type=Path, help="an extracted CIFAR-10 JPEG folder")
    parser.add_argument("--work-dir", type=Path, help="run folders (default ~/.cache/resmo/benchmarks/quality)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--figure", type=Path, help="plot of the full protocol (default docs/figures/...)")
    parser.add_argument("--only", nargs="+", metavar="RUN", help="run only these runs (e.g. random-s0)")
    parser.add_argument("--one", metavar="RUN", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    name = args.protocol or ("smoke" if args.smoke else "full")
    protocol = PROTOCOLS[name]
    work = (args.work_dir or cache_root() / "quality") / protocol.name
    try:
        folder = data_folder(protocol, work, args.data_folder)
    except DataMissing as error:
        print(f"quality_cifar10: {error}", file=sys.stderr)
        return 2
    if args.one:
        run_one(protocol, args.one, folder, work, args.results_dir)
        return 0
    base_argv = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--only"]
    base_argv = [a for a in base_argv if not args.only or a not in args.only]
    keys = [k for k in protocol.run_keys() if not args.only or k in args.only]
    pending = [k for k in keys if cached_result(protocol, k, args.results_dir) is None]
    print(f"protocol {protocol.name}: {len(keys) - len(pending)} of {len(keys)} runs cached, "
          f"{len(pending)} to run, {args.jobs} at a time; data {folder}", flush=True)
    start = time.perf_counter()
    failed = run_pending(protocol, pending, jobs=args.jobs, base_argv=base_argv, work=work)
    if failed:
        print(f"failed runs: {', '.join(failed)}; logs in {work / 'logs'}; start again to retry", file=sys.stderr)
        return 1
    command = "python -m benchmarks.quality_cifar10" + {"full": "", "smoke": " --smoke"}.get(name, f" --protocol {name}")
    summary = summarise(protocol, args.results_dir, command=command, wall_seconds=time.perf_counter() - start,
                        figure=args.figure, jobs=args.jobs)
    print(f"summary: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
