"""What the training loop costs beyond the model: `resmo pretrain`'s images/s against a bare step.

    python -m benchmarks.loop_overhead          # -> benchmarks/results/loop_overhead.json (about 4 min)
    python -m benchmarks.loop_overhead --tiny --out /tmp/loop.json     # seconds (smoke test)

Both sides train the same method (MoCo v3 with ResMo, the quickstart's backbone and heads)
on the same data with the same batch, view pipeline (``data.pipeline: batched``: uint8
batches of the in-memory synthetic set, views made in the main process) and torch threads:

- *loop*: ``prepare_run`` + ``execute_run``, everything ``resmo pretrain`` does per step
  (non-finite check, logging, progress bookkeeping, signal check, ...); its rate is the run's
  own per-epoch ``Throughput`` figure (batch start of the epoch to its last batch end:
  the epoch-end checkpoint and kNN are outside it; the kNN monitors are off);
- *bare*: the loop a reader would write by hand, with the run's own loader, view maker,
  method, optimizer and LR schedule: ``views -> method(views) -> backward -> optimizer step
  -> schedule step -> method.after_optimizer_step`` (queue / EMA), timed per epoch.

The two take turns (``--rounds`` rounds of each, the first epoch of every run dropped as
warm-up) and the medians are compared; ``ratio = loop / bare`` (target: at least 0.9).
Run it alone: any other busy process on 2 cores distorts both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.results_io import machine_info, write_result

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "loop_overhead.json"
TARGET = 0.9


def settings(tiny: bool) -> list[str]:
    """The runs' overrides: the quickstart's model on the batched synthetic pipeline."""
    samples, epochs = (256, 2) if tiny else (4096, 4)
    return [
        "method=mocov3", "train.batch_size=64", f"train.epochs={epochs}", "train.progress_bar=false",
        "data.pipeline=batched", "data.num_workers=0", f"data.synthetic.num_samples={samples}",
        "data.synthetic.val_num_samples=64", "monitor.knn_every_epochs=0", "resmo.weight=1.0",
    ]


def prepared(overrides: list[str], out: str):
    from resmo.config.loader import load_config
    from resmo.train.pretrain import prepare_run

    run = prepare_run(load_config(None, [*overrides, f"out={out}"]))
    run.loop.knn = None  # no kNN
    return run


def loop_rates(overrides: list[str], out: str) -> list[float]:
    """Images/s per epoch of the full `resmo pretrain` loop (first epoch dropped)."""
    from resmo.train.pretrain import execute_run

    run = prepared(overrides, out)
    execute_run(run)
    return run.loop.throughput.per_epoch[1:]


def bare_rates(overrides: list[str], out: str) -> list[float]:
    """Images/s per epoch of the hand-written step on the run's own pieces (first epoch dropped)."""
    run = prepared(overrides, out)
    # the run's own optimizer and learning-rate schedule, unwrapped (what the loop steps)
    loader, method = run.loop.loader, run.method
    optimizer, scheduler = run.loop.raw_optimizer, run.loop.scheduler
    total = run.loop.settings.schedule.total_steps
    rates, step = [], 0
    method.train()
    for epoch in range(run.config.train.epochs):
        loader.sampler.set_epoch(epoch)
        start, images = time.perf_counter(), 0
        for batch in loader:
            views, _labels = run.loop.device_views(batch)
            result = method(views, step=step)
            optimizer.zero_grad(set_to_none=True)
            result.loss.backward()
            optimizer.step()
            scheduler.step()
            method.after_optimizer_step(result, step=step, total_steps=total)
            images += views[0].shape[0]
            step += 1
        rates.append(images / (time.perf_counter() - start))
    return rates[1:]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="a few seconds: checks the script runs")
    args = parser.parse_args(argv)
    from resmo.console import quiet_third_party

    quiet_third_party(verbose=False)
    overrides = settings(args.tiny)
    before = machine_info(load_average_1min=round(os.getloadavg()[0], 2))
    loop, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            loop += loop_rates(overrides, f"{tmp}/loop{index}")
            bare += bare_rates(overrides, f"{tmp}/bare{index}")
    loop_median, bare_median = statistics.median(loop), statistics.median(bare)
    result = {
        "command": "python -m benchmarks.loop_overhead" + (" --tiny" if args.tiny else ""),
        "date": time.strftime("%Y-%m-%d"),
        "machine": before,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "settings": overrides,
        "rounds": args.rounds,
        "loop_images_per_second": [round(r, 1) for r in loop],
        "bare_images_per_second": [round(r, 1) for r in bare],
        "loop_median": round(loop_median, 1),
        "bare_median": round(bare_median, 1),
        "ratio": round(loop_median / bare_median, 3),
        "target_ratio": TARGET,
        "meets_target": loop_median / bare_median >= TARGET,
    }
    return write_result(args.out, result)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
