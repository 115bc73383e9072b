"""Dense probe on CIFAR-10 scenes (CPU): DenseCL and MoCo v3, each with and without ResMo, against random init.

    python -m benchmarks.dense_scenes --protocol objects-pilot   # seeds 0-1 on the val scenes, exploratory
    python -m benchmarks.dense_scenes                            # confirm: seeds 200-204 on the test scenes,
                                                                 # pre-registered in benchmarks/preregistered/dense-confirm.yaml
    python -m benchmarks.dense_scenes --protocol densecl-pilot   # DenseCL pretrained 4x the steps: seed 0, val scenes
    python -m benchmarks.dense_scenes --protocol densecl-confirm # the same at seeds 300-304 on the test scenes, pre-
                                                                 # registered in benchmarks/preregistered/dense-densecl-confirm.yaml
    python -m benchmarks.dense_scenes --protocol pilot           # the scenes' own pretraining, seeds 0-2 (exploratory)
    python -m benchmarks.dense_scenes --smoke                    # a few dozen scenes, one seed (minutes)

Resumable: each step is saved as it ends. Two pretrainings:

- **scenes** (protocols ``pilot`` and ``smoke``): ``detection_scenes.py``'s, step for step: the
  same ``cifar10_scenes.py`` arguments (the generator also writes the segmentation masks), the
  same ``resmo pretrain`` of each arm and seed (ResNet-18 on the unlabelled scenes,
  :func:`detection_scenes.pretrain_step`) into the same run folders (named by the pretraining
  command), so that a pretraining run made by either script serves both. The pilot showed that
  this pretraining (about 100 steps) leaves the student where random init is on the probe.
- **objects** (protocols ``objects-pilot`` and ``confirm``): ``object_pretraining.py``'s,
  resnet_small on CIFAR-10's training images (the quality benchmark's short protocol on 20,000
  of them), probed on 500 train, 300 val and 300 test scenes written for the protocol (no
  unlabelled scenes: pretraining does not read scenes). The two protocols differ only in their
  seeds and the split the probe is scored on: the pilot's (0 and 1, val scenes, the test scenes
  unread) shows whether the benchmark separates pretraining from random init and sizes the
  confirmatory design (``python -m benchmarks.preregistration power --benchmark dense --protocol
  objects-pilot``); the confirmatory seeds are fresh, fixed with the hypotheses before any of
  their runs, and read the test scenes once. ``densecl-pilot`` and ``densecl-confirm`` run
  DenseCL's two arms only, pretrained four times as many steps (:data:`LONG_DENSECL`), because
  at the shorter budget plain DenseCL did not get ahead of random init.

The work folder is by default ``detection_scenes.py``'s (``~/.cache/resmo/benchmarks/detection/<protocol>/``).

Each arm and seed: ``resmo eval dense`` of the run's student (the encoder the detection
converters take) with the probe seeded by the same seed: trained on the train scenes, scored
(mIoU, pixel accuracy) on the protocol's split, at the scenes' size. Random init: ``resmo eval
dense`` reports with every student a random-init backbone of the same architecture drawn with
the same seed (one backbone per seed, whatever the run), probed with the same settings; the
``random-init`` arm takes it from its seed's first arm.

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

from benchmarks import detection_scenes, object_pretraining
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
from benchmarks.object_pretraining import ObjectsBudget
from benchmarks.results_io import cached_record, code_provenance, machine_info, run_steps, save_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "dense"
METRICS = ("mIoU", "pixel_accuracy")
PROG = "dense_scenes"


@dataclass(frozen=True)
class DenseBudget:
    """The pretraining (``detection_scenes.py``'s on the scenes, with this protocol's seeds, or
    ``object_pretraining.py``'s on CIFAR-10's images), the probe, and the split it is scored on."""

    pretrain: Budget | ObjectsBudget
    image_size: int = 128  # the scenes' own size, as the detector sees them
    stages: str = "3,4"
    epochs: int = 20
    lr: float = 0.01
    batch_size: int = 32
    seeds: tuple[int, ...] = field(default=(0, 1, 2, 3, 4))
    eval_split: str = "test"
    #: scenes of an object-pretraining protocol (train, val, test); the scenes' pretraining takes
    #: detection_scenes.py's scenes (``pretrain``'s counts, no val scenes)
    scenes: tuple[int, int, int] | None = None
    #: the pretrained arms (keys of ``detection_scenes.ARMS``) the protocol runs; random init is
    #: taken from the first one's steps
    arms: tuple[str, ...] = tuple(ARMS)

    @property
    def encoder(self) -> str:
        return self.pretrain.encoder


#: fields added after the first results, at the values those had: left out of a budget's settings
#: at these values, so that those results stay valid
LATER_FIELDS = {"eval_split": "test", "scenes": None, "arms": tuple(ARMS)}
#: the same for the object pretraining's fields
LATER_PRETRAIN_FIELDS = {"densecl_options": ()}


def settings(budget: DenseBudget) -> dict:
    """The budget as saved with each step (and compared to reuse one)."""
    kept = {name: value for name, value in asdict(budget).items() if LATER_FIELDS.get(name, object()) != value}
    kept["pretrain"] = {name: value for name, value in kept["pretrain"].items()
                        if LATER_PRETRAIN_FIELDS.get(name, object()) != value}
    return kept


def _seeds(seeds: tuple[int, ...]) -> DenseBudget:
    """detection_scenes.py's full pretraining budget and this probe, at ``seeds``."""
    return DenseBudget(replace(detection_scenes.PROTOCOLS["full"], seeds=seeds), seeds=seeds)


