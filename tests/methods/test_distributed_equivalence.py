"""Two processes with batch B/2 each train exactly like one process with batch B.

The bug classes of distributed SSL code (gradients gathered without summing, losses off
by the world size, queues or centres not gathered, keys indexed with the wrong offset)
all break this. For every method, with ResMo on: 2 gloo processes, each holding half of
every batch and its model wrapped in ``DistributedDataParallel`` (as Lightning does,
``broadcast_buffers=False`` as resmo sets it), run a few SGD steps with
``after_optimizer_step`` (queue / centre, EMA); one process runs the same steps on the
whole batches. Student, teacher, predictor, queue and centre must agree. Everything runs
in float64, so a tolerance of 1e-9 leaves no room for a missing or extra factor.

BatchNorm is synchronised across processes as SyncBN does (``train.sync_batchnorm``).
torch's ``SyncBatchNorm`` runs on GPUs only, so here every BatchNorm layer is replaced by
:class:`GlobalBatchNorm`, which computes the batch statistics over all processes with
autograd-aware all-reduces: the same statistics as SyncBN, and in one process the same
as plain BatchNorm.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.distributed.nn.functional import all_reduce

from tests.conftest import build_method, random_views

STEPS, BATCH = 3, 8
METHODS = ("mocov2", "mocov3", "byol", "dino", "densecl")


class GlobalBatchNorm(nn.Module):
    """BatchNorm over the batch of all processes (SyncBN's statistics), CPU-capable.

    ``mean = sum(x) / N`` and ``var = sum(x^2) / N - mean^2`` over all processes' samples
    and positions; running statistics with the unbiased variance and ``momentum``, as
    ``nn.BatchNorm``; eval mode uses them.
    """

    def __init__(self, source: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.eps, self.momentum = source.eps, source.momentum
        self.weight, self.bias = source.weight, source.bias
        self.register_buffer("running_mean", source.running_mean.clone())
        self.register_buffer("running_var", source.running_var.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.ndim)]
        shape = [1, -1, *[1] * (x.ndim - 2)]
        if not self.training:
            mean, var = self.running_mean, self.running_var
        else:
            count = torch.tensor(float(x.numel() // x.shape[1]), dtype=x.dtype)
            sums = torch.cat([x.sum(dim=dims), (x * x).sum(dim=dims), count.reshape(1)])
            if dist.is_initialized():
                sums = all_reduce(sums)
            channels = x.shape[1]
            total = sums[-1]
            mean = sums[:channels] / total
            var = sums[channels:2 * channels] / total - mean * mean
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach() * total / (total - 1), self.momentum)
        out = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + self.eps)
        if self.weight is not None:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out


def synchronise_batch_norm(module: nn.Module) -> nn.Module:
    """Every BatchNorm layer of ``module`` (student, teacher, predictor) as GlobalBatchNorm."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, GlobalBatchNorm(child))
        else:
            synchronise_batch_norm(child)
    return module


def make_method(name: str) -> nn.Module:
    """The method with ResMo on, GlobalBatchNorm everywhere, in float64."""
    method = build_method(name, seed=0, resmo={"weight": 1.0})
    synchronise_batch_norm(method.student)
    if method.predictor is not None:
        synchronise_batch_norm(method.predictor)
    synchronise_batch_norm(method.teacher.module)
    return method.double()


def batches(name: str) -> list[list[torch.Tensor]]:
    """``STEPS`` batches of whole-batch views (DINO: 2 global crops of 16 px, 2 local of 8)."""
    out = []
    for step in range(STEPS):
        views = random_views(2, batch=BATCH, size=16, seed=100 + step)
        if name == "dino":
            views += random_views(2, batch=BATCH, size=8, seed=200 + step)
        out.append([view.double() for view in views])
    return out


class Stepper(nn.Module):
    """``forward`` = the method's loss, so DDP sees one module call per step."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, views, step: int):
        return self.method(views, step=step)


def train(name: str, *, rank: int | None = None, world: int = 1) -> dict[str, torch.Tensor]:
    """The method's state after ``STEPS`` steps on this process's share of every batch."""
    method = make_method(name)
    model = Stepper(method)
    if rank is not None:
        model = nn.parallel.DistributedDataParallel(model, broadcast_buffers=False)
    optimizer = torch.optim.SGD(method.student_parameters(), lr=0.05, momentum=0.9)
    for step, views in enumerate(batches(name)):
        if rank is not None:
            views = [view.chunk(world)[rank] for view in views]
        result = model(views, step=step)
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
        method.after_optimizer_step(result, step=step, total_steps=10)
    return {key: value.detach().clone() for key, value in method.state_dict().items()}


def _rank_main(rank: int, world: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for name in METHODS:
            state = train(name, rank=rank, world=world)
            if rank == 0:
                torch.save(state, os.path.join(folder, f"{name}.pt"))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_states(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_rank_main, args=(2, free_port(), str(folder)), nprocs=2, join=True)
    return {name: torch.load(folder / f"{name}.pt") for name in METHODS}


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_two_processes_with_half_batches_equal_one_process(name, two_process_states):
    single = train(name)
    double = two_process_states[name]
    assert single.keys() == double.keys()
    initial = make_method(name).state_dict()
    moved = [key for key in single if not torch.equal(single[key], initial[key])]
    assert any(key.startswith("teacher.") for key in moved) and any(key.startswith("student.") for key in moved)
    for key in single:
        torch.testing.assert_close(double[key], single[key], rtol=1e-9, atol=1e-9, msg=key)
