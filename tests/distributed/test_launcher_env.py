"""The world size torchrun and SLURM declare, and how resmo's settings follow it."""

from __future__ import annotations

import pytest

from resmo.config import load_config
from resmo.distributed.launcher_env import (
    DeclaredWorld,
    Layout,
    declared_world,
    reconcile,
    slurm_world,
    torchrun_world,
)
from resmo.train.plan import plan_run

#: What `torchrun --nnodes 2 --nproc-per-node 4` sets in the process of rank 5.
TORCHRUN_2x4 = {"TORCHELASTIC_RUN_ID": "job7", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4",
                "GROUP_WORLD_SIZE": "2", "GROUP_RANK": "1", "RANK": "5", "LOCAL_RANK": "1",
                "MASTER_ADDR": "node0", "MASTER_PORT": "29500"}
#: What `srun` sets in task 3 of `sbatch --nodes 2 --ntasks-per-node 2`.
SLURM_2x2 = {"SLURM_NTASKS": "4", "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "2",
             "SLURM_NODEID": "1", "SLURM_PROCID": "3", "SLURM_JOB_NAME": "pretrain", "SLURM_JOB_ID": "42"}


def test_torchrun_world_is_read_from_its_variables():
    world = torchrun_world(TORCHRUN_2x4)
    assert (world.launcher, world.world_size, world.processes_per_node, world.nodes,
            world.node_rank, world.rank) == ("torchrun", 8, 4, 2, 1, 5)
    assert world.layout == "8 processes (2 nodes x 4)"


def test_slurm_world_is_read_when_lightning_would_treat_the_job_as_slurms():
    world = slurm_world(SLURM_2x2)
    assert (world.world_size, world.processes_per_node, world.nodes, world.node_rank, world.rank) == (4, 2, 2, 1, 3)
    # Lightning leaves jobs named bash / interactive alone (SLURMEnvironment.detect)
    assert slurm_world({**SLURM_2x2, "SLURM_JOB_NAME": "interactive"}) is None
    # no --ntasks-per-node: tasks / nodes; SLURM's "2(x3)" counts read as 2
    assert slurm_world({"SLURM_NTASKS": "6", "SLURM_NNODES": "3"}).processes_per_node == 2
    assert slurm_world({"SLURM_NTASKS": "6", "SLURM_NNODES": "3", "SLURM_NTASKS_PER_NODE": "2(x3)"}).nodes == 3
    with pytest.raises(ValueError, match="SLURM_NTASKS=5 tasks on SLURM_NNODES=2 nodes"):
        slurm_world({"SLURM_NTASKS": "5", "SLURM_NNODES": "2"})


def test_torchrun_wins_over_slurm_and_nothing_is_declared_without_a_launcher():
    assert declared_world({**SLURM_2x2, **TORCHRUN_2x4}).launcher == "torchrun"
    assert declared_world(SLURM_2x2).launcher == "SLURM"
    # the processes Lightning starts itself get LOCAL_RANK / WORLD_SIZE but no TORCHELASTIC_RUN_ID
    assert declared_world({"LOCAL_RANK": "1", "WORLD_SIZE": "2", "NODE_RANK": "0"}) is None


def test_reconcile_keeps_agreeing_settings_and_adopts_the_launchers_otherwise():
    world = DeclaredWorld("torchrun", 8, 4, 2, 0, 0, "WORLD_SIZE=8")
    assert reconcile(4, 2, world) == Layout(4, 2, None)
    assert reconcile("auto", 2, world).note is None and reconcile("auto", 2, world).devices == 4
    adopted = reconcile(1, 1, world)
    assert (adopted.devices, adopted.num_nodes) == (4, 2)
    assert adopted.note == ("torchrun started 8 processes (2 nodes x 4) (WORLD_SIZE=8): train.devices=1, "
                            "train.num_nodes=1 changed to 4 and 2, so they train as one run of 8")
    # no launcher: the settings as given (Fabric starts the processes)
    assert reconcile(2, 1, None) == Layout(2, 1, None)


def test_the_plan_adopts_the_launchers_world_so_config_yaml_records_it(tmp_path):
    config = load_config(None, ["train.accelerator=cpu", f"out={tmp_path / 'run'}"])
    plan = plan_run(config, env=SLURM_2x2)
    assert (plan.config.train.devices, plan.config.train.num_nodes, plan.processes) == (2, 2, 4)
    assert (config.train.devices, config.train.num_nodes) == (1, 1)  # the read recipe is not changed
    slurm = [note for note in plan.notes if note.startswith("SLURM")]
    assert len(slurm) == 1 and slurm[0].startswith("SLURM started 4 processes (2 nodes x 2)")
    again = plan_run(plan.config, env=SLURM_2x2)  # now they agree
    assert not [note for note in again.notes if note.startswith("SLURM")]
    assert not (tmp_path / "run").exists()  # planning writes nothing
