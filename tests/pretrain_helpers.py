"""A tiny pretraining recipe for tests: seconds per epoch on one CPU thread."""

from __future__ import annotations

import os
import signal
from pathlib import Path

TINY_HEADS = {
    "mocov3": "{hidden_dim: 64, out_dim: 32, predictor_hidden_dim: 64}",
    "byol": "{hidden_dim: 64, out_dim: 32, predictor_hidden_dim: 64}",
    "mocov2": "{hidden_dim: 64, out_dim: 32, queue_size: 256}",
    "dino": "{hidden_dim: 64, bottleneck_dim: 32, num_prototypes: 64}",
    "densecl": "{hidden_dim: 64, out_dim: 32, queue_size: 256}",
}

#: Appended by the tests that compare two runs bit for bit (a resume, a rerun) or check CPU
#: behaviour: they train on the CPU wherever they run. Bit-for-bit equality is promised on
#: the CPU (docs/reliability.md); on CUDA, cuDNN autotuning, TF32 and atomic adds leave two
#: runs apart in the last bits, which those comparisons would report as a failure.
ON_CPU = ["train.accelerator=cpu"]


def tiny_overrides(out: Path, *, method: str = "mocov3", epochs: int = 2, samples: int = 192) -> list[str]:
    """``key=value`` overrides for a run of ``epochs`` on ``samples`` synthetic images."""
    return [
        f"out={out}",
        f"method={method}",
        f"method_options.{method}={TINY_HEADS[method]}",
        "backbone_options.resnet_small={width: 8}",
        f"train.epochs={epochs}",
        "train.batch_size=32",
        "train.progress_bar=false",
        "train.log_every_n_steps=1",
        f"data.synthetic.num_samples={samples}",
        "data.synthetic.val_num_samples=96",
        "data.num_workers=0",
        "data.pipeline=torchvision",  # the reference path (the quickstart's "auto" picks batched)
        "monitor.knn_every_epochs=1",
        "optimizer.warmup_epochs=0",
    ]


class SignalAt:
    """A loop hook that sends ``signum`` to this process when the step ``step`` starts."""

    def __init__(self, step: int, signum: int = signal.SIGTERM) -> None:
        self.step, self.signum = step, signum

    def on_batch_start(self, loop) -> None:
        if loop.step == self.step:
            os.kill(os.getpid(), self.signum)