def _objects(seeds: tuple[int, ...], split: str) -> DenseBudget:
    """Object pretraining (``object_pretraining.ObjectsBudget``) and the probe, at ``seeds``, scored on ``split``."""
    return DenseBudget(ObjectsBudget(), seeds=seeds, eval_split=split, scenes=(500, 300, 300))


#: DenseCL's longer object pretraining: 4 epochs of batch 128 (624 optimizer steps, 4 times the
#: 2 x 256 budget's) with a 4,096-key queue (filled after 32 steps; the default 65,536 holds more
#: keys than the 2 x 256 budget makes). Chosen on the kNN monitor of held-out training images
#: (never the scenes) after the ``confirm`` protocol's plain DenseCL stayed level with random init:
#: at 2 x 256, single runs with another queue size, learning rate, momentum, temperature, shuffled
#: BatchNorm groups, no dense loss or SGD at the reference's lr lifted plain DenseCL's kNN by about a
#: point at most, more optimizer steps (batch 64) the most (an exploratory screen, not a
#: benchmark). ``densecl-confirm`` showed that four times the steps did not get plain DenseCL
#: ahead of random init either.
LONG_DENSECL = ObjectsBudget(epochs=4, batch_size=128, densecl_options=("queue_size=4096",))


def _densecl(seeds: tuple[int, ...], split: str) -> DenseBudget:
    """DenseCL with and without ResMo on :data:`LONG_DENSECL`, at ``seeds``, scored on ``split``."""
    return replace(_objects(seeds, split), pretrain=LONG_DENSECL, arms=("densecl-w0", "densecl-w1"))


PROTOCOLS = {
    "pilot": _seeds((0, 1, 2)),
    "objects-pilot": _objects((0, 1), "val"),
    "confirm": _objects(tuple(range(200, 205)), "test"),
    "densecl-pilot": _densecl((0,), "val"),
    "densecl-confirm": _densecl(tuple(range(300, 305)), "test"),
    "smoke": DenseBudget(detection_scenes.PROTOCOLS["smoke"], epochs=5, seeds=(0,)),
}


def keys(budget: DenseBudget) -> list[str]:
    """Every step, ``<arm>-s<seed>``, seed by seed (random init needs no step of its own)."""
    return [f"{arm}-s{seed}" for seed in budget.seeds for arm in budget.arms]


def dense_arguments(budget: DenseBudget, run: str, scenes: str, seed: int, out: str) -> list[str]:
    """``resmo eval dense`` of a run's student (and the random-init baseline) with ``seed``."""
    return ["eval", "dense", run, "--data", scenes, "--encoder", budget.encoder,
            "--train-split", "train", "--val-split", budget.eval_split, "--image-size", str(budget.image_size),
            "--stages", budget.stages, "--epochs", str(budget.epochs), "--lr", f"{budget.lr:g}",
            "--batch-size", str(budget.batch_size), "--seed", str(seed), "--device", "cpu", "--out", out]


def pretrain(budget: DenseBudget, key: str, scenes: Path, work: Path) -> tuple[Path, dict]:
    """Pretrain step ``key``'s arm (or keep its finished run): on the scenes' unlabelled images, or
    on CIFAR-10's training images (extracted by ``cifar10_folder.py`` when missing)."""
    if isinstance(budget.pretrain, ObjectsBudget):
        from benchmarks.cifar10_folder import cifar10_folder

        return object_pretraining.pretrain_step(budget.pretrain, key, cifar10_folder(), work)
    return pretrain_step(budget.pretrain, key, scenes, work, prog=PROG)


