"""The processes and devices of a run: Lightning Fabric from the recipe's ``train`` section.

The run plan (resmo.train.plan) has already made ``train.devices x train.num_nodes`` agree
with the processes torchrun or SLURM started (resmo.distributed.launcher_env: Fabric checks
this only when it starts the processes itself; with ``devices=1`` it would pick a
single-device strategy and each of N processes would train alone). :func:`process_notes` checks the process count
against ``train.sync_batchnorm`` before anything starts; :func:`build_fabric` builds Fabric
for ``train.accelerator / devices / num_nodes / strategy / precision`` and launches it (the
other processes of a multi-process run start there, running the same command again; under
torchrun or SLURM they are already running), waiting at most ``train.rendezvous_timeout``
for them (resmo.distributed.rendezvous).
"""

from __future__ import annotations

import torch
from lightning.fabric import Fabric
from lightning.fabric.strategies import DDPStrategy

from resmo.config.schema import PretrainConfig
from resmo.distributed.process_group import collective_timeout
from resmo.distributed.rendezvous import RendezvousWatch


def uses_gpus(config: PretrainConfig) -> bool:
    """Whether the run trains on CUDA GPUs (``train.accelerator`` auto, gpu or cuda, and a GPU)."""
    return config.train.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def devices_per_node(devices: int | str, config: PretrainConfig) -> int:
    """``devices`` as a count: ``auto`` is every GPU when the run trains on GPUs, else 1."""
    if devices == "auto":
        return torch.cuda.device_count() if uses_gpus(config) else 1
    return int(devices)


def expected_world_size(config: PretrainConfig) -> int:
    """Processes the run uses: devices per node x nodes (``auto``: all GPUs, or 1)."""
    return devices_per_node(config.train.devices, config) * config.train.num_nodes


def process_notes(config: PretrainConfig) -> list[str]:
    """Notes on the process count; ``ValueError`` for SyncBatchNorm over CPU processes."""
    processes = expected_world_size(config)
    if processes > 1 and config.train.sync_batchnorm and not uses_gpus(config):
        raise ValueError(
            "train.sync_batchnorm=true cannot be used with several CPU processes: torch's "
            "SyncBatchNorm runs on GPUs only; set train.sync_batchnorm=false for a CPU run"
        )
    if processes > 1 and not config.train.sync_batchnorm:
        return [f"{processes} processes without train.sync_batchnorm: each normalises its BatchNorm "
                "layers over its own share of the batch (the cited recipes synchronise them); set "
                "train.sync_batchnorm=true to follow them"]
    return []


def strategy_for(config: PretrainConfig) -> DDPStrategy | str:
    """``train.strategy``; DDP (chosen, or Fabric's choice for several processes) without
    re-broadcasting buffers before every forward pass: the queue and the DINO centre are kept
    equal by their gathered updates, rank 0's BatchNorm statistics are the same either way
    (DDP would copy rank 0's to the others), and the end-of-run check broadcasts them once
    (resmo.distributed.rank_check). Collectives time out after
    :func:`~resmo.distributed.process_group.collective_timeout` of ``train.rendezvous_timeout``.
    ``auto`` for one process (``train.strategy`` is ``auto`` or ``ddp``: the schema refuses others)."""
    strategy = config.train.strategy
    if strategy == "ddp" or (strategy == "auto" and expected_world_size(config) > 1):
        return DDPStrategy(broadcast_buffers=False, timeout=collective_timeout(config.train.rendezvous_timeout))
    return strategy


def _rendezvous_watch(fabric: Fabric, config: PretrainConfig) -> RendezvousWatch:
    """What the processes wait for, the deadline, and what to do if the others never come."""
    strategy = fabric.strategy
    environment = strategy.cluster_environment
    nodes, per_node = config.train.num_nodes, strategy.num_processes
    waiting_for = (f"{nodes * per_node} processes ({nodes} {'node' if nodes == 1 else 'nodes'} x {per_node}) "
                   f"at {environment.main_address}:{environment.main_port} (this is node {environment.node_rank()})")
    if environment.creates_processes_externally:
        hint = ("every process of the launch must start (torchrun --nnodes / srun: README, "
                "'Several GPUs and nodes'), or raise train.rendezvous_timeout")
    elif nodes > 1:
        hint = ("with --num-nodes N, run the same command on every node with NODE_RANK set and "
                "MASTER_ADDR / MASTER_PORT of node 0, or launch with torchrun / srun (README, 'Several GPUs "
                "and nodes'); on one machine use --devices instead")
    else:
        hint = "a process this command started did not come up (see its error above), or raise train.rendezvous_timeout"
    return RendezvousWatch(waiting_for, timeout=config.train.rendezvous_timeout, hint=hint)


def build_fabric(config: PretrainConfig) -> Fabric:
    """Fabric for the ``train`` settings, launched; ``ValueError`` in one line for settings
    that cannot be used on this machine."""
    train = config.train
    try:
        fabric = Fabric(accelerator=train.accelerator, devices=train.devices, num_nodes=train.num_nodes,
                        strategy=strategy_for(config), precision=train.precision)
        if isinstance(fabric.strategy, DDPStrategy):
            with _rendezvous_watch(fabric, config):
                fabric.launch()
        else:
            fabric.launch()
    except (ImportError, RuntimeError, TypeError, ValueError) as error:
        message = " ".join(str(error).split())[:300]
        raise ValueError(
            f"train.accelerator={train.accelerator!r}, train.devices={train.devices!r}, "
            f"train.strategy={train.strategy!r}, train.precision={train.precision!r} cannot be used "
            f"here: {message}"
        ) from None
    return fabric
