"""Detection transfer on CIFAR-10 scenes (CPU): DenseCL and MoCo v3, with and without ResMo.

    python -m benchmarks.detection_scenes            # the protocol (hours; resumable)
    python -m benchmarks.detection_scenes --smoke    # the same table on a few dozen scenes (minutes)

1. ``cifar10_scenes.py`` writes the scenes (real CIFAR-10 images pasted on canvases, VOC layout)
   into the work folder (default ``~/.cache/resmo/benchmarks/detection/<protocol>/``).
2. Each arm (method, λ) and seed: ``resmo pretrain`` on the unlabelled scenes (``unlabelled/``,
   no boxes), then ``resmo transfer detect`` of its student backbone (Faster R-CNN R-C4 on
   the train scenes, AP on the test scenes) with the same seed. The student is what MoCo's and
   DenseCL's detection converters take (the query encoder). Both methods pretrain with the same
   optimizer and teacher schedule, so that they differ only in their losses: DenseCL's SGD
   (lr 0.3 per 256 images, scaled linearly to the batch; weight decay 1e-4) and MoCo v3's
   teacher momentum (0.99, cosine to 1). DenseCL's own 0.999 would leave the teacher about
   87 % random init after the ~140 steps here, and resmo's generic AdamW default (lr 0.02)
   inflates a ResNet-18's conv weights 2-2.5x in that time, which slows any later fine-tuning.
3. The random-init baseline: ``resmo transfer detect --random-init`` with the same budget.

Every finished step's result is cached in ``benchmarks/results/detection/<protocol>/runs/
<key>.json`` with the settings it was made with; started again, the script skips steps whose
cached settings match and resumes an unfinished pretraining from its last checkpoint
(``--resume auto``). Pretraining run folders (``<work>/runs/<arm>-s<seed>-<fingerprint>``) are
named by their command, so that a changed budget never resumes a run made with other settings. When all steps are done it writes ``summary.json`` (AP, AP50, AP75 mean ±
std over seeds per arm) beside ``runs/``; ``render_docs.py`` turns it into docs/benchmarks.md.
Each step is a ``python -m resmo.cli`` child process using every core; run it alone, or split
the steps between two copies with ``--only`` and ``OMP_NUM_THREADS=1`` (a ``random-init-s<N>``
step needs ``densecl-w0-s<N>``'s run folder for its architecture: keep them in one copy).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.results_io import cached_record, code_provenance, machine_info, run_steps, save_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "detection"
METRICS = ("AP", "AP50", "AP75")


@dataclass(frozen=True)
class Budget:
    """Scene counts, pretraining and fine-tuning budgets of one protocol."""

    num_train: int
    num_test: int
    num_unlabelled: int
    canvas: int = 128
    pretrain_size: int = 64
    pretrain_epochs: int = 6
    batch_size: int = 64
    detect_epochs: float = 6.0
    detect_batch_size: int = 8
    rois_per_image: int = 64  # 2-4 objects on a 128 px scene: detectron2's 512 would cost 4x the time
    proposals: int = 300
    head: str = "c4"  # transfer detect's --head (results made before it existed were fpn)
    seeds: tuple[int, ...] = (0, 1, 2)
    encoder: str = "student"
    pretrain_optimizer: str = "sgd"
    pretrain_lr_per_256: float = 0.3
    pretrain_weight_decay: float = 1e-4
    teacher_momentum: float = 0.99

    @property
    def pretrain_lr(self) -> float:
        """The pretraining learning rate: ``pretrain_lr_per_256`` scaled linearly to ``batch_size``."""
        return self.pretrain_lr_per_256 * self.batch_size / 256


#: arm key -> (label, method, λ)
ARMS = {
    "densecl-w0": ("DenseCL", "densecl", 0.0),
    "densecl-w1": ("DenseCL + ResMo (λ=1)", "densecl", 1.0),
    "mocov3-w0": ("MoCo v3", "mocov3", 0.0),
    "mocov3-w1": ("MoCo v3 + ResMo (λ=1)", "mocov3", 1.0),
}
RANDOM = "random-init"

PROTOCOLS = {
    # about 100 min on 2 cores as two 1-thread copies: pretraining ~6 min, fine-tuning 125 iterations
    # (4 s each) and evaluation ~10 min per step and copy
    "full": Budget(num_train=500, num_test=300, num_unlabelled=1000, detect_epochs=2.0),
    "smoke": Budget(num_train=24, num_test=12, num_unlabelled=40, pretrain_epochs=1, batch_size=16,
                    detect_epochs=1.0, detect_batch_size=4, seeds=(0,)),
}


def scenes_arguments(budget: Budget, out: Path) -> list[str]:
    """``cifar10_scenes.py`` arguments (no val scenes: the detector trains on train, is scored on test)."""
    return ["--out", str(out), "--num-train", str(budget.num_train), "--num-val", "0",
            "--num-test", str(budget.num_test), "--num-unlabelled", str(budget.num_unlabelled),
            "--canvas", str(budget.canvas)]


def pretrain_arguments(budget: Budget, method: str, weight: float, seed: int, data: str, out: str) -> list[str]:
    """``resmo pretrain`` of one arm and seed: the method's defaults but for the budget's optimizer
    (no warm-up, cosine decay) and teacher momentum (cosine to 1), ResNet-18 with the ImageNet
    stem (the detector's backbone; below 96 px resmo would pick the CIFAR stem), the scenes at
    ``pretrain_size`` px; no kNN monitor (the scenes have no labels)."""
    return ["pretrain", "--method", method, "--backbone", "resnet18", "--data", data,
            "--epochs", str(budget.pretrain_epochs), "--batch-size", str(budget.batch_size),
            "--resmo-weight", str(weight), "--seed", str(seed), "--out", out, "--resume", "auto",
            f"data.image_size={budget.pretrain_size}", "backbone_options.resnet18.cifar_stem=false",
            f"optimizer.name={budget.pretrain_optimizer}", f"optimizer.lr={budget.pretrain_lr:g}",
            f"optimizer.weight_decay={budget.pretrain_weight_decay:g}", "optimizer.warmup_epochs=0",
            f"method_options.{method}.momentum={budget.teacher_momentum:g}", f"method_options.{method}.final_momentum=1.0",
            "data.num_workers=1", "monitor.knn_every_epochs=0",
            "train.progress_bar=false"]


def detect_arguments(budget: Budget, run: str, data: str, seed: int, out: str, *, random_init: bool) -> list[str]:
    """``resmo transfer detect`` of one backbone: scenes at their own size, SGD for ``detect_epochs``,
    ``rois_per_image`` box-head samples and ``proposals`` RPN proposals per image."""
    return ["transfer", "detect", run, "--data", data, "--encoder", budget.encoder, *(["--random-init"] * random_init),
            "--seeds", str(seed), "--train-split", "train", "--eval-split", "test",
            "--epochs", str(budget.detect_epochs), "--batch-size", str(budget.detect_batch_size),
            "--image-size", str(budget.canvas), "--rois-per-image", str(budget.rois_per_image),
            "--proposals", str(budget.proposals), "--head", budget.head, "--out", out]


def keys(budget: Budget) -> list[str]:
    """Every step, ``<arm>-s<seed>`` and ``random-init-s<seed>``, seed by seed: a run stopped
    part-way has every arm at its first seeds."""
    return [f"{arm}-s{seed}" for seed in budget.seeds for arm in (*ARMS, RANDOM)]


def parse_key(key: str) -> tuple[str, int]:
    arm, seed = key.rsplit("-s", 1)
    return arm, int(seed)


def resmo(arguments: list[str]) -> None:
    """One ``resmo`` command in a child process; a failure stops the script in one line (the
    command's own message is printed above it)."""
    done = subprocess.run([sys.executable, "-m", "resmo.cli", *arguments])
    if done.returncode != 0:
        raise SystemExit(f"detection_scenes: error: `resmo {arguments[0]} {arguments[1]} ...` exited with "
                         f"{done.returncode} (its message is above); finished steps are kept, start again to continue")


def pretraining_arm(key: str) -> tuple[str, str, float, int]:
    """``(arm, method, λ, seed)`` of the pretraining step ``key`` uses: its own arm's, or for a
    ``random-init`` step its seed's first arm's (whose run gives the architecture)."""
    arm, seed = parse_key(key)
    arm = next(iter(ARMS)) if arm == RANDOM else arm
    _, method, weight = ARMS[arm]
    return arm, method, weight, seed


def command_folder(work: Path, name: str, command: list[str]) -> Path:
    """``work/runs/<name>-<fingerprint of command>``: a command that changes gets a new folder
    (``--resume auto`` in an old one would continue, or keep, a run made with other settings)."""
    return work / "runs" / f"{name}-{hashlib.sha256(json.dumps(command).encode()).hexdigest()[:10]}"


def timed_pretraining(arguments: list[str], run: Path, data: Path, placeholder: str) -> tuple[dict, dict]:
    """Run ``resmo pretrain arguments`` into ``run``; ``(record, run summary)``: the record holds the
    command (``data`` and ``run`` written as ``placeholder`` and ``RUN``), its seconds and speed."""
    start = time.perf_counter()
    resmo(arguments)
    summary = json.loads((run / "summary.json").read_text())
    return {"command": "resmo " + shlex.join(arguments).replace(str(data), placeholder).replace(str(run), "RUN"),
            "seconds": round(time.perf_counter() - start, 1), "images_per_second": summary["images_per_second"]}, summary


def run_folder(budget: Budget, key: str, work: Path) -> Path:
    """The pretraining run folder of step ``key`` (a ``random-init`` step: its seed's first arm's,
    for the architecture), named by arm, seed and a fingerprint of the pretraining command."""
    arm, method, weight, seed = pretraining_arm(key)
    return command_folder(work, f"{arm}-s{seed}", pretrain_arguments(budget, method, weight, seed, "SCENES", "RUN"))


def pretrain_step(budget: Budget, key: str, scenes: Path, work: Path, *, prog: str = "detection_scenes") -> tuple[Path, dict | None]:
    """``(run folder, pretraining record)`` of step ``key``: ``resmo pretrain`` of its arm (``--resume
    auto``: a finished run is kept as it is), or for a ``random-init`` step no pretraining (record
    ``None``) but its seed's first arm's run folder, which must exist (the architecture)."""
    arm, seed = parse_key(key)
    run = run_folder(budget, key, work)
    if arm == RANDOM:
        if not (run / "summary.json").is_file():
            raise SystemExit(f"{prog}: error: {key} needs the run {run} for its architecture; "
                             f"run {next(iter(ARMS))}-s{seed} first")
        return run, None
    _, method, weight = ARMS[arm]
    arguments = pretrain_arguments(budget, method, weight, seed, str(scenes / "unlabelled"), str(run))
    return run, timed_pretraining(arguments, run, scenes, "SCENES")[0]


def run_step(budget: Budget, key: str, scenes: Path, work: Path) -> dict:
    """Pretrain (an arm) and fine-tune one backbone; the record cached for ``key``."""
    arm, seed = parse_key(key)
    record: dict = {"key": key, "arm": arm, "seed": seed, "budget": asdict(budget), "date": time.strftime("%Y-%m-%d"),
                    "machine": machine_info(load_average_1min=round(os.getloadavg()[0], 2)), "code": code_provenance()}
    run, pretrained = pretrain_step(budget, key, scenes, work)
    if pretrained is not None:
        record["pretrain"] = pretrained
    out = work / "detect" / f"{key}.json"
    arguments = detect_arguments(budget, str(run), str(scenes), seed, str(out), random_init=arm == RANDOM)
    start = time.perf_counter()
    resmo(arguments)
    detected = json.loads(out.read_text())
    record["detect"] = {"command": "resmo " + shlex.join(arguments).replace(str(scenes), "SCENES")
                        .replace(str(run), "RUN").replace(str(out), "OUT.json"),
                        "seconds": round(time.perf_counter() - start, 1),
                        **{metric: detected["mean"][metric] for metric in METRICS}}
    return record


def summarise(budget: Budget, records: dict[str, dict], scenes: dict, protocol: str) -> dict:
    """AP, AP50, AP75 per arm: each seed, mean and sample std (``None`` for one seed)."""
    arms = {}
    for arm in (*ARMS, RANDOM):
        rows = [records[f"{arm}-s{seed}"] for seed in budget.seeds]
        per_metric = {}
        for metric in METRICS:
            values = [row["detect"][metric] for row in rows]
            per_metric[metric] = {"per_seed": values, "mean": statistics.fmean(values),
                                  "std": statistics.stdev(values) if len(values) > 1 else None}
        arms[arm] = {"label": ARMS[arm][0] if arm in ARMS else "random init", **per_metric}
    return {
        "command": "python -m benchmarks.detection_scenes" + (" --smoke" if protocol == "smoke" else ""),
        "protocol": protocol, "budget": asdict(budget), "scenes": scenes, "date": time.strftime("%Y-%m-%d"),
        "machine": machine_info(), "arms": arms,
        "code_commits": sorted({row["code"]["commit"] for row in records.values() if row["code"].get("commit")}),
        "pretrain_commands": {arm: records[f"{arm}-s{budget.seeds[0]}"]["pretrain"]["command"] for arm in ARMS},
        "detect_command": records[f"{next(iter(ARMS))}-s{budget.seeds[0]}"]["detect"]["command"],
    }


def cached(path: Path, budget: Budget) -> dict | None:
    """A cached step made with this budget, else ``None``."""
    return cached_record(path, asdict(budget))


def scene_benchmark_arguments(argv: list[str] | None, prog: str, description: str, results: Path,
                              protocols: tuple[str, ...] = ("full", "smoke"), default: str = "full") -> argparse.Namespace:
    """The command line of a scenes benchmark (this one and dense_scenes.py), with the folders
    it derives: ``protocol`` (one of ``protocols``; ``--smoke`` is ``--protocol smoke``), ``work``
    (scenes and pretraining runs, shared by both benchmarks), ``results`` and ``scenes``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--protocol", choices=protocols, default=default, help=f"default {default}")
    parser.add_argument("--smoke", action="store_true", help="a few dozen scenes, one seed: checks the protocol runs")
    parser.add_argument("--results-dir", type=Path, default=results)
    parser.add_argument("--work-dir", type=Path, help="scenes and runs (default ~/.cache/resmo/benchmarks/detection)")
    parser.add_argument("--only", nargs="*", metavar="KEY", help="run only these steps (e.g. mocov3-w0-s0)")
    args = parser.parse_args(argv)
    args.protocol = "smoke" if args.smoke else args.protocol
    args.work = (args.work_dir or Path.home() / ".cache" / "resmo" / "benchmarks" / "detection") / args.protocol
    args.results = args.results_dir / args.protocol
    args.scenes = args.work / "scenes"
    return args


def main(argv: list[str] | None = None) -> dict | None:
    args = scene_benchmark_arguments(argv, "python -m benchmarks.detection_scenes", __doc__.splitlines()[0], RESULTS)
    protocol, work, results, scenes = args.protocol, args.work, args.results, args.scenes
    budget = PROTOCOLS[protocol]
    if not (scenes / "scenes.json").is_file():
        subprocess.run([sys.executable, "-m", "benchmarks.cifar10_scenes", *scenes_arguments(budget, scenes)], check=True)
    records = run_steps(keys(budget), results / "runs", asdict(budget),
                        lambda key: run_step(budget, key, scenes, work), only=args.only)
    if records is None:
        return None
    summary = summarise(budget, records, json.loads((scenes / "scenes.json").read_text()), protocol)
    save_json(results / "summary.json", summary)
    print(json.dumps(summary["arms"], indent=2))
    return summary


if __name__ == "__main__":
    main()
