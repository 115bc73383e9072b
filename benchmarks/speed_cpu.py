"""Speed ratios on this machine: resmo vs LightlySSL steps, data vs model, ResMo on vs off, memory.

    python -m benchmarks.speed_cpu            # -> benchmarks/results/speed_cpu.json (about 25 min, 2 cores)
    python -m benchmarks.speed_cpu --tiny --out /tmp/speed.json     # seconds (smoke test)

One run, one machine; run it when nothing else is busy. Every measurement runs in a fresh
child process (so each has its own peak memory), and the configurations take turns
(``--rounds`` rounds; medians reported), so slow drifts of the machine hit all of them.

- *Training step* (views already made, random tensors): forward of both views through
  student and teacher, backward, AdamW step, EMA of the teacher. ResNet-18 with CIFAR
  stem, batch 256, the CIFAR recipe heads (hidden 4096, out 256). resmo's methods
  (``resmo.create_method``) with ResMo weight 0 and 1, and the same methods built from
  LightlySSL's blocks (``lightly_baselines.py``), MoCo v3 and BYOL.
- *Data*: two 32 px views of a batch of 256 (the MoCo v3 recipe) from an in-memory uint8
  dataset: the batched path (``data.pipeline: batched``, main process) and the torchvision
  per-image path (``DataLoader`` with 2 workers), over at least 30 batches.
- *Peak memory*: the child's peak resident set size (``VmHWM``) minus its size before
  building the model, in MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.results_io import machine_info, write_result

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "speed_cpu.json"
RECIPE_HEADS = {"hidden_dim": 4096, "out_dim": 256}
TINY_HEADS = {"hidden_dim": 64, "out_dim": 32}
STEP_CONFIGS = ("resmo-mocov3-w0", "resmo-mocov3-w1", "lightly-mocov3",
                "resmo-byol-w0", "resmo-byol-w1", "lightly-byol")
DATA_CONFIGS = ("views-batched", "views-torchvision")
DATA_BATCHES = 30


def memory_mib(field: str) -> float:
    """A ``/proc/self/status`` memory field in MiB: ``VmHWM`` (peak resident) or ``VmRSS`` (now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _backbone(tiny: bool):
    from resmo import create_backbone

    if tiny:
        return create_backbone("resnet_small", width=4)
    return create_backbone("resnet18", cifar_stem=True)


def step_function(config: str, tiny: bool):
    """A callable running one training step on fixed views, for ``config``."""
    import torch

    impl, method, *weight = config.split("-")
    heads = TINY_HEADS if tiny else RECIPE_HEADS
    torch.manual_seed(0)
    if impl == "lightly":
        from benchmarks.lightly_baselines import LightlyModel, adamw, lightly_blocks

        backbone = _backbone(tiny)
        model = LightlyModel(method, backbone, backbone.feature_dim, hidden_dim=heads["hidden_dim"],
                             out_dim=heads["out_dim"], temperature=0.2)
        optimizer = adamw(model.student_parameters(), lr=1e-3, weight_decay=1e-4)
        schedule = lightly_blocks()["cosine_schedule"]

        def step(views, index):
            loss = model.loss(views)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.update_teacher(schedule(index, 1000, 0.99, 1.0))

        return step
    from resmo import create_method
    from resmo.optim.optimizers import build_optimizer

    options = {**heads, "predictor_hidden_dim": heads["hidden_dim"]}
    model = create_method(method, _backbone(tiny), resmo={"weight": float(weight[0][1:])}, **options)
    optimizer = build_optimizer(model.student_parameters(), name="adamw", lr=1e-3, weight_decay=1e-4)

    def step(views, index):
        result = model(views, step=index)
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        optimizer.step()
        model.after_optimizer_step(result, step=index, total_steps=1000)

    return step


def data_function(config: str, batch_size: int, images: int):
    """A callable producing one batch of two views, for ``config``."""
    from torch.utils.data import DataLoader

    from benchmarks.gpu_throughput import RandomImages, looping
    from resmo.data import MultiViewDataset, TorchvisionViews, build_train_loader, build_view_spec
    from resmo.data.batched import BatchedViews, DeviceViews

    data = RandomImages(images, 32)
    spec = build_view_spec("mocov3", 32)
    if config == "views-batched":
        views = DeviceViews(BatchedViews(spec))
        batches = looping(build_train_loader(data, spec, pipeline="batched", batch_size=batch_size, seed=0, workers=0))
        return lambda index: views(next(batches))
    loader = DataLoader(MultiViewDataset(data, TorchvisionViews(spec)), batch_size=batch_size, shuffle=True, drop_last=True,
                        num_workers=2, persistent_workers=True)
    batches = looping(loader)
    return lambda index: next(batches)


def measure(config: str, *, tiny: bool, batch_size: int, steps: int, warmup: int, threads: int) -> dict:
    """In this (child) process: images/s of ``steps`` timed calls after ``warmup``, peak memory."""
    import torch

    torch.set_num_threads(threads)
    import resmo.methods  # noqa: F401 - imports before the baseline memory reading
    if config.startswith("lightly"):
        from benchmarks.lightly_baselines import lightly_blocks

        lightly_blocks()
    before = memory_mib("VmRSS")
    if config in DATA_CONFIGS:
        call = data_function(config, batch_size, images=max(4 * batch_size, 1024))
        steps = max(steps, DATA_BATCHES)  # enough batches that the workers' prefetch does not count
    else:
        step = step_function(config, tiny)
        views = [torch.randn(batch_size, 3, 32, 32) for _ in range(2)]

        def call(index):
            step(views, index)
    for index in range(warmup):
        call(index)
    start = time.perf_counter()
    for index in range(warmup, warmup + steps):
        call(index)
    seconds = time.perf_counter() - start
    peak = memory_mib("VmHWM")
    return {"config": config, "images_per_second": steps * batch_size / seconds,
            "peak_rss_increase_mib": peak - before, "peak_rss_mib": peak}


def ratios(median: dict[str, float]) -> dict[str, float]:
    """The ratios the docs report, for the configurations that were measured."""
    pairs = {}
    for method in ("mocov3", "byol"):
        pairs[f"{method}_resmo_over_lightly"] = (f"resmo-{method}-w0", f"lightly-{method}")
        pairs[f"{method}_resmo_on_over_off"] = (f"resmo-{method}-w1", f"resmo-{method}-w0")
    pairs["views_batched_over_model_step"] = ("views-batched", "resmo-mocov3-w1")
    pairs["views_torchvision_over_model_step"] = ("views-torchvision", "resmo-mocov3-w1")
    return {name: median[a] / median[b] for name, (a, b) in pairs.items() if a in median and b in median}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tiny", action="store_true", help="tiny model and batch (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--configs", nargs="+", choices=(*STEP_CONFIGS, *DATA_CONFIGS),
                        default=(*STEP_CONFIGS, *DATA_CONFIGS), help="what to measure (default: all)")
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.batch_size, args.steps, args.warmup, args.rounds = 16, 1, 1, 1
    options = {"tiny": args.tiny, "batch_size": args.batch_size, "steps": args.steps,
               "warmup": args.warmup, "threads": args.threads}
    if args.child:
        print(json.dumps(measure(args.child, **options)))
        return {}
    samples: dict[str, list[dict]] = {config: [] for config in args.configs}
    load_before = os.getloadavg()[0]
    for round_index in range(args.rounds):
        for config in samples:
            flags = ["--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup",
                     str(args.warmup), "--threads", str(args.threads)] + (["--tiny"] if args.tiny else [])
            output = subprocess.run([sys.executable, "-m", "benchmarks.speed_cpu", *flags, "--child", config],
                                    check=True, capture_output=True, text=True).stdout
            samples[config].append(json.loads(output.strip().splitlines()[-1]))
            print(f"round {round_index + 1}: {config}: {samples[config][-1]['images_per_second']:.1f} images/s",
                  flush=True)
    median = {c: statistics.median(s["images_per_second"] for s in runs) for c, runs in samples.items()}

    result = {
        "command": "python -m benchmarks.speed_cpu " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(threads=args.threads, load_average_1min_before=round(load_before, 2),
                                load_average_1min_after=round(os.getloadavg()[0], 2)),
        "model": "resnet_small width 4 (tiny)" if args.tiny else "resnet18, CIFAR stem, heads 4096 -> 256",
        "batch_size": args.batch_size, "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds,
        "images_per_second_median": {c: round(v, 2) for c, v in median.items()},
        "peak_rss_increase_mib": {c: round(max(s["peak_rss_increase_mib"] for s in runs), 1)
                                  for c, runs in samples.items()},
        "samples": samples,
        "ratios": {name: round(value, 3) for name, value in ratios(median).items()},
        "targets": {"resmo_on_over_off_min": 0.97},
    }
    return write_result(args.out, result, shown={
        k: result[k] for k in ("images_per_second_median", "ratios", "peak_rss_increase_mib")})


if __name__ == "__main__":
    main()
