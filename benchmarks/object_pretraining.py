"""Pretraining on CIFAR-10's object images for the dense probe on CIFAR-10 scenes (CPU).

The scenes' own pretraining (``detection_scenes.py``: ResNet-18 on 1,000 unlabelled 64 px
scenes, about 100 steps) leaves the encoder where random init is on the dense probe (the dense
pilot: student mIoU within a point of random init's, either side). This one pretrains the
quality benchmark's encoder (``resnet_small``, width 8, 32 px) the way its short protocol does
(``protocol.py``: AdamW at 0.005 with a quarter-epoch warm-up then cosine decay, weight decay
1e-4 skipping norms and biases, the batched 32 px views of each method, teacher momentum 0.96
on a cosine to 1, 512-128 heads) on ``max_images`` of CIFAR-10's training images (a
class-balanced pick seeded by the run's seed) for ``epochs`` epochs, with 10 % of the training
images held out for the kNN monitor (``data.val_fraction``), so that pretraining reads no test
image.

Which images: the train and val scenes' objects come from CIFAR-10's training split, the test
scenes' from its test split (``cifar10_scenes.py``): pretraining sees the objects of the scenes
the probe is trained on (as ImageNet pretraining sees VOC-like objects), never those of the
scenes it is scored on.

Each arm of ``detection_scenes.ARMS`` (DenseCL and MoCo v3, λ = 0 or 1) gets its method's
heads at those sizes (DenseCL: its global and dense 512-128 projection heads, no predictor;
MoCo v3: projector and predictor, temperature 0.2) and otherwise the method's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.detection_scenes import command_folder, pretraining_arm, timed_pretraining


@dataclass(frozen=True)
class ObjectsBudget:
    """What every object pretraining of a dense protocol shares (see the module docstring)."""

    width: int = 8
    epochs: int = 2
    max_images: int = 20000
    batch_size: int = 256
    lr: float = 0.005
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.25
    momentum: float = 0.96
    hidden_dim: int = 512
    out_dim: int = 128
    mocov3_temperature: float = 0.2
    val_fraction: float = 0.1
    encoder: str = "student"
    #: ``key=value`` settings of ``method_options.densecl`` given to DenseCL's pretraining only
    #: (none: the method's defaults beside the heads and momentum above)
    densecl_options: tuple[str, ...] = ()


def pretrain_arguments(budget: ObjectsBudget, method: str, weight: float, seed: int, data: str, out: str) -> list[str]:
    """``resmo pretrain`` of one arm and seed on the CIFAR-10 folder ``data`` (``train/<class>/``)."""
    heads = [f"method_options.{method}.hidden_dim={budget.hidden_dim}", f"method_options.{method}.out_dim={budget.out_dim}",
             f"method_options.{method}.momentum={budget.momentum:g}", f"method_options.{method}.final_momentum=1.0"]
    if method == "mocov3":
        heads += [f"method_options.mocov3.predictor_hidden_dim={budget.hidden_dim}",
                  f"method_options.mocov3.temperature={budget.mocov3_temperature:g}"]
    if method == "densecl":
        heads += [f"method_options.densecl.{option}" for option in budget.densecl_options]
    return ["pretrain", "--method", method, "--backbone", "resnet_small", "--data", data,
            "--epochs", str(budget.epochs), "--batch-size", str(budget.batch_size),
            "--resmo-weight", str(weight), "--seed", str(seed), "--out", out, "--resume", "auto",
            "data.image_size=32", "data.pipeline=batched", "data.num_workers=1",
            f"data.max_images={budget.max_images}", f"data.val_fraction={budget.val_fraction:g}",
            f"backbone_options.resnet_small.width={budget.width}", "optimizer.name=adamw",
            f"optimizer.lr={budget.lr:g}", f"optimizer.weight_decay={budget.weight_decay:g}",
            f"optimizer.warmup_epochs={budget.warmup_epochs:g}", "train.progress_bar=false", *heads]


def run_folder(budget: ObjectsBudget, key: str, work: Path) -> Path:
    """The run folder of step ``key`` (``random-init``: its seed's first arm's), named by arm, seed
    and a fingerprint of the pretraining command, as ``detection_scenes.run_folder``."""
    arm, method, weight, seed = pretraining_arm(key)
    return command_folder(work, f"objects-{arm}-s{seed}", pretrain_arguments(budget, method, weight, seed, "CIFAR10_FOLDER", "RUN"))


def pretrain_step(budget: ObjectsBudget, key: str, cifar10: Path, work: Path) -> tuple[Path, dict]:
    """``(run folder, pretraining record)`` of arm step ``key`` (``--resume auto``: a finished run
    is kept as it is); the record holds the command, its time and the kNN monitor's end values."""
    _, method, weight, seed = pretraining_arm(key)
    run = run_folder(budget, key, work)
    arguments = pretrain_arguments(budget, method, weight, seed, str(cifar10), str(run))
    record, summary = timed_pretraining(arguments, run, cifar10, "CIFAR10_FOLDER")
    return run, {**record, "train_images": summary.get("train_images"), "monitor_split": summary.get("monitor_split"),
                 "knn_top1": {name: summary.get(f"knn_top1_{name}") for name in ("student", "teacher", "random_init")}}
