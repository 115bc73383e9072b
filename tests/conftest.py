"""Shared fixtures: tiny methods on the small backbone, reproducible views, and one tiny
trained run that the eval tests read (trained once per session, copied per module).

Every method is built with head sizes small enough that a forward and backward pass of a
batch of 4 images of 16x16 takes milliseconds on a CPU.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from resmo import create_backbone, create_method, method_names

# The tensors here are tiny: intra-op threads gain nothing, and on a busy 2-core machine
# spinning OpenMP threads made this suite about 7x slower. One thread keeps it fast.
torch.set_num_threads(1)

#: Head sizes per method, small enough for CPU tests.
TINY_OPTIONS: dict[str, dict[str, object]] = {
    "byol": {"hidden_dim": 32, "out_dim": 16, "predictor_hidden_dim": 32},
    "densecl": {"hidden_dim": 32, "out_dim": 16, "queue_size": 64},
    "dino": {"hidden_dim": 32, "bottleneck_dim": 16, "num_prototypes": 32},
    "mocov2": {"hidden_dim": 32, "out_dim": 16, "queue_size": 64},
    "mocov3": {"hidden_dim": 32, "out_dim": 16, "predictor_hidden_dim": 32},
}


def tiny_options(name: str) -> dict[str, object]:
    """Small head sizes for ``name`` (methods registered later get no extra options)."""
    return dict(TINY_OPTIONS.get(name, {}))


def build_method(name: str, *, seed: int = 0, resmo=None, width: int = 8, **options):
    """A method on ``resnet_small`` (width 8), built after seeding torch with ``seed``."""
    torch.manual_seed(seed)
    backbone = create_backbone("resnet_small", width=width)
    merged = tiny_options(name)
    merged.update(options)
    return create_method(name, backbone, resmo=resmo, **merged)


def random_views(
    num_views: int = 2, *, batch: int = 4, size: int = 16, seed: int = 123
) -> list[torch.Tensor]:
    """``num_views`` random image batches ``[batch, 3, size, size]`` from a fixed seed."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, size, size, generator=generator) for _ in range(num_views)]


@pytest.fixture
def make_method():
    """``make_method(name, seed=0, resmo=None, **options)`` -> a tiny method."""
    return build_method


@pytest.fixture
def tiny_sizes() -> dict[str, dict[str, object]]:
    """The head sizes every method is built with in these tests."""
    return {name: dict(options) for name, options in TINY_OPTIONS.items()}


@pytest.fixture
def make_views():
    """``make_views(num_views=2, batch=4, size=16, seed=123)`` -> list of image batches."""
    return random_views


@pytest.fixture(scope="session")
def tiny_run_once(tmp_path_factory):
    """One tiny run (``tests.eval_helpers.make_run``: MoCo v3, 2 epochs of 192 images), trained
    once per session. Never written to: a module takes a copy (``tiny_run_copy``)."""
    from tests.eval_helpers import make_run

    return make_run(tmp_path_factory.mktemp("tiny_run_once") / "run")


@pytest.fixture(scope="module")
def tiny_run_copy(tiny_run_once, tmp_path_factory):
    """A copy of the session's tiny run for one test module, which may add eval files to it."""
    out = tmp_path_factory.mktemp("tiny_run_copy") / "run"
    shutil.copytree(tiny_run_once, out)
    return out


@pytest.fixture(params=method_names())
def method_name(request) -> str:
    """Every registered method name."""
    return request.param
