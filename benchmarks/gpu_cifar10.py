"""MoCo v3 with and without ResMo on real CIFAR-10 on one GPU, in at most 8 minutes.

    python -m benchmarks.gpu_cifar10                     # on a GPU -> benchmarks/results/gpu_cifar10.json
    python -m benchmarks.gpu_cifar10 --archive PATH/cifar10-jpeg.tar.gz --cache DIR
    python -m benchmarks.gpu_cifar10 --tiny --out /tmp/gpu.json        # the whole flow in seconds (smoke test)

Two ``resmo pretrain`` runs (ResMo weight 0 and 1; ResNet-18 with CIFAR stem, batch 512,
bf16 autocast, channels-last, ``data.pipeline: batched``, LARS, the CIFAR MoCo v3 recipe's
heads, ``--epochs`` epochs on the 50,000 training images), then ``resmo eval knn`` of
student and teacher on the 10,000 test images. Reported per run: kNN top-1 (k = 20),
training images/s, wall times; and the model-only ceiling (``gpu_throughput.py``: the same
step on views already on the GPU), so that ``training images/s / ceiling`` shows what the
data path costs. The default 15 epochs per run are sized to fit 8 minutes on one H100 (an
estimate until the first measurement); ``--epochs`` scales the time. ``--workers`` sets the
image-decoding processes of training and evaluation (default: min(8, CPU count)).

The JSON is rewritten after the ceiling and after every run, with ``"complete": false`` until
the end: a crash or time-out keeps what was measured. ``--tiny`` (small model, 640 images,
1 epoch) runs the same flow in seconds: on a CPU a smoke test, on a GPU a check of the CUDA
path before the real run.

The data is the real CIFAR-10 archive (default ``../shared/data/cifar10-jpeg.tar.gz``),
extracted once into ``--cache`` (default ``~/.cache/resmo/benchmarks``). On a borrowed GPU
machine where only the repository's working tree travels, and only ``$OUT`` comes back, copy
the archive into the tree under the git-ignored ``.cache/``, carry it (ignored paths travel
only when named: ``carry: [".cache/cifar10-jpeg.tar.gz"]``, 20 MB), and write into ``$OUT``:

    mkdir -p .cache && cp ../shared/data/cifar10-jpeg.tar.gz .cache/            # here, once
    python -m benchmarks.gpu_cifar10 --archive .cache/cifar10-jpeg.tar.gz --tiny --out "$OUT/tiny.json"
    python -m benchmarks.gpu_cifar10 --archive .cache/cifar10-jpeg.tar.gz --out "$OUT/gpu_cifar10.json"

then copy the returned JSON to ``benchmarks/results/`` and run ``python -m benchmarks.render_docs``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cifar10_folder import ARCHIVE, DataMissing, cache_root, cifar10_folder
from benchmarks.folder_subset import subset_folder
from benchmarks.results_io import save_json, write_result

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "gpu_cifar10.json"
RECIPE_HEADS = ["method_options.mocov3.hidden_dim=4096", "method_options.mocov3.out_dim=256",
                "method_options.mocov3.predictor_hidden_dim=4096", "method_options.mocov3.temperature=0.2"]


def pretrain_arguments(weight: float, folder: Path, out: Path, args) -> list[str]:
    """Options first, then ``key.sub=value`` overrides (argparse reads them as one list)."""
    options = ["pretrain", "--method", "mocov3", "--data", str(folder), "--epochs", str(args.epochs),
               "--resmo-weight", str(weight), "--seed", "0", "--out", str(out)]
    overrides = ["data.image_size=32", "data.pipeline=batched", f"data.num_workers={args.workers}",
                 "train.progress_bar=false", "monitor.knn_max_train=5000", "monitor.knn_max_val=2000"]
    if args.tiny:
        return [*options, "--backbone", "resnet_small", "--batch-size", "32", *overrides,
                "backbone_options.resnet_small.width=4", "method_options.mocov3.hidden_dim=32",
                "method_options.mocov3.out_dim=16", "method_options.mocov3.predictor_hidden_dim=32"]
    return [*options, "--backbone", "resnet18", "--batch-size", str(args.batch_size), "--precision", "bf16-mixed",
            *overrides, "backbone_options.resnet18.cifar_stem=true", "train.channels_last=true",
            "optimizer.name=lars", "optimizer.lr=0.6", "optimizer.weight_decay=1e-6",
            "optimizer.warmup_epochs=2", "method_options.mocov3.momentum=0.99", *RECIPE_HEADS]


def pretrain_run(weight: float, folder: Path, work: Path, args, device: str) -> dict:
    """``resmo pretrain`` with ResMo weight ``weight``, then ``resmo eval knn``: the run's JSON entry."""
    from resmo.cli import main as resmo_main
    from resmo.eval.results import read_results

    out = work / f"mocov3-w{weight:g}"
    commands = {"pretrain": pretrain_arguments(weight, folder, out, args),
                "eval": ["eval", "knn", str(out), "--encoder", "both", "--k", "20", "--device", device,
                         "--num-workers", str(args.workers)]}
    wall = {}
    for stage, arguments in commands.items():
        start = time.perf_counter()
        if resmo_main(arguments) != 0:
            raise SystemExit(f"gpu_cifar10: resmo {shlex.join(arguments)} failed")
        wall[stage] = round(time.perf_counter() - start, 1)
    knn = read_results(out, "knn")[-1]["results"]
    summary = json.loads((out / "summary.json").read_text())
    shown = {stage: "resmo " + shlex.join(arguments).replace(str(folder), "CIFAR10_FOLDER").replace(str(out), "RUN")
             for stage, arguments in commands.items()}
    return {
        "command": shown["pretrain"], "eval_command": shown["eval"],
        "knn_top1_student": knn["student"]["k20"]["top1"],
        "knn_top1_teacher": knn["teacher"]["k20"]["top1"],
        "train_images_per_second": summary["images_per_second"],
        "wall_seconds_pretrain": wall["pretrain"], "wall_seconds_eval": wall["eval"],
    }


