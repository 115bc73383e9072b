"""Dense probe on CIFAR-10 scenes (CPU): DenseCL and MoCo v3, each with and without ResMo, against random init.

    python -m benchmarks.dense_scenes --protocol pilot     # seeds 0-2, exploratory (about 35 min)
    python -m benchmarks.dense_scenes                      # confirm: seeds 200-206, pre-registered in
                                                           # benchmarks/preregistered/dense-confirm.yaml
    python -m benchmarks.dense_scenes --smoke              # a few dozen scenes, one seed (minutes)

Resumable: each step is saved as it ends. The two protocols differ only in their seeds: the
pilot's (0-2, the seeds the detection smoke test pretrained with) size the confirmatory design
(``python -m benchmarks.preregistration power --benchmark dense --protocol pilot``); the
confirmatory seeds are fresh, fixed with the hypotheses before any of their runs.

1. The scenes and the pretraining are ``detection_scenes.py``'s, step for step: the same
   ``cifar10_scenes.py`` arguments (the generator also writes the segmentation masks), the same
   ``resmo pretrain`` of each arm and seed (:func:`detection_scenes.pretrain_step`) into the same
   run folders (named by the pretraining command), so that a pretraining run made by either
   script serves both. The work folder is by default ``detection_scenes.py``'s
   (``~/.cache/resmo/benchmarks/detection/<protocol>/``); scenes written before the generator
   wrote masks are written again (the same images, plus the masks).
2. Each arm and seed: ``resmo eval dense`` of the run's student (the encoder the detection
   converters take) with the probe seeded by the same seed: trained on the train scenes,
   scored (mIoU, pixel accuracy) on the test scenes, at the scenes' size.
3. Random init: ``resmo eval dense`` reports with every student a random-init backbone of the
   same architecture drawn with the same seed (one backbone per seed, whatever the run), probed
   with the same settings; the ``random-init`` arm takes it from its seed's first arm.

Every step's result is saved when it ends in ``benchmarks/results/dense/<protocol>/runs/<key>.json``
with the settings it was made with; started again, the script skips the steps whose saved settings
match. When every step is there it writes ``summary.json``: per arm mIoU and pixel accuracy (each
seed, mean, sample std) and paired 95 % t-intervals over seeds (``scipy.stats.t``) of

- the manipulation check: each pretrained arm minus random init, and
- ResMo's effect: ``λ=1`` minus ``λ=0`` of the same method.

Each step is a ``python -m resmo.cli`` child process; ``--only KEY ...`` runs some steps.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from benchmarks import detection_scenes
from benchmarks.detection_scenes import (
    ARMS,
    RANDOM,
    Budget,
    parse_key,
    pretrain_step,
    resmo,
    scene_benchmark_arguments,
    scenes_arguments,
)
from benchmarks.results_io import cached_record, code_provenance, machine_info, run_steps, save_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "dense"
METRICS = ("mIoU", "pixel_accuracy")
PROG = "dense_scenes"


@dataclass(frozen=True)
class DenseBudget:
    """The pretraining (``detection_scenes.py``'s budget, with this protocol's seeds) and the probe."""

    pretrain: Budget
    image_size: int = 128  # the scenes' own size, as the detector sees them
    stages: str = "3,4"
    epochs: int = 20
    lr: float = 0.01
    batch_size: int = 32
    seeds: tuple[int, ...] = field(default=(0, 1, 2, 3, 4))


def _seeds(seeds: tuple[int, ...]) -> DenseBudget:
    """detection_scenes.py's full pretraining budget and this probe, at ``seeds``."""
    return DenseBudget(replace(detection_scenes.PROTOCOLS["full"], seeds=seeds), seeds=seeds)


PROTOCOLS = {
    "pilot": _seeds((0, 1, 2)),
    "confirm": _seeds(tuple(range(200, 207))),
    "smoke": DenseBudget(detection_scenes.PROTOCOLS["smoke"], epochs=5, seeds=(0,)),
}


def keys(budget: DenseBudget) -> list[str]:
    """Every step, ``<arm>-s<seed>``, seed by seed (random init needs no step of its own)."""
    return [f"{arm}-s{seed}" for seed in budget.seeds for arm in ARMS]


def dense_arguments(budget: DenseBudget, run: str, scenes: str, seed: int, out: str) -> list[str]:
    """``resmo eval dense`` of a run's student (and the random-init baseline) with ``seed``."""
    return ["eval", "dense", run, "--data", scenes, "--encoder", budget.pretrain.encoder,
            "--train-split", "train", "--val-split", "test", "--image-size", str(budget.image_size),
            "--stages", budget.stages, "--epochs", str(budget.epochs), "--lr", f"{budget.lr:g}",
            "--batch-size", str(budget.batch_size), "--seed", str(seed), "--device", "cpu", "--out", out]


