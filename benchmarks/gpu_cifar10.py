"""MoCo v3 with and without ResMo on real CIFAR-10 on one GPU, in at most 8 minutes.

    python benchmarks/gpu_cifar10.py                     # on a GPU -> benchmarks/results/gpu_cifar10.json
    python benchmarks/gpu_cifar10.py --archive PATH/cifar10-jpeg.tar.gz
    python benchmarks/gpu_cifar10.py --tiny --out /tmp/gpu.json        # seconds on a CPU (smoke test)

Two ``resmo pretrain`` runs (ResMo weight 0 and 1; ResNet-18 with CIFAR stem, batch 512,
bf16 autocast, channels-last, ``data.pipeline: batched``, LARS, the CIFAR MoCo v3 recipe's
heads, ``--epochs`` epochs on the 50,000 training images), then ``resmo eval knn`` of
student and teacher on the 10,000 test images. Reported per run: kNN top-1 (k = 20),
training images/s, wall time; and the model-only ceiling (``gpu_throughput.py``: the same
step on views already on the GPU), so that ``training images/s / ceiling`` shows what the
data path costs. The default 15 epochs per run are sized to fit 8 minutes on one H100 (an
estimate until the first measurement); ``--epochs`` scales the time.

The data is the real CIFAR-10 archive of ``../shared/data`` (``--archive`` elsewhere, e.g.
on a machine where only the repository travels), extracted once into the cache folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cifar10_folder import ARCHIVE, DataMissing, cache_root, cifar10_folder  # noqa: E402
from folder_subset import subset_folder  # noqa: E402
from results_io import write_result  # noqa: E402

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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=8, help="image-decoding processes")
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--data-folder", type=Path, help="an extracted CIFAR-10 JPEG folder")
    parser.add_argument("--tiny", action="store_true", help="small model on 640 images, CPU (smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import torch

    from resmo.cli import main as resmo_main
    from resmo.eval.results import read_results

    try:
        folder = args.data_folder or cifar10_folder(args.archive)
    except DataMissing as error:
        raise SystemExit(f"gpu_cifar10: {error}") from None
    if args.tiny:
        args.epochs, args.workers = 1, 0
        folder = subset_folder(folder, cache_root() / "gpu-tiny" / "cifar10-64-20", {"train": 64, "test": 20})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    import gpu_throughput

    ceiling_argv = ["--tiny", "--device", "cpu"] if args.tiny else ["--batch-size", str(args.batch_size)]
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        ceiling = gpu_throughput.main([*ceiling_argv, "--out", str(Path(tmp) / "ceiling.json")])
        for weight in (0.0, 1.0):
            out = Path(tmp) / f"mocov3-w{weight:g}"
            arguments = pretrain_arguments(weight, folder, out, args)
            start = time.perf_counter()
            if resmo_main(arguments) != 0:
                raise SystemExit(f"resmo {shlex.join(arguments)} failed")
            wall = time.perf_counter() - start
            if resmo_main(["eval", "knn", str(out), "--encoder", "both", "--k", "20", "--device", device]) != 0:
                raise SystemExit(f"resmo eval knn {out} failed")
            knn = read_results(out, "knn")[-1]["results"]
            summary = json.loads((out / "summary.json").read_text())
            runs[f"resmo_weight_{weight:g}"] = {
                "command": "resmo " + shlex.join(arguments).replace(str(folder), "CIFAR10_FOLDER")
                .replace(str(out), "RUN"),
                "knn_top1_student": knn["student"]["k20"]["top1"],
                "knn_top1_teacher": knn["teacher"]["k20"]["top1"],
                "train_images_per_second": summary["images_per_second"],
                "wall_seconds_pretrain": round(wall, 1),
            }
    model_only = ceiling["images_per_second"]["model_only"]
    result = {
        "command": "python benchmarks/gpu_cifar10.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"device": device, "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
                    "torch": torch.__version__, "python": platform.python_version()},
        "epochs": args.epochs, "seed": 0,
        "runs": runs,
        "model_only_images_per_second": model_only,
        "train_over_model_only": {name: round(run["train_images_per_second"] / model_only, 3)
                                  for name, run in runs.items()},
        "ceiling_details": ceiling,
    }
    return write_result(args.out, result, shown={k: v for k, v in result.items() if k != "ceiling_details"})


if __name__ == "__main__":
    main()
