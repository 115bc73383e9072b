"""Exit codes of consecutive two-process torchrun runs on CPU (gloo).

Runs ``--runs`` times, one after another::

    torchrun --nproc-per-node 2 --master-port PORT -m resmo.cli pretrain <tiny recipe> \\
        --devices 2 train.accelerator=cpu

and records every run's exit code, wall time and, when it failed, its first error lines. All
must be 0: resmo meets every process at a final barrier and destroys the process group
(resmo.distributed.process_group); a gloo group left to the interpreter's exit aborted
1 of 7 such runs with exit code 1 before. Writes ``benchmarks/results/torchrun_exits.json``.

    python -m benchmarks.torchrun_exits [--runs 10] [--out benchmarks/results/torchrun_exits.json]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results_io import code_provenance, machine_info, save_json

RESULTS = Path(__file__).resolve().parent / "results"

#: A run of seconds: 2 epochs of 3 steps per process on 192 generated images.
TINY = [
    "method=mocov3", "method_options.mocov3={hidden_dim: 64, out_dim: 32, predictor_hidden_dim: 64}",
    "backbone_options.resnet_small={width: 8}", "train.epochs=2", "train.batch_size=32",
    "train.progress_bar=false", "data.synthetic.num_samples=192", "data.synthetic.val_num_samples=96",
    "data.num_workers=0", "data.pipeline=torchvision", "optimizer.warmup_epochs=0",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun_command(out: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
            "-m", "resmo.cli", "pretrain", *TINY, f"out={out}", "--devices", "2", "train.accelerator=cpu"]


def one_run(folder: Path, index: int) -> dict:
    command = torchrun_command(folder / f"run{index}", free_port())
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=folder,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    errors = [line.strip()[:300] for line in result.stderr.splitlines()
              if "Error" in line or "error:" in line or line.startswith("resmo pretrain:")]
    return {"run": index, "exit_code": result.returncode, "seconds": round(time.perf_counter() - start, 1),
            "error_lines": errors[:5] if result.returncode else []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torchrun_exits", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "torchrun_exits.json")
    args = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.runs):
            runs.append(one_run(Path(folder), index))
            print(f"run {index}: exit code {runs[-1]['exit_code']} ({runs[-1]['seconds']} s)", flush=True)
    codes = [run["exit_code"] for run in runs]
    save_json(args.out, {
        "command": " ".join(torchrun_command(Path("RUN"), 0)[1:]).replace("--master-port 0", "--master-port PORT"),
        "exit_codes": codes, "all_zero": all(code == 0 for code in codes), "runs": runs,
        "machine": machine_info(), "code": code_provenance(),
    })
    print(f"exit codes: {codes}; written to {args.out}")
    return 0 if all(code == 0 for code in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
