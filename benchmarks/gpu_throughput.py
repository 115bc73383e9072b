"""End-to-end MoCo v3 training images/s against the model-only ceiling (ResNet-18, CIFAR stem).

    python -m benchmarks.gpu_throughput                    # on a GPU: writes benchmarks/results/gpu_throughput.json
    python -m benchmarks.gpu_throughput --torchvision-workers 8 --compile
    python -m benchmarks.gpu_throughput --tiny --out /tmp/g.json   # seconds on a CPU (smoke test)
    python -m benchmarks.gpu_throughput --torchvision-workers 8 --lightly-workers 8 --out "$OUT/gpu_throughput.json"

The last form is for a borrowed machine where only the repository travels and only ``$OUT``
comes back: copy the JSON into ``benchmarks/results/`` afterwards. The JSON is rewritten after
every mode measured, with ``"complete": false`` until the last one, so a crash or time-out
keeps the modes already measured.

Every mode runs the same training step as ``resmo pretrain`` (PretrainModule): the method's
forward on the views, backward, LARS step, then ``after_optimizer_step`` (fused EMA of the
teacher), with the heads of the CIFAR MoCo v3 recipe (``--config cifar10/mocov3``), batch
512 by default:

- ``model_only``: two views already on the device (random tensors): the ceiling;
- ``batched``: ``data.pipeline: batched`` as in training: uint8 batches gathered from an
  in-memory dataset (50 000 random 32 px images, CIFAR-10's size), pinned, copied to the
  device, views made there by ``DeviceViews`` from the two-view spec, then the step;
- ``torchvision`` (with ``--torchvision-workers N``): per-image views in ``N`` DataLoader
  workers, then the step (the reference pipeline);
- ``lightly`` (with ``--lightly-workers N``): the peer end to end, as a LightlySSL user writes it:
  MoCo v3 from LightlySSL's blocks (``lightly_baselines.py``: its heads, ``NTXentLoss``,
  ``update_momentum``) with LightlySSL's ``LARS``, per-image views in ``N`` workers, same
  backbone, heads, precision, memory format and ``--compile``. ``batched_over_lightly``
  compares whole training loops (data path, ResMo on in resmo's, implementation), not one part.

Defaults where the device supports them: bf16 autocast (``--precision bf16``, as
``train.precision=bf16-mixed``), ``channels_last`` (off with ``--no-channels-last``),
``torch.compile`` of the backbones with ``--compile``. Images/s count source images per
second (each gives two views). ``batched / model_only`` close to 1 means the data path
keeps the accelerator busy. On CUDA, cuDNN autotuning (``torch.backends.cudnn.benchmark``)
is on, as in ``resmo pretrain``; the JSON records it (``cudnn_benchmark``).
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from benchmarks.results_io import save_json, write_result
from resmo import create_backbone, create_method
from resmo.builder import apply_backbone_settings
from resmo.data import MultiViewDataset, TorchvisionViews, build_train_loader, build_view_spec
from resmo.data.batched import BatchedViews, DeviceViews
from resmo.optim.optimizers import build_optimizer

RESULTS = Path(__file__).parent / "results" / "gpu_throughput.json"
RECIPE_HEADS = {"hidden_dim": 4096, "out_dim": 256, "predictor_hidden_dim": 4096, "temperature": 0.2}
TINY_HEADS = {"hidden_dim": 64, "out_dim": 32, "predictor_hidden_dim": 64}
RATIOS = {"batched_over_model_only": ("batched", "model_only"),
          "torchvision_over_model_only": ("torchvision", "model_only"), "batched_over_lightly": ("batched", "lightly")}


class RandomImages(Dataset):
    """In-memory uint8 images ``[N, H, W, 3]`` (as CIFAR's ``.data``) with ``targets``."""

    def __init__(self, count: int, size: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.data = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
        self.targets = rng.integers(0, 10, count).tolist()
        self.transform = None

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return Image.fromarray(self.data[index]), self.targets[index]


def device_info(device: torch.device) -> dict:
    info = {"device": str(device), "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    else:
        info["cpu_threads"] = torch.get_num_threads()
        info["processor"] = platform.processor() or platform.machine()
    return info


def build(args, device: torch.device):
    torch.manual_seed(0)
    if args.tiny:
        backbone = create_backbone("resnet_small", width=8)
    else:
        backbone = create_backbone("resnet18", cifar_stem=True)
    method = create_method("mocov3", backbone, resmo={"weight": 1.0}, **(TINY_HEADS if args.tiny else RECIPE_HEADS))
    apply_backbone_settings(method, channels_last=args.channels_last, compile=args.compile)
    method.to(device)
    optimizer = build_optimizer(method.student_parameters(), name="lars", lr=0.3, weight_decay=1e-6)
    return method, optimizer


def make_step(method, optimizer, args, device: torch.device):
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()
    )
    state = {"step": 0}

    def step(views: list[torch.Tensor]) -> None:
        if args.channels_last:
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
        with autocast:
            result = method(views, step=state["step"])
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        optimizer.step()
        method.after_optimizer_step(result, step=state["step"], total_steps=10_000)
        state["step"] += 1

    return step


def timed(run_steps, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds for ``steps`` steps after ``warmup`` (``run_steps(n)`` runs ``n`` steps)."""
    run_steps(warmup)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run_steps(steps)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def looping(loader):
    """An endless iterator over ``loader``'s epochs."""
    epoch = 0
    while True:
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def per_image_batches(data, views: TorchvisionViews, batch_size: int, workers: int, device: torch.device):
    """Endless batches of per-image torchvision views made by ``workers`` DataLoader workers."""
    return looping(DataLoader(
        MultiViewDataset(data, views), batch_size=batch_size, shuffle=True, drop_last=True,
        num_workers=workers, persistent_workers=True, pin_memory=device.type == "cuda",
    ))


def lightly_seconds(args, data, views: TorchvisionViews, device: torch.device) -> float:
    """Seconds for ``args.steps`` end-to-end steps of MoCo v3 from LightlySSL's blocks, per-image views in workers."""
    from lightly.utils.lars import LARS

    from benchmarks.lightly_baselines import LightlyModel

    torch.manual_seed(0)
    backbone = create_backbone("resnet_small", width=8) if args.tiny else create_backbone("resnet18", cifar_stem=True)
    heads = TINY_HEADS if args.tiny else RECIPE_HEADS
    model = LightlyModel("mocov3", backbone, backbone.feature_dim, hidden_dim=heads["hidden_dim"],
                         out_dim=heads["out_dim"], temperature=0.2).to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    if args.compile:  # the same speed settings as resmo's backbones
        model.backbone.compile()
        model.teacher_backbone.compile()
    optimizer = LARS(model.student_parameters(), lr=0.3, momentum=0.9, weight_decay=1e-6)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()
    )
    batches = per_image_batches(data, views, args.batch_size, args.lightly_workers, device)

    def steps(n: int) -> None:
        for _ in range(n):
            views, _labels = next(batches)
            views = [v.to(device, non_blocking=True) for v in views]
            if args.channels_last:
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            with autocast:
                loss = model.loss(views)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.update_teacher(0.99)

    return timed(steps, args.steps, args.warmup, device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--precision", choices=("bf16", "32"), default=None,
                        help="default: bf16 where the device supports it, else 32")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbones")
    parser.add_argument("--torchvision-workers", type=int, default=0,
                        help="also measure the torchvision per-image pipeline with this many workers")
    parser.add_argument("--lightly-workers", type=int, default=0,
                        help="also measure MoCo v3 built from LightlySSL's blocks with per-image views in N workers")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--tiny", action="store_true", help="small model, batch and steps (CPU smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.precision is None:
        supported = device.type == "cuda" and torch.cuda.is_bf16_supported()
        args.precision = "bf16" if supported else "32"
    if args.tiny:
        args.batch_size, args.images, args.steps, args.warmup = 8, 64, 2, 1
    # cuDNN autotuning on CUDA, as resmo pretrain; set either way, so that nothing this process
    # did before (an earlier run in the same interpreter) decides what is measured
    torch.backends.cudnn.benchmark = device.type == "cuda"

    result = {
        "command": "python -m benchmarks.gpu_throughput " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": device_info(device),
        "model": "resnet_small (tiny)" if args.tiny else "resnet18, CIFAR stem, MoCo v3 recipe heads",
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "complete": False,  # true once every mode asked for is measured
        "images_per_second": {},
    }
    rates: dict[str, float] = {}

    def record(mode: str, seconds: float) -> None:
        """Keep the images/s of ``mode`` and save everything measured so far."""
        rates[mode] = args.steps * args.batch_size / seconds
        result["images_per_second"][mode] = round(rates[mode], 1)
        result.update({key: round(rates[a] / rates[b], 3) for key, (a, b) in RATIOS.items() if {a, b} <= set(rates)})
        save_json(args.out, result)

    spec = build_view_spec("mocov3", 32)
    method, optimizer = build(args, device)
    step = make_step(method, optimizer, args, device)

    # model only: the views are already on the device
    fixed = [torch.randn(args.batch_size, 3, 32, 32, device=device) for _ in range(2)]
    record("model_only", timed(lambda n: [step(fixed) for _ in range(n)], args.steps, args.warmup, device))

    # batched: uint8 batches -> device -> views there (as data.pipeline=batched)
    data = RandomImages(args.images, 32)
    loader = build_train_loader(data, spec, pipeline="batched", batch_size=args.batch_size, seed=0, workers=0)
    views_on_device = DeviceViews(BatchedViews(spec))
    batches = looping(loader)

    def batched_steps(n: int) -> None:
        for _ in range(n):
            images, labels, seed = next(batches)
            images = images.to(device, non_blocking=True)
            views, _ = views_on_device((images, labels.to(device, non_blocking=True), seed))
            step(views)

    record("batched", timed(batched_steps, args.steps, args.warmup, device))

    if args.torchvision_workers:
        torchvision_batches = per_image_batches(data, TorchvisionViews(spec), args.batch_size, args.torchvision_workers, device)

        def torchvision_steps(n: int) -> None:
            for _ in range(n):
                views, _labels = next(torchvision_batches)
                step([v.to(device, non_blocking=True) for v in views])

        record("torchvision", timed(torchvision_steps, args.steps, args.warmup, device))

    if args.lightly_workers:
        record("lightly", lightly_seconds(args, data, TorchvisionViews(spec), device))
    result["complete"] = True
    return write_result(args.out, result)


if __name__ == "__main__":
    main()