def run_step(budget: DenseBudget, key: str, scenes: Path, work: Path) -> dict:
    """Pretrain an arm (or keep its finished run) and probe its student; the record saved for ``key``."""
    arm, seed = parse_key(key)
    record: dict = {"key": key, "arm": arm, "seed": seed, "budget": settings(budget), "date": time.strftime("%Y-%m-%d"),
                    "machine": machine_info(load_average_1min=round(os.getloadavg()[0], 2)), "code": code_provenance()}
    run, record["pretrain"] = pretrain(budget, key, scenes, work)
    out = work / "dense" / f"{key}.json"
    arguments = dense_arguments(budget, str(run), str(scenes), seed, str(out))
    start = time.perf_counter()
    resmo(arguments)
    probed = json.loads(out.read_text())
    record["dense"] = {"command": "resmo " + shlex.join(arguments).replace(str(scenes), "SCENES")
                       .replace(str(run), "RUN").replace(str(out), "OUT.json"),
                       "seconds": round(time.perf_counter() - start, 1),
                       "split": budget.eval_split,
                       "student": {m: probed["results"][budget.encoder][m] for m in METRICS},
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
        return [records[f"{budget.arms[0]}-s{seed}"]["dense"]["random_init"][metric] for seed in budget.seeds]
    return [records[f"{arm}-s{seed}"]["dense"]["student"][metric] for seed in budget.seeds]


def summarise(budget: DenseBudget, records: dict[str, dict], protocol: str) -> dict:
    """Per arm each seed, mean, std; paired intervals against random init and ResMo against plain."""
    arms, versus_random, resmo_effect = {}, {}, {}
    methods = [method for method in dict.fromkeys(ARMS[arm][1] for arm in budget.arms)
               if {f"{method}-w0", f"{method}-w1"} <= set(budget.arms)]
    for arm in (*budget.arms, RANDOM):
        arms[arm] = {"label": ARMS[arm][0] if arm in ARMS else "random init"}
        for metric in METRICS:
            values = arm_values(budget, records, arm, metric)
            arms[arm][metric] = {"per_seed": values, "mean": statistics.fmean(values),
                                 "std": statistics.stdev(values) if len(values) > 1 else None}
    for metric in METRICS:
        baseline = arm_values(budget, records, RANDOM, metric)
        versus_random[metric] = {arm: paired_interval([a - b for a, b in zip(
            arm_values(budget, records, arm, metric), baseline, strict=True)]) for arm in budget.arms}
        resmo_effect[metric] = {method: paired_interval([a - b for a, b in zip(
            arm_values(budget, records, f"{method}-w1", metric), arm_values(budget, records, f"{method}-w0", metric),
            strict=True)]) for method in methods}
    random_seen = {seed: {json.dumps(records[f"{arm}-s{seed}"]["dense"]["random_init"]) for arm in budget.arms}
                   for seed in budget.seeds}
    first = f"{budget.arms[0]}-s{budget.seeds[0]}"
    return {
        "command": "python -m benchmarks.dense_scenes" + ("" if protocol == "confirm" else f" --protocol {protocol}"),
        "protocol": protocol, "budget": settings(budget), "date": time.strftime("%Y-%m-%d"), "machine": machine_info(),
        "arms": arms, "pretrained_minus_random_init": versus_random, "resmo_minus_plain": resmo_effect,
        "random_init_same_in_every_step": all(len(seen) == 1 for seen in random_seen.values()),
        "code_commits": sorted({row["code"]["commit"] for row in records.values() if row["code"].get("commit")}),
        "pretrain_commands": {arm: records[f"{arm}-s{budget.seeds[0]}"]["pretrain"]["command"] for arm in budget.arms},
        "dense_command": records[first]["dense"]["command"],
    }


def cached(path: Path, budget: DenseBudget) -> dict | None:
    """A saved step made with this budget, else ``None``."""
    return cached_record(path, settings(budget))


def ensure_scenes(budget: DenseBudget, scenes: Path) -> None:
    """The scenes with their masks (written, or written again with masks: the same images)."""
    if budget.scenes is None:
        arguments = scenes_arguments(budget.pretrain, scenes)
    else:
        train, val, test = budget.scenes
        arguments = ["--out", str(scenes), "--num-train", str(train), "--num-val", str(val), "--num-test", str(test),
                     "--num-unlabelled", "0", "--canvas", str(budget.image_size)]
    if not (scenes / "ImageSets" / "Segmentation" / f"{budget.eval_split}.txt").is_file():
        subprocess.run([sys.executable, "-m", "benchmarks.cifar10_scenes", *arguments], check=True)


def main(argv: list[str] | None = None) -> dict | None:
    args = scene_benchmark_arguments(argv, "python -m benchmarks.dense_scenes", __doc__.splitlines()[0], RESULTS,
                                     protocols=tuple(PROTOCOLS), default="confirm")
    protocol, work, results, scenes = args.protocol, args.work, args.results, args.scenes
    budget = PROTOCOLS[protocol]
    ensure_scenes(budget, scenes)
    records = run_steps(keys(budget), results / "runs", settings(budget),
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