def run_step(budget: DenseBudget, key: str, scenes: Path, work: Path) -> dict:
    """Pretrain an arm (or keep its finished run) and probe its student; the record saved for ``key``."""
    arm, seed = parse_key(key)
    record: dict = {"key": key, "arm": arm, "seed": seed, "budget": asdict(budget), "date": time.strftime("%Y-%m-%d"),
                    "machine": machine_info(load_average_1min=round(os.getloadavg()[0], 2)), "code": code_provenance()}
    run, record["pretrain"] = pretrain_step(budget.pretrain, key, scenes, work, prog=PROG)
    out = work / "dense" / f"{key}.json"
    arguments = dense_arguments(budget, str(run), str(scenes), seed, str(out))
    start = time.perf_counter()
    resmo(arguments)
    probed = json.loads(out.read_text())
    record["dense"] = {"command": "resmo " + shlex.join(arguments).replace(str(scenes), "SCENES")
                       .replace(str(run), "RUN").replace(str(out), "OUT.json"),
                       "seconds": round(time.perf_counter() - start, 1),
                       "student": {m: probed["results"][budget.pretrain.encoder][m] for m in METRICS},
                       "random_init": {m: probed["results"]["random_init"][m] for m in METRICS}}
    return record


def paired_interval(differences: list[float], confidence: float = 0.95) -> dict:
    """Mean of paired differences with its two-sided t-interval (``None`` bounds for one pair)."""
    from scipy import stats

    mean = statistics.fmean(differences)
    if len(differences) < 2:
        return {"per_seed": differences, "mean": mean, "low": None, "high": None, "excludes_0": None}
    half = stats.t.ppf(0.5 + confidence / 2, len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
    return {"per_seed": differences, "mean": mean, "low": mean - half, "high": mean + half,
            "excludes_0": bool(mean - half > 0 or mean + half < 0)}


def arm_values(budget: DenseBudget, records: dict[str, dict], arm: str, metric: str) -> list[float]:
    """``metric`` per seed of ``arm`` (random init: from its seed's first arm's step)."""
    if arm == RANDOM:
        return [records[f"{next(iter(ARMS))}-s{seed}"]["dense"]["random_init"][metric] for seed in budget.seeds]
    return [records[f"{arm}-s{seed}"]["dense"]["student"][metric] for seed in budget.seeds]


def summarise(budget: DenseBudget, records: dict[str, dict], protocol: str) -> dict:
    """Per arm each seed, mean, std; paired intervals against random init and ResMo against plain."""
    arms, versus_random, resmo_effect = {}, {}, {}
    for arm in (*ARMS, RANDOM):
        arms[arm] = {"label": ARMS[arm][0] if arm in ARMS else "random init"}
        for metric in METRICS:
            values = arm_values(budget, records, arm, metric)
            arms[arm][metric] = {"per_seed": values, "mean": statistics.fmean(values),
                                 "std": statistics.stdev(values) if len(values) > 1 else None}
    for metric in METRICS:
        baseline = arm_values(budget, records, RANDOM, metric)
        versus_random[metric] = {arm: paired_interval([a - b for a, b in zip(
            arm_values(budget, records, arm, metric), baseline, strict=True)]) for arm in ARMS}
        resmo_effect[metric] = {method: paired_interval([a - b for a, b in zip(
            arm_values(budget, records, f"{method}-w1", metric), arm_values(budget, records, f"{method}-w0", metric),
            strict=True)]) for method in ("densecl", "mocov3")}
    random_seen = {seed: {json.dumps(records[f"{arm}-s{seed}"]["dense"]["random_init"]) for arm in ARMS}
                   for seed in budget.seeds}
    first = f"{next(iter(ARMS))}-s{budget.seeds[0]}"
    return {
        "command": "python -m benchmarks.dense_scenes" + ("" if protocol == "confirm" else f" --protocol {protocol}"),
        "protocol": protocol, "budget": asdict(budget), "date": time.strftime("%Y-%m-%d"), "machine": machine_info(),
        "arms": arms, "pretrained_minus_random_init": versus_random, "resmo_minus_plain": resmo_effect,
        "random_init_same_in_every_step": all(len(seen) == 1 for seen in random_seen.values()),
        "code_commits": sorted({row["code"]["commit"] for row in records.values() if row["code"].get("commit")}),
        "pretrain_commands": {arm: records[f"{arm}-s{budget.seeds[0]}"]["pretrain"]["command"] for arm in ARMS},
        "dense_command": records[first]["dense"]["command"],
    }


def cached(path: Path, budget: DenseBudget) -> dict | None:
    """A saved step made with this budget, else ``None``."""
    return cached_record(path, asdict(budget))


def ensure_scenes(budget: DenseBudget, scenes: Path) -> None:
    """The scenes with their masks (written, or written again with masks: the same images)."""
    if not (scenes / "ImageSets" / "Segmentation" / "test.txt").is_file():
        subprocess.run([sys.executable, "-m", "benchmarks.cifar10_scenes", *scenes_arguments(budget.pretrain, scenes)],
                       check=True)


def main(argv: list[str] | None = None) -> dict | None:
    args = scene_benchmark_arguments(argv, "python -m benchmarks.dense_scenes", __doc__.splitlines()[0], RESULTS,
                                     protocols=tuple(PROTOCOLS), default="confirm")
    protocol, work, results, scenes = args.protocol, args.work, args.results, args.scenes
    budget = PROTOCOLS[protocol]
    ensure_scenes(budget, scenes)
    records = run_steps(keys(budget), results / "runs", asdict(budget),
                        lambda key: run_step(budget, key, scenes, work), only=args.only)
    if records is None:
        return None
    summary = summarise(budget, records, protocol)
    save_json(results / "summary.json", summary)
    print(json.dumps({"arms": summary["arms"], "pretrained_minus_random_init": summary["pretrained_minus_random_init"],
                      "resmo_minus_plain": summary["resmo_minus_plain"]}, indent=2))
    return summary


if __name__ == "__main__":
    main()
