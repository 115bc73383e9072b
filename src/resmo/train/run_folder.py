"""The run folder: resolved config, backbone exports and ``summary.json``.

Layout (``--out``, default ``runs/<method>-<data>-<time>``)::

    config.yaml            the resolved recipe (after defaults and overrides)
    metrics.csv            every logged value (Lightning CSV logger)
    tensorboard/           the same for TensorBoard
    checkpoints/last.ckpt  full training state, written atomically every epoch and at
                           every early stop (SIGTERM / SIGINT, non-finite loss)
    checkpoints/last-prev.ckpt  the version before it (see resmo.files)
    student_backbone.pt    {"backbone", "options", "state_dict"}: resmo.backbone_files.load_backbone()
    teacher_backbone.pt
    summary.json
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from resmo.config.loader import dump_config
from resmo.config.schema import PretrainConfig

#: The default run folder, handed to the processes that Lightning's launcher starts.
RUN_FOLDER_VARIABLE = "RESMO_RUN_FOLDER"


def default_out_dir(config: PretrainConfig) -> Path:
    """``runs/<method>-<data>-<time>``, the same folder on every process of a run.

    The first process stores it in ``$RESMO_RUN_FOLDER``, which the processes that
    Lightning's launcher starts (with ``LOCAL_RANK`` set) inherit and read. Under torchrun
    or SLURM, where every process starts on its own, the launch's id
    (``TORCHELASTIC_RUN_ID`` when given, ``SLURM_JOB_ID``) replaces the time, so all
    processes of the launch name the same folder.
    """
    shared = os.environ.get(RUN_FOLDER_VARIABLE)
    if shared and "LOCAL_RANK" in os.environ:
        return Path(shared)
    data = Path(str(config.data.name)).name or "data"
    launch = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    stamp = launch if launch != "none" else os.environ.get("SLURM_JOB_ID") or time.strftime("%Y%m%d-%H%M%S")
    folder = Path("runs") / f"{config.method}-{data}-{stamp}"
    os.environ[RUN_FOLDER_VARIABLE] = str(folder)
    return folder


def write_config(out: Path, config: PretrainConfig) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "config.yaml"
    path.write_text(dump_config(config))
    return path


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    return path
