"""The run plan: a recipe resolved once, before any process starts, and never changed.

:func:`plan_run` takes the read recipe (:class:`~resmo.config.schema.PretrainConfig`) and
decides everything a run needs to know before it launches: the chosen method's and
backbone's options checked against their signatures (a typo stops here, in one line, before
any process or run folder exists), the run folder and the checkpoint ``--resume`` continues
from (and that it is the same run: :mod:`resmo.train.same_run`), the DataLoader workers this
machine can run, the process layout (torchrun / SLURM's adopted, ``devices: auto`` counted),
the image side (a folder's chosen from its images), the view pipeline (``auto`` decided for
the device), the global batch and the learning rate it scales to. The result,
:class:`RunPlan`, is frozen: its ``config`` is what the run folder's ``config.yaml``
records, and everything below the command line reads it and nothing re-reads the YAML.

A multi-process run plans in every process (each runs the same command); the plans are
equal except a default, timestamped run folder, which rank 0's replaces after the launch
(:meth:`RunPlan.with_out`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from resmo.backbones import backbone_names
from resmo.builder import check_chosen_options, resolve_backbone_options
from resmo.config.loader import apply_mapping, config_to_dict
from resmo.config.schema import PretrainConfig
from resmo.data import image_size_for
from resmo.data.train_loader import chosen_pipeline
from resmo.data.workers import capped_workers
from resmo.distributed.launcher_env import declared_world, reconcile
from resmo.launch import devices_per_node, process_notes, uses_gpus
from resmo.methods import method_names
from resmo.optim.optimizers import effective_lr, lr_note
from resmo.train.resume import CheckpointInfo, resolve_resume
from resmo.train.run_folder import default_out_dir
from resmo.train.same_run import check_recorded_settings
from resmo.validation import check_choice

#: Where the plan's decisions come from in an error message.
SOURCE = "resmo pretrain"


@dataclass(frozen=True)
class RunPlan:
    """Everything ``resmo pretrain`` decided before launching (see the module docstring).

    - ``config``: the recipe with every automatic choice made (``data.num_workers`` capped,
      ``train.devices`` x ``train.num_nodes`` the processes started, ``data.image_size`` and
      ``data.pipeline`` decided): what ``config.yaml`` records;
    - ``out``: the run folder; ``resume``: the checkpoint to continue from, or ``None``;
    - ``notes``: one-line facts printed at the start (``# note: ...``).
    """

    config: PretrainConfig
    out: Path
    resume: CheckpointInfo | None
    notes: tuple[str, ...] = ()
    resume_argument: str | None = None

    @property
    def processes(self) -> int:
        """Processes of the run: ``train.devices x train.num_nodes`` (both decided)."""
        return int(self.config.train.devices) * self.config.train.num_nodes

    @property
    def global_batch(self) -> int:
        """Images per optimizer step: ``train.batch_size`` x processes."""
        return self.config.train.batch_size * self.processes

    @property
    def effective_lr(self) -> float:
        """``optimizer.lr`` after ``optimizer.lr_scaling`` for the global batch."""
        return effective_lr(self.config.optimizer, self.global_batch)

    @property
    def image_size(self) -> int:
        return int(self.config.data.image_size)

    @property
    def backbone_options(self) -> dict[str, Any]:
        """The chosen backbone's options with the size-dependent defaults filled in."""
        return resolve_backbone_options(self.config, self.image_size)

    def with_out(self, out: Path) -> RunPlan:
        """This plan in the run folder ``out`` (rank 0's default folder, agreed after the launch),
        its checkpoint looked up there again."""
        if out == self.out:
            return self
        resume, _ = resolve_resume(self.resume_argument, out)
        return replace(self, out=out, resume=resume)

    def with_processes(self, processes: int) -> RunPlan:
        """This plan for the ``processes`` Fabric launched, where they differ from the planned count
        (Fabric's own choice for ``train.accelerator``), ``config.yaml`` recording the world as run."""
        if processes == self.processes:
            return self
        devices = max(1, processes // self.config.train.num_nodes)
        return replace(self, config=decided(self.config, {"train": {"devices": devices}}))


def decided(config: PretrainConfig, values: dict[str, Any]) -> PretrainConfig:
    """A new config: ``config`` with ``values`` (a nested mapping) set, checked by the schema."""
    return apply_mapping(config, values, source=SOURCE, replace_entries=False)


def plan_run(config: PretrainConfig, *, resume: str | None = None,
             env: Mapping[str, str] = os.environ) -> RunPlan:
    """Check ``config`` and decide the run (module docstring); ``ValueError`` (one line) for
    anything that cannot run. Starts no process and writes nothing."""
    check_choice("method", config.method, method_names())
    check_choice("backbone", config.backbone, backbone_names())
    check_chosen_options(config)
    out = Path(config.out) if config.out else default_out_dir(config)
    checkpoint, notes = resolve_resume(resume, out)
    if resume == "auto" and not config.out:
        notes.append("--resume auto without --out looks in a new, timestamped run folder; "
                     "pass --out RUN to continue an earlier run")
    workers, workers_note = capped_workers(config.data.num_workers)
    layout = reconcile(config.train.devices, config.train.num_nodes, declared_world(env))
    devices = devices_per_node(layout.devices, config)
    image_size, size_note = image_size_for(config.data.name, config.data.image_size)
    device_type = "cuda" if uses_gpus(config) else "cpu"
    config = decided(config, {
        "data": {"num_workers": workers, "image_size": image_size,
                 "pipeline": chosen_pipeline(config.data.pipeline, str(config.data.name), device_type)},
        "train": {"devices": int(devices), "num_nodes": layout.num_nodes},
    })
    notes += [note for note in (workers_note, layout.note, size_note) if note]
    if checkpoint is not None:  # the run's config.yaml against this plan, before anything starts
        notes += check_recorded_settings(out, config_to_dict(config))
    notes += process_notes(config)
    plan = RunPlan(config, out, checkpoint, resume_argument=resume)
    notes.append(lr_note(config.optimizer, plan.global_batch, plan.processes))
    return replace(plan, notes=tuple(notes))
