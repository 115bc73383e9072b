"""The CPU quality protocol on real CIFAR-10: its arms, budgets and per-run settings.

An *arm* is one row of the results table (a method, an implementation, a ResMo setting);
a *run* is one arm at one seed. A *budget* fixes everything the arms share: backbone,
resolution, data, optimizer, epochs, evaluation. ``full`` is the short-budget protocol reported
in docs/benchmarks.md; ``smoke`` is the same table on a few hundred images, in minutes;
``long`` follows MoCo v3 and BYOL with and without ResMo over 30 epochs (curves per epoch).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Budget:
    """What every run of a protocol shares.

    ``train_per_class`` / ``test_per_class``: images per class taken from CIFAR-10's
    train / test splits (``None``: all, 5,000 / 1,000). Views are the method's 32 px
    views (``resmo.data.build_view_spec``), made by the batched path. The optimizer
    is AdamW with linear warm-up then cosine decay; weight decay skips norms and biases.
    The teacher momentum follows a cosine schedule from ``momentum`` to ``final_momentum``
    (1 unless set); ``constant_lr`` keeps the learning rate at ``lr`` after the warm-up.
    ``val_fraction``: the share of the training images held out for the kNN monitor (the
    test split is then read only by the evaluation after training).
    """

    width: int
    epochs: int
    batch_size: int = 256
    lr: float = 0.005
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    momentum: float = 0.96
    hidden_dim: int = 512
    out_dim: int = 128
    temperature: float = 0.2
    train_per_class: int | None = None
    test_per_class: int | None = None
    knn_k: tuple[int, ...] = (20, 200)
    linear_steps: int = 200
    knn_every_epochs: int = 0
    knn_max_train: int = 2000
    knn_max_val: int = 1000
    val_fraction: float | None = None
    constant_lr: bool = False
    final_momentum: float = 1.0


#: Budget fields added after the first results, with their values then: at those values they
#: are left out of the fingerprint, so that those results stay valid. ``val_fraction``: the kNN
#: monitor on a held-out share of the training images (``data.val_fraction``), not the test
#: split; ``constant_lr``: no decay after the warm-up (``optimizer.min_lr = lr``);
#: ``final_momentum``: where the teacher momentum's cosine schedule ends.
LATER_BUDGET_FIELDS = {"knn_every_epochs": 0, "knn_max_train": 2000, "knn_max_val": 1000,
                       "val_fraction": None, "constant_lr": False, "final_momentum": 1.0}


@dataclass(frozen=True)
class Arm:
    """One configuration. ``impl``: ``resmo`` (``resmo pretrain``) or ``lightly``
    (the same method built from LightlySSL's blocks, ``lightly_baselines.py``)."""

    key: str
    label: str
    group: str
    method: str
    weight: float = 0.0
    distance: str = "cosine"
    impl: str = "resmo"
    seeds: tuple[int, ...] = (0,)
    level: str = "output"


@dataclass(frozen=True)
class Protocol:
    name: str
    budget: Budget
    arms: tuple[Arm, ...]
    random_init_seeds: tuple[int, ...] = (0, 1, 2)
    notes: tuple[str, ...] = field(default=())

    def runs(self) -> list[tuple[Arm, int]]:
        return [(arm, seed) for arm in self.arms for seed in arm.seeds]

    def arm(self, key: str) -> Arm:
        for arm in self.arms:
            if arm.key == key:
                return arm
        raise KeyError(f"no arm {key!r} in protocol {self.name!r}")

    def run_keys(self) -> list[str]:
        """Every run: the random-init evaluations, then each arm at each seed."""
        return [random_key(seed) for seed in self.random_init_seeds] + [run_key(a, s) for a, s in self.runs()]

    def parse(self, key: str) -> tuple[Arm | None, int]:
        """``(arm, seed)`` of a run key; ``arm`` is ``None`` for a random-init evaluation."""
        stem, _, seed = key.rpartition("-s")
        return (None if stem == "random" else self.arm(stem)), int(seed)

    def expected_fingerprint(self, key: str) -> str:
        """The fingerprint a cached result of ``key`` must carry to be reused."""
        arm, seed = self.parse(key)
        if arm is None:
            return random_init_fingerprint(self.budget, seed)
        return fingerprint(self.budget, arm, seed)


def run_key(arm: Arm, seed: int) -> str:
    return f"{arm.key}-s{seed}"


def random_key(seed: int) -> str:
    return f"random-s{seed}"


def result_file(protocol: Protocol, key: str, results: Path) -> Path:
    """Where the result of run ``key`` is cached: ``<results>/<protocol>/runs/<key>.json``."""
    return results / protocol.name / "runs" / f"{key}.json"


def cached_result(protocol: Protocol, key: str, results: Path) -> dict | None:
    """The cached result of ``key`` if it was made with the current settings (same fingerprint)."""
    path = result_file(protocol, key, results)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if record.get("fingerprint") == protocol.expected_fingerprint(key) else None


def fingerprint(budget: Budget, arm: Arm, seed: int) -> str:
    """Changes whenever a setting that affects the run's result changes (cache key).

    An arm's seed list is not a setting of one run. ``level`` came after the first results:
    at its default it is left out, so that those results stay valid.
    """
    settings = {**asdict(arm), "seeds": None}
    if arm.level == "output":
        del settings["level"]
    return _digest({"budget": budget_settings(budget), "arm": settings, "seed": seed})


def budget_settings(budget: Budget) -> dict:
    """The budget as a dict, without the later fields at their earlier values."""
    return {name: value for name, value in asdict(budget).items()
            if LATER_BUDGET_FIELDS.get(name, object()) != value}


def random_init_fingerprint(budget: Budget, seed: int) -> str:
    """Cache key of a random-init evaluation: the budget fields it depends on, and the seed."""
    fields = ("width", "train_per_class", "test_per_class", "knn_k", "linear_steps")
    return _digest({"random_init": {name: getattr(budget, name) for name in fields}, "seed": seed})


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def arms(seeds: tuple[int, ...]) -> tuple[Arm, ...]:
    """The table: MoCo v3 (core) and BYOL (extra) without ResMo, with λ=1 and with λ=0.3, at
    ``seeds``; one-seed sweep and ablations; peer baselines."""
    return (
        Arm("mocov3-w0", "MoCo v3", "core", "mocov3", 0.0, seeds=seeds),
        Arm("mocov3-w1", "MoCo v3 + ResMo (λ=1)", "core", "mocov3", 1.0, seeds=seeds),
        Arm("mocov3-w0.3", "MoCo v3 + ResMo (λ=0.3)", "core", "mocov3", 0.3, seeds=seeds),
        Arm("byol-w0", "BYOL", "extra", "byol", 0.0, seeds=seeds),
        Arm("byol-w1", "BYOL + ResMo (λ=1)", "extra", "byol", 1.0, seeds=seeds),
        Arm("byol-w0.3", "BYOL + ResMo (λ=0.3)", "extra", "byol", 0.3, seeds=seeds),
        Arm("mocov3-w3", "MoCo v3 + ResMo (λ=3)", "sweep", "mocov3", 3.0),
        Arm("mocov3-w1-kd", "MoCo v3 + ResMo (λ=1, KD distance)", "ablation", "mocov3", 1.0, "kd"),
        Arm("mocov3-w1-projection", "MoCo v3 + ResMo (λ=1, projection level)", "ablation", "mocov3", 1.0,
            level="projection"),
        Arm("mocov3-w1-features", "MoCo v3 + ResMo (λ=1, backbone features)", "ablation", "mocov3", 1.0,
            level="features"),
        Arm("lightly-mocov3", "MoCo v3 from LightlySSL blocks", "peer", "mocov3", impl="lightly"),
        Arm("lightly-byol", "BYOL from LightlySSL blocks", "peer", "byol", impl="lightly"),
    )


def long_arms(seeds: tuple[int, ...]) -> tuple[Arm, ...]:
    """ResMo over the course of training: the table's MoCo v3 and BYOL arms plain, with λ=1, and
    (MoCo v3) with the short protocol's best λ, 0.3 (BYOL's best there is λ=1)."""
    keys = ("mocov3-w0", "mocov3-w1", "mocov3-w0.3", "byol-w0", "byol-w1")
    return tuple(arm for arm in arms(seeds) if arm.key in keys)


#: The confirmatory protocol's seeds: fresh (every earlier committed quality result used seeds 0 to 4).
CONFIRM_SEEDS = tuple(range(100, 110))
#: The arms the pre-registered short-protocol hypotheses compare (benchmarks/preregistered/).
CONFIRM_ARMS = ("mocov3-w0", "mocov3-w0.3", "byol-w0", "byol-w1")


PROTOCOLS = {
    "full": Protocol(
        "full",
        Budget(width=8, epochs=2, warmup_epochs=0.25),
        arms(seeds=(0, 1, 2, 3, 4)),
    ),
    "long": Protocol(
        "long",
        Budget(width=8, epochs=30, warmup_epochs=2.0, train_per_class=1000, knn_every_epochs=3,
               knn_max_train=10000, knn_max_val=10000),
        long_arms(seeds=(0, 1, 2)),
        notes=("long: 10,000 class-balanced training images, 30 epochs; kNN of student and teacher on "
               "all 10,000 test images every 3 epochs, intra gap every epoch",),
    ),
    "confirm": Protocol(
        "confirm",
        Budget(width=8, epochs=2, warmup_epochs=0.25, val_fraction=0.1),
        tuple(arm for arm in arms(CONFIRM_SEEDS) if arm.key in CONFIRM_ARMS),
        random_init_seeds=(100,),
        notes=("confirm: the short protocol with 10% of CIFAR-10's training images held out (class-balanced) "
               "for the kNN monitor; the test split is read once, by the evaluation after training; seeds "
               "100-109, never used before; pre-registered in benchmarks/preregistered/",),
    ),
    "smoke": Protocol(
        "smoke",
        Budget(width=4, epochs=1, batch_size=64, hidden_dim=64, out_dim=32,
               train_per_class=64, test_per_class=20, knn_k=(20,), linear_steps=20),
        arms(seeds=(0, 1)),
        random_init_seeds=(0,),
        notes=("smoke: checks that the protocol runs end to end; its numbers mean nothing",),
    ),
}


def pretrain_arguments(budget: Budget, arm: Arm, seed: int, data: str, out: str) -> list[str]:
    """``resmo pretrain`` arguments of one resmo run (also what the results record)."""
    method = arm.method
    heads = [f"method_options.{method}.hidden_dim={budget.hidden_dim}",
             f"method_options.{method}.out_dim={budget.out_dim}",
             f"method_options.{method}.predictor_hidden_dim={budget.hidden_dim}",
             f"method_options.{method}.momentum={budget.momentum}"]
    if budget.final_momentum != 1.0:
        heads.append(f"method_options.{method}.final_momentum={budget.final_momentum}")
    if method == "mocov3":
        heads.append(f"method_options.mocov3.temperature={budget.temperature}")
    return [
        "pretrain", "--method", method, "--backbone", "resnet_small", "--data", data,
        "--epochs", str(budget.epochs), "--batch-size", str(budget.batch_size),
        "--resmo-weight", str(arm.weight), "--seed", str(seed), "--out", out, "--resume", "auto",
        "data.image_size=32", "data.pipeline=batched", "data.num_workers=1",
        f"backbone_options.resnet_small.width={budget.width}",
        "optimizer.name=adamw", f"optimizer.lr={budget.lr}",
        f"optimizer.weight_decay={budget.weight_decay}",
        f"optimizer.warmup_epochs={budget.warmup_epochs}",
        *([f"optimizer.min_lr={budget.lr}"] if budget.constant_lr else []),
        *([f"data.val_fraction={budget.val_fraction}"] if budget.val_fraction is not None else []),
        f"resmo.distance={arm.distance}", f"resmo.level={arm.level}",
        f"monitor.knn_max_train={budget.knn_max_train}", f"monitor.knn_max_val={budget.knn_max_val}",
        *([f"monitor.knn_every_epochs={budget.knn_every_epochs}"] if budget.knn_every_epochs else []),
        "train.progress_bar=false", *heads,
    ]
