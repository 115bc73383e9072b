"""RNG states in checkpoints, so a resumed run draws what an uninterrupted one draws.

CUDA states are restored for the devices this machine has (a checkpoint from a machine
with more GPUs restores the first ones, with a warning).
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import torch


def rng_states() -> dict:
    """The Python, NumPy, torch and CUDA RNG states, loadable with ``weights_only=True``."""
    return {
        "python": random.getstate(),
        "numpy": _numpy_state_to_tensors(np.random.get_state()),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng_states(states: dict) -> None:
    """Set every RNG to the states of :func:`rng_states`."""
    random.setstate(states["python"])
    np.random.set_state(_numpy_state_from_tensors(states["numpy"]))
    torch.set_rng_state(states["torch"])
    restore_cuda_rng_states(states.get("cuda"))


def restore_cuda_rng_states(states: list[torch.Tensor] | None) -> None:
    """Set the RNG state of CUDA device ``i`` to ``states[i]`` for the devices present."""
    if not states or not torch.cuda.is_available():
        return
    present = torch.cuda.device_count()
    if len(states) > present:
        warnings.warn(
            f"the checkpoint holds the CUDA RNG states of {len(states)} devices, this machine has "
            f"{present}: the states of the first {present} are restored", stacklevel=2,
        )
    for device, state in enumerate(states[:present]):
        torch.cuda.set_rng_state(state, device=device)


def _numpy_state_to_tensors(state: tuple) -> dict:
    """NumPy's RNG state as tensors and ints, loadable with ``torch.load(weights_only=True)``."""
    kind, keys, position, has_gauss, cached_gaussian = state
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def _numpy_state_from_tensors(state: dict) -> tuple:
    return (state["kind"], state["keys"].numpy().astype(np.uint32), state["position"],
            state["has_gauss"], state["cached_gaussian"])
