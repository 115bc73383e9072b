"""Host synchronisations per training step of `resmo pretrain`, counted on a CPU.

    python -m benchmarks.host_syncs            # writes benchmarks/results/host_syncs.json

On a GPU, every read of a device tensor by the host (``.item()``, ``bool(t)``, ``int(t)``,
``float(t)``, ``.tolist()``, ``.cpu()``, ``nonzero`` and boolean masks) waits for all queued
kernels: a step with several of them leaves the GPU idle between them. A CPU has no such
wait, but the same calls are made, so they can be counted here: a
``torch.overrides.TorchFunctionMode`` records every such call made by the main process
while the training loop runs a real tiny run of each method (ResMo on, kNN monitors off, no
DataLoader workers), and a loop hook splits the record at each batch start.
Two kinds of call are left out because they read host tensors in a GPU run too: the
torchvision transforms (per-image views, made in DataLoader workers on the CPU) and
``torch.optim``'s step counters (kept on the host unless ``capturable``).

Reported per method: the calls of each step that is neither a logging step
(``train.log_every_n_steps``) nor the last of its epoch (checkpoint, epoch means), and
their names. Target: at most one per step (the fused finite / gradient / stop flag).
"""

from __future__ import annotations

import argparse
import tempfile
import traceback
from collections import Counter
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

from benchmarks.results_io import machine_info, write_result
from resmo.config.loader import load_config
from resmo.train.pretrain import execute_run, prepare_run

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "host_syncs.json"

#: Code whose tensor reads are host reads in a GPU run too (see the module docstring).
HOST_SIDE = ("torchvision/transforms", "torch/optim/")

#: Tensor calls that make the host wait for the device.
SYNCING = {"item", "__bool__", "__int__", "__float__", "__index__", "tolist", "cpu", "numpy",
           "nonzero", "masked_select", "_local_scalar_dense"}


def caller(stack: traceback.StackSummary) -> str | None:
    """``file:line`` of the innermost frame outside torch that made the call, or ``None``
    when that frame (or a torch frame on the way to it) is host-side code of :data:`HOST_SIDE`."""
    for frame in reversed(stack):
        path = frame.filename.replace("\\", "/")
        if any(part in path for part in HOST_SIDE):
            return None
        if "/torch/" not in path:
            return f"{'/'.join(path.split('/')[-2:])}:{frame.lineno}"
    return None


class SyncCounter(TorchFunctionMode):
    """Records the name of every syncing tensor call made while active."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        where = caller(traceback.extract_stack()[:-1]) if name in SYNCING else None
        if where is not None:
            self.calls.append(f"{name} at {where}")
        return func(*args, **(kwargs or {}))


class StepMarks:
    """Where each batch starts in the counter's record (a loop hook)."""

    def __init__(self, counter: SyncCounter) -> None:
        self.counter = counter
        self.starts: list[int] = []

    def on_batch_start(self, loop) -> None:
        self.starts.append(len(self.counter.calls))


def count_per_step(method: str, *, steps_per_epoch: int = 6, log_every: int = 100,
                   overrides: list[str] | None = None) -> dict:
    """Syncing calls per plain step (not logging, not last of the epoch) of a tiny run."""
    batch = 8
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(None, [
            f"method={method}", f"out={tmp}/run", "train.epochs=1", f"train.batch_size={batch}",
            "train.progress_bar=false", f"train.log_every_n_steps={log_every}",
            "data.num_workers=0", "data.pipeline=torchvision", f"data.synthetic.num_samples={batch * steps_per_epoch}",
            "data.synthetic.val_num_samples=16", "data.image_size=16", "resmo.weight=1.0",
            "monitor.knn_every_epochs=0", *(overrides or []),
        ])
        run = prepare_run(config)
        run.loop.knn = None
        counter = SyncCounter()
        marks = StepMarks(counter)
        run.loop.hooks.append(marks)
        with counter:
            execute_run(run)
    bounds = [*marks.starts, len(counter.calls)]
    per_step = [counter.calls[bounds[i]:bounds[i + 1]] for i in range(len(marks.starts))]
    plain = [calls for i, calls in enumerate(per_step[:-1]) if (i + 1) % log_every != 0]
    return {
        "method": method,
        "steps_counted": len(plain),
        "max_per_step": max(len(calls) for calls in plain),
        "calls_of_one_step": dict(Counter(plain[len(plain) // 2])),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.host_syncs", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [count_per_step(name) for name in ("mocov2", "mocov3", "byol", "dino")]
    result = {
        "command": "python -m benchmarks.host_syncs",
        "machine": machine_info(),
        "methods": rows,
        "target_max_per_step": 1,
        "meets_target": all(row["max_per_step"] <= 1 for row in rows),
    }
    return write_result(args.out, result)


if __name__ == "__main__":
    print(main())
