"""Host synchronisations per training step on CUDA, as CUDA's sync debug mode reports them.

    python -m benchmarks.cuda_sync_debug --out RESULT.json        # on a GPU
    python -m benchmarks.cuda_sync_debug --device cpu --out /tmp/s.json   # plumbing only

``benchmarks/host_syncs.py`` counts the host reads a CPU run makes by intercepting tensor
calls; this script asks the GPU instead: ``torch.cuda.set_sync_debug_mode("warn")`` makes
every operation that waits for the device warn, and a loop hook splits the warnings at each
batch start. A tiny run of every method (``data.pipeline: batched``, bf16-mixed, ResMo on,
kNN monitors off, no DataLoader workers) trains with the mode on from its first batch.
Reported per method: the warnings of each step that is neither a logging step nor the last
of its epoch, and where they come from. Target: at most one per step (the fused finite /
gradient / stop flag). On a CPU the mode does not exist: the run goes through the same code
and counts nothing (a smoke test of the script).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import torch

from benchmarks.results_io import machine_info, write_result
from resmo.config.loader import load_config
from resmo.methods import method_names
from resmo.train.pretrain import execute_run, prepare_run

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "cuda_sync_debug.json"


class SyncWarnings:
    """A loop hook: turns the sync debug mode on at the first batch and notes where each
    batch starts in the warnings recorded."""

    def __init__(self, record: list, device: torch.device) -> None:
        self.record, self.device = record, device
        self.starts: list[int] = []

    def on_batch_start(self, loop) -> None:
        if not self.starts and self.device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        self.starts.append(len(self.record))


def where(warning: warnings.WarningMessage) -> str:
    return f"{'/'.join(Path(warning.filename).parts[-2:])}:{warning.lineno}"


def count_per_step(method: str, device: torch.device, *, steps_per_epoch: int = 6,
                   log_every: int = 100) -> dict:
    batch = 32
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(None, [
            f"method={method}", f"out={tmp}/run", "train.epochs=1", f"train.batch_size={batch}",
            f"train.accelerator={device.type}", "train.progress_bar=false",
            f"train.log_every_n_steps={log_every}", "data.num_workers=0", "data.pipeline=batched",
            f"data.synthetic.num_samples={batch * steps_per_epoch}", "data.synthetic.val_num_samples=32",
            "data.image_size=32", "resmo.weight=1.0", "monitor.knn_every_epochs=0",
            f"train.precision={'bf16-mixed' if device.type == 'cuda' else '32-true'}",
        ])
        run = prepare_run(config)
        run.loop.knn = None
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            hook = SyncWarnings(record, device)
            run.loop.hooks.append(hook)
            try:
                execute_run(run)
            finally:
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("default")
            bounds = [*hook.starts, len(record)]
            per_step = [[w for w in record[bounds[i]:bounds[i + 1]] if "synchroniz" in str(w.message)]
                        for i in range(len(hook.starts))]
    plain = [found for i, found in enumerate(per_step[:-1]) if (i + 1) % log_every != 0]
    return {
        "method": method,
        "steps_counted": len(plain),
        "max_per_step": max((len(found) for found in plain), default=0),
        "syncs_of_one_step": dict(Counter(where(w) for w in plain[len(plain) // 2])) if plain else {},
        "syncs_of_the_last_step": dict(Counter(where(w) for w in per_step[-1])) if per_step else {},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cuda_sync_debug", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--methods", nargs="*", default=method_names())
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rows = []
    result = {
        "command": " ".join(["python -m benchmarks.cuda_sync_debug", *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_info(device=str(device),
                                gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None),
        "sync_debug_mode": "warn" if device.type == "cuda" else None,
        "methods": rows,
        "target_max_per_step": 1,
    }
    for method in args.methods:
        rows.append(count_per_step(method, device))
        result["meets_target"] = (all(row["max_per_step"] <= 1 for row in rows)
                                  if device.type == "cuda" else None)  # nothing counted on a CPU
        write_result(args.out, result, shown=rows[-1])  # kept as it goes: a later hang loses nothing
    return result


if __name__ == "__main__":
    main()
