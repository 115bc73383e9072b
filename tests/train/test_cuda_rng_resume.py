"""Resuming on a machine with fewer GPUs than the one that wrote the checkpoint.

A checkpoint holds one CUDA RNG state per device of the machine that wrote it. This CPU
machine has no GPU, so the test pretends to have one: ``torch.cuda.is_available`` and
``device_count`` are patched, and ``set_rng_state`` records the states and refuses a
device that does not exist, as CUDA does. The RNG callback then loads the state of a real
checkpoint into which the test wrote the CUDA states of two devices.
"""

from __future__ import annotations

import pytest
import torch

from resmo.config import load_config
from resmo.train.pretrain import execute_run, prepare_run
from resmo.train.rng import restore_rng_states
from tests.pretrain_helpers import tiny_overrides


@pytest.fixture
def one_gpu(monkeypatch) -> dict[int, torch.Tensor]:
    """Pretend this machine has one CUDA device; returns ``{device: restored state}``."""
    restored: dict[int, torch.Tensor] = {}

    def set_rng_state(state, device="cuda"):
        index = device if isinstance(device, int) else (torch.device(device).index or 0)
        if index >= 1:
            raise RuntimeError(f"CUDA error: invalid device ordinal {index}")
        restored[index] = state

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_rng_state)
    return restored


@pytest.fixture(scope="module")
def checkpoint_of_two_gpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("rng") / "run"
    execute_run(prepare_run(load_config(None, tiny_overrides(out, epochs=1))))
    saved = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    states = [torch.full((16,), 7, dtype=torch.uint8), torch.full((16,), 9, dtype=torch.uint8)]
    saved["loop"]["rng"]["cuda"] = states
    return saved


def test_resume_restores_the_cuda_rng_states_of_the_devices_present(checkpoint_of_two_gpus, one_gpu):
    state = checkpoint_of_two_gpus["loop"]["rng"]
    cpu_before = torch.get_rng_state()
    with pytest.warns(UserWarning, match="CUDA RNG states of 2 devices, this machine has 1"):
        restore_rng_states(state)
    assert list(one_gpu) == [0] and torch.equal(one_gpu[0], state["cuda"][0])
    assert torch.equal(torch.get_rng_state(), state["torch"])  # the CPU state is restored too
    torch.set_rng_state(cpu_before)
