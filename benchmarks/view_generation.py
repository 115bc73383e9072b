"""View generation on CPU: torchvision per-image pipeline vs the batched path, images per second.

    python -m benchmarks.view_generation          # writes benchmarks/results/view_generation.json
    python -m benchmarks.view_generation --kornia # also kornia.augmentation on the same batches
    python -m benchmarks.view_generation --tiny --out /tmp/v.json   # a seconds-long smoke test

Both paths make the same two 32 px views (``build_view_spec("mocov3", 32)``: random
resized crop, flip, colour jitter p 0.8, grayscale p 0.2, solarisation 0 / 0.2, normalise)
of the same in-memory uint8 images (the built-in synthetic textures):

- ``torchvision``: ``MultiViewDataset`` in a ``DataLoader`` with ``--workers`` processes
  (1 torch thread each, as DataLoader sets), batches collated in the main process; timed
  over whole epochs after a warm-up epoch (persistent workers, so no start-up cost);
- ``batched``: uint8 batches from ``build_train_loader(..., pipeline="batched")`` (one
  gather per batch) and ``BatchedViews`` on them, with ``--threads`` torch threads (each count in
  ``--threads`` is measured).

Rounds alternate between the paths, so that a machine shared with other jobs slows them
alike; the JSON keeps every round, the medians, the load average before and after, and
the command. The headline ratio is the batched median with 1 torch thread (one core) over
the torchvision median (``--workers`` processes): the conservative comparison. On a busy
machine more threads can be much slower than one (OpenMP threads wait on each other while
the cores run other jobs); the 2-thread figure is recorded next to it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from benchmarks.results_io import machine_info, write_result
from resmo.data import MultiViewDataset, TorchvisionViews, build_train_loader, build_view_spec
from resmo.data.batched import BatchedViews
from resmo.data.textures import SyntheticTextures

RESULTS = Path(__file__).parent / "results" / "view_generation.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def torchvision_rate(loader: DataLoader) -> float:
    start, images = time.perf_counter(), 0
    for views, _labels in loader:
        images += views[0].shape[0]
    return images / (time.perf_counter() - start)


def batched_rate(loader: DataLoader, make_views: BatchedViews, threads: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start, images = time.perf_counter(), 0
        for batch, _labels, _seed in loader:
            views = make_views(batch)
            images += views[0].shape[0]
        return images / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)


def kornia_views(batched: BatchedViews):
    """kornia.augmentation pipelines with the settings of ``batched``'s views (one per view)."""
    import kornia.augmentation as K

    pipelines = []
    for spec in batched.specs:
        steps = [
            K.RandomResizedCrop((spec.size, spec.size), scale=spec.scale, ratio=spec.ratio, resample=spec.interpolation),
            K.RandomHorizontalFlip(p=spec.flip_prob),
            K.ColorJitter(
                *(r[1] - 1 if r else 0 for r in spec.jitter_ranges[:3]),
                spec.hue, p=spec.jitter_prob,
            ),
            K.RandomGrayscale(p=spec.grayscale_prob),
        ]
        if spec.solarize_prob > 0:
            steps.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=spec.solarize_prob))
        steps.append(K.Normalize(mean=torch.tensor(spec.mean), std=torch.tensor(spec.std)))
        pipelines.append(K.AugmentationSequential(*steps))

    def make(batch: torch.Tensor) -> list[torch.Tensor]:
        images = batch.float().div_(255)
        return [pipeline(images) for pipeline in pipelines]

    return make


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.view_generation", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kornia", action="store_true", help="also measure kornia.augmentation")
    parser.add_argument("--tiny", action="store_true", help="a few batches, for a smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.images, args.batch_size, args.rounds, args.workers = 64, 16, 1, min(args.workers, 1)

    data = SyntheticTextures("train", num_samples=args.images, image_size=32, seed=0)
    spec = build_view_spec("mocov3", 32)
    batched = BatchedViews(spec)
    per_image = DataLoader(
        MultiViewDataset(data, TorchvisionViews(spec)), batch_size=args.batch_size, shuffle=True, drop_last=True,
        num_workers=args.workers, persistent_workers=args.workers > 0,
    )
    uint8 = build_train_loader(data, spec, pipeline="batched", batch_size=args.batch_size, seed=0, workers=0)
    load_before = os.getloadavg()
    torchvision_rate(per_image)  # warm-up: starts the workers
    batched_rate(uint8, batched, max(args.threads))
    rounds: dict[str, list[float]] = {"torchvision": [], **{f"batched_threads{t}": [] for t in args.threads}}
    if args.kornia:
        make = kornia_views(batched)
        rounds["kornia_threads1"] = []
    for _ in range(args.rounds):
        rounds["torchvision"].append(torchvision_rate(per_image))
        for threads in args.threads:
            rounds[f"batched_threads{threads}"].append(batched_rate(uint8, batched, threads))
        if args.kornia:
            rounds["kornia_threads1"].append(batched_rate(uint8, make, 1))  # type: ignore[arg-type]
    load_after = os.getloadavg()
    medians = {name: round(statistics.median(values), 1) for name, values in rounds.items()}
    headline = "batched_threads1" if 1 in args.threads else f"batched_threads{min(args.threads)}"
    result = {
        "command": shlex.join(["python", "-m", "benchmarks.view_generation", *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(processor=cpu_model()),
        "recipe": 'build_view_spec("mocov3", 32): two 32 px views',
        "images": args.images,
        "batch_size": args.batch_size,
        "torchvision_workers": args.workers,
        "torchvision_worker_torch_threads": 1,
        "batched_torch_threads": args.threads,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "images_per_second_median": medians,
        "images_per_second_rounds": {name: [round(v, 1) for v in values] for name, values in rounds.items()},
        "headline": headline,
        "speedup_batched_vs_torchvision": round(medians[headline] / medians["torchvision"], 2),
        "speedup_per_thread_count": {
            name: round(value / medians["torchvision"], 2) for name, value in medians.items() if name != "torchvision"
        },
    }
    return write_result(args.out, result)


if __name__ == "__main__":
    main()