def data_folder(args) -> Path:
    """The extracted CIFAR-10 folder; exits with one line, before any work, if it cannot be had."""
    if args.data_folder:
        return args.data_folder
    try:
        return cifar10_folder(args.archive, args.cache)
    except DataMissing as error:
        if not args.archive.is_file():
            raise SystemExit(
                f"gpu_cifar10: no CIFAR-10 archive at {args.archive}; pass --archive PATH/cifar10-jpeg.tar.gz "
                "(where only the repository travels: copy ../shared/data/cifar10-jpeg.tar.gz to .cache/ in it, "
                "carry it, --archive .cache/cifar10-jpeg.tar.gz) or --data-folder DIR") from None
        raise SystemExit(f"gpu_cifar10: {error}") from None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_cifar10", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0], help="ResMo weights (default 0 1)")
    parser.add_argument("--workers", type=int, help="image-decoding processes of training and evaluation "
                        "(default: min(8, CPU count); 0 with --tiny)")
    parser.add_argument("--archive", type=Path, default=ARCHIVE, help="cifar10-jpeg.tar.gz (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=cache_root(), help="where it is extracted (default: %(default)s)")
    parser.add_argument("--data-folder", type=Path, help="an extracted CIFAR-10 JPEG folder (instead of --archive)")
    parser.add_argument("--tiny", action="store_true", help="small model on 640 images, 1 epoch (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    folder = data_folder(args)
    if args.workers is None:
        args.workers = 0 if args.tiny else min(8, os.cpu_count() or 1)
    if args.tiny:
        args.epochs = 1
        folder = subset_folder(folder, args.cache / "gpu-tiny" / "cifar10-64-20", {"train": 64, "test": 20})
    import torch

    from benchmarks import gpu_throughput

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # as resmo pretrain and gpu_throughput.py on CUDA
    result = {
        "command": "python -m benchmarks.gpu_cifar10 " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"device": device, "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
                    "cpu_count": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()},
        "epochs": args.epochs, "seed": 0, "workers": args.workers,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "complete": False,  # true once every run is measured
        "runs": {},
        "model_only_images_per_second": None,
        "train_over_model_only": {},
        "ceiling_details": None,
    }
    with tempfile.TemporaryDirectory() as tmp:
        ceiling_argv = ["--tiny"] if args.tiny else ["--batch-size", str(args.batch_size)]
        ceiling = gpu_throughput.main([*ceiling_argv, "--device", device, "--out", str(Path(tmp) / "ceiling.json")])
        model_only = ceiling["images_per_second"]["model_only"]
        result |= {"model_only_images_per_second": model_only, "ceiling_details": ceiling}
        save_json(args.out, result)
        for weight in args.weights:
            name = f"resmo_weight_{weight:g}"
            result["runs"][name] = run = pretrain_run(weight, folder, Path(tmp), args, device)
            rate = run["train_images_per_second"]
            result["train_over_model_only"][name] = round(rate / model_only, 3) if rate else None
            save_json(args.out, result)
    result["complete"] = True
    return write_result(args.out, result, shown={k: v for k, v in result.items() if k != "ceiling_details"})


if __name__ == "__main__":
    main()
