"""Ops per optimizer step of LARS (per-parameter loop vs multi-tensor) and of DINO's clipping.

    python -m benchmarks.lars_ops                   # CPU: writes benchmarks/results/lars_ops.json
    python -m benchmarks.lars_ops --device cuda --out RESULT.json   # also counts CUDA kernels

The students of the LARS recipes (BYOL, MoCo v3, DINO) around a ResNet-18, and the ResNet-18
alone, with fixed random gradients and resmo's LARS parameter groups
(``resmo.optim.optimizers.build_optimizer``, the recipes' defaults). For each step, after
one warm-up step (the first step creates the momentum buffers), it records:

- ``aten_ops``: the ATen ops the step dispatches (``TorchDispatchMode``; a ``_foreach_*``
  op over many tensors is one op), the profiler's two step markers included.
- ``cuda_kernels_estimate``: the launches those ops make on CUDA, by rule: views (``unbind``,
  ``detach``, ...) launch nothing; a ``_foreach_*`` op whose tensor lists differ in shape
  (a list of 0-D scalars against the weights) takes CUDA's per-tensor path, one launch per
  tensor; every other op one launch (``_foreach_norm`` two, a partial and a final
  reduction; a very long list may be split into a few more).
- ``cuda_kernels`` (``--device cuda`` only): the kernels ``torch.profiler`` sees run.

``per_parameter`` is the loop (``LARS(foreach=False)``, the reference), ``foreach`` the
multi-tensor step; the clipping rows count ``clip_gradients_per_parameter`` on DINO's student
against the per-parameter loop it replaced (written out below).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.results_io import machine_info, write_result
from resmo.backbones import create_backbone
from resmo.builder import build_method, resolve_backbone_options
from resmo.config.loader import load_config
from resmo.methods.base import CLIP_EPSILON, clip_gradients_per_parameter
from resmo.optim.lars import LARS
from resmo.optim.optimizers import build_optimizer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "lars_ops.json"
#: ops that launch no kernel: views or aliases of their input, the profiler's step markers
NO_KERNEL = {"unbind", "detach", "alias", "view", "_unsafe_view", "as_strided", "expand", "select",
             "lift_fresh", "t", "permute", "squeeze", "unsqueeze",
             "_record_function_enter_new", "_record_function_exit"}
#: the multi-tensor norm runs a partial reduction per chunk, then one to finish
TWO_KERNELS = {"_foreach_norm"}


def _tensor_lists(args) -> list[list[torch.Tensor]]:
    return [list(a) for a in args if isinstance(a, (list, tuple)) and a and isinstance(a[0], torch.Tensor)]


class OpCounter(TorchDispatchMode):
    """Counts the ATen ops dispatched while active and the CUDA launches they would make."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.kernels_estimate = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if name in NO_KERNEL:
            pass
        elif name.startswith("_foreach_"):
            lists = _tensor_lists(args)
            shapes = {tuple(tuple(t.shape) for t in tensors) for tensors in lists}
            self.kernels_estimate += (len(lists[0]) if len(shapes) > 1
                                      else 2 if name in TWO_KERNELS else 1)
        else:
            self.kernels_estimate += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())


def cuda_kernels(action) -> int:
    """Kernels the CUDA profiler sees run during ``action()``."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        action()
        torch.cuda.synchronize()
    return sum(1 for event in prof.events() if event.device_type == torch.autograd.DeviceType.CUDA)


def students(device: torch.device) -> dict[str, list[torch.nn.Parameter]]:
    """The parameters each row steps: ResNet-18 alone and the students of the LARS recipes."""
    rows = {"resnet18_backbone": list(create_backbone("resnet18").to(device).parameters())}
    for method in ("byol", "mocov3", "dino"):
        config = load_config(None, [f"method={method}", "backbone=resnet18"])
        built = build_method(config, resolve_backbone_options(config, 224), steps_per_epoch=10).to(device)
        rows[f"{method}_student"] = list(built.student_parameters())
    return rows


def with_gradients(parameters: list[torch.nn.Parameter], seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for parameter in parameters:
        parameter.grad = (torch.randn(parameter.shape, generator=generator) * 1e-2).to(parameter.device)


def clip_per_parameter_loop(parameters, max_norm: float) -> None:
    """The clipping before it was fused: one coefficient and one multiply per parameter."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norms = torch._foreach_norm(grads)
    for grad, norm in zip(grads, norms, strict=True):
        grad.mul_((max_norm / (norm + CLIP_EPSILON)).clamp(max=1.0))


def measure(action, device: torch.device) -> dict:
    counter = OpCounter()
    with counter:
        action()
    row = {"aten_ops": counter.total, "cuda_kernels_estimate": counter.kernels_estimate,
           "ops_by_name": dict(counter.ops.most_common())}
    if device.type == "cuda":
        row["cuda_kernels"] = cuda_kernels(action)
    return row


def lars_row(parameters: list[torch.nn.Parameter], device: torch.device) -> dict:
    row = {"parameters": len(parameters),
           "adapted": sum(p.ndim != 1 for p in parameters), "excluded_1d": sum(p.ndim == 1 for p in parameters)}
    for name, foreach in (("per_parameter", False), ("foreach", True)):
        optimizer = build_optimizer(parameters, name="lars", lr=0.3, weight_decay=1e-6)
        assert isinstance(optimizer, LARS)
        optimizer.foreach = foreach
        with_gradients(parameters, seed=0)
        optimizer.step()  # momentum buffers made
        row[name] = measure(optimizer.step, device)
    row["ratio_aten_ops"] = row["foreach"]["aten_ops"] / row["per_parameter"]["aten_ops"]
    row["ratio_cuda_kernels_estimate"] = (row["foreach"]["cuda_kernels_estimate"]
                                          / row["per_parameter"]["cuda_kernels_estimate"])
    if device.type == "cuda":
        row["ratio_cuda_kernels"] = row["foreach"]["cuda_kernels"] / row["per_parameter"]["cuda_kernels"]
    return row


def clipping_row(parameters: list[torch.nn.Parameter], device: torch.device) -> dict:
    with_gradients(parameters, seed=1)
    row = {"parameters": len(parameters)}
    row["per_parameter"] = measure(lambda: clip_per_parameter_loop(parameters, 3.0), device)
    row["foreach"] = measure(lambda: clip_gradients_per_parameter(parameters, 3.0), device)
    row["ratio_aten_ops"] = row["foreach"]["aten_ops"] / row["per_parameter"]["aten_ops"]
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lars_ops", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(1)
    rows = students(device)
    lars = {name: lars_row(parameters, device) for name, parameters in rows.items()}
    result = {
        "command": " ".join(["python -m benchmarks.lars_ops", *(argv or [])]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_info(device=str(device)),
        "lars": lars,
        "dino_clipping": clipping_row(rows["dino_student"], device),
        "target_ratio": 0.2,
        "meets_target": all(row["ratio_aten_ops"] <= 0.2 for row in lars.values()),
    }
    return write_result(args.out, result, shown={
        "lars_ratio_aten_ops": {name: round(row["ratio_aten_ops"], 4) for name, row in lars.items()},
        "meets_target": result["meets_target"]})


if __name__ == "__main__":
    main(sys.argv[1:])
