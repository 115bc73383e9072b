"""The world size a launcher declares, read from its environment variables.

Pure functions of an environment mapping (``os.environ`` in a run, a dict in tests).

- **torchrun** (torch.distributed.elastic) sets ``TORCHELASTIC_RUN_ID`` (the rendezvous
  id, ``"none"`` for a static rendezvous) in every process it starts, with ``WORLD_SIZE``
  (all processes), ``LOCAL_WORLD_SIZE`` (processes on this node, ``--nproc-per-node``),
  ``GROUP_WORLD_SIZE`` (nodes), ``GROUP_RANK`` (this node), ``RANK``, ``LOCAL_RANK`` and
  ``MASTER_ADDR`` / ``MASTER_PORT``. Lightning Fabric takes a run for torchrun's when
  ``TORCHELASTIC_RUN_ID`` is set (``TorchElasticEnvironment.detect``).
- **SLURM** sets ``SLURM_NTASKS`` (all tasks), ``SLURM_NNODES``, ``SLURM_NTASKS_PER_NODE``
  (when the job asked for it; ``2(x3)`` style for uneven layouts), ``SLURM_NODEID``,
  ``SLURM_PROCID``. Lightning takes a run for SLURM's when ``SLURM_NTASKS`` is set and the
  job is not named ``bash`` or ``interactive`` (``SLURMEnvironment.detect``); it then
  starts no process itself and expects one SLURM task per device.

torchrun wins over SLURM (as in Lightning: torchrun can run inside a SLURM job). Under
either, the processes are already running when resmo starts, so ``train.devices x
train.num_nodes`` must equal the declared world size: :func:`reconcile` adopts the
declared layout and says so, instead of N processes each training a world of 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

#: SLURM job names under which Lightning does not treat the job as SLURM-managed.
SLURM_INTERACTIVE_NAMES = ("bash", "interactive")


@dataclass(frozen=True)
class DeclaredWorld:
    """The processes a launcher started: ``nodes x processes_per_node = world_size``."""

    launcher: str  # "torchrun" | "SLURM"
    world_size: int
    processes_per_node: int
    nodes: int
    node_rank: int
    rank: int
    source: str  # the variables it was read from, for messages

    @property
    def layout(self) -> str:
        """``"2 processes (1 node x 2)"``."""
        node_word = "node" if self.nodes == 1 else "nodes"
        process_word = "process" if self.world_size == 1 else "processes"
        return f"{self.world_size} {process_word} ({self.nodes} {node_word} x {self.processes_per_node})"


def _integer(env: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    """``env[name]`` as an integer; ``"2(x3)"`` (SLURM's per-node counts) reads as 2."""
    value = env.get(name)
    if value is None or value == "":
        return default
    match = re.match(r"\s*(\d+)", value)
    if not match:
        raise ValueError(f"the launcher's {name}={value!r} is not an integer")
    return int(match.group(1))


def torchrun_world(env: Mapping[str, str]) -> DeclaredWorld | None:
    """The world torchrun declares, or ``None`` when this process was not started by torchrun."""
    if env.get("TORCHELASTIC_RUN_ID") is None:
        return None
    world = _integer(env, "WORLD_SIZE", 1)
    per_node = _integer(env, "LOCAL_WORLD_SIZE", world)
    nodes = _integer(env, "GROUP_WORLD_SIZE", max(1, world // max(1, per_node)))
    return DeclaredWorld("torchrun", world, per_node, nodes, _integer(env, "GROUP_RANK", 0),
                         _integer(env, "RANK", 0),
                         f"WORLD_SIZE={world}, LOCAL_WORLD_SIZE={per_node}, GROUP_WORLD_SIZE={nodes}")


def slurm_world(env: Mapping[str, str]) -> DeclaredWorld | None:
    """The world SLURM declares when Lightning treats the run as SLURM-managed, else ``None``."""
    if "SLURM_NTASKS" not in env or env.get("SLURM_JOB_NAME") in SLURM_INTERACTIVE_NAMES:
        return None
    tasks = _integer(env, "SLURM_NTASKS", 1)
    nodes = _integer(env, "SLURM_NNODES", 1)
    per_node = _integer(env, "SLURM_NTASKS_PER_NODE", None)
    if per_node is None:
        if tasks % nodes:
            raise ValueError(f"SLURM runs SLURM_NTASKS={tasks} tasks on SLURM_NNODES={nodes} nodes, not the "
                             "same number on each; ask for --ntasks-per-node")
        per_node = tasks // nodes
    return DeclaredWorld("SLURM", tasks, per_node, nodes, _integer(env, "SLURM_NODEID", 0),
                         _integer(env, "SLURM_PROCID", 0),
                         f"SLURM_NTASKS={tasks}, SLURM_NNODES={nodes}, tasks per node {per_node}")


def declared_world(env: Mapping[str, str]) -> DeclaredWorld | None:
    """torchrun's world, else SLURM's, else ``None`` (resmo / Lightning starts the processes)."""
    return torchrun_world(env) or slurm_world(env)


@dataclass(frozen=True)
class Layout:
    """``devices`` per node and ``num_nodes`` to run with; ``note`` says what changed."""

    devices: int | str
    num_nodes: int
    note: str | None = None


def reconcile(devices: int | str, num_nodes: int, world: DeclaredWorld | None) -> Layout:
    """The ``devices`` x ``num_nodes`` to launch Fabric with.

    Without a launcher, the settings as given (Fabric starts ``devices`` processes per
    node). Under torchrun or SLURM, the launcher's layout: unchanged when it agrees,
    adopted with a one-line note when it does not (``devices: auto`` takes the launcher's
    processes per node without a note).
    """
    if world is None:
        return Layout(devices, num_nodes)
    if (devices == world.processes_per_node or devices == "auto") and num_nodes == world.nodes:
        return Layout(world.processes_per_node, world.nodes)
    note = (f"{world.launcher} started {world.layout} ({world.source}): train.devices={devices}, "
            f"train.num_nodes={num_nodes} changed to {world.processes_per_node} and {world.nodes}, "
            f"so they train as one run of {world.world_size}")
    return Layout(world.processes_per_node, world.nodes, note)
