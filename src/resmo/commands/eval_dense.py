"""``resmo eval dense RUN --data VOC_ROOT``: the dense linear probe (resmo.eval.dense).

Prints one line per encoder (mIoU and pixel accuracy on the evaluation split, and the
difference to the random-init encoder) and saves ``<run>/eval/dense-<data>-<splits>.json``.
"""

from __future__ import annotations

import argparse
from typing import Any

from resmo.commands.common import USER_ERRORS, add_run_argument, fail, positive_int
from resmo.commands.transfer_command import positive_float


def stage_list(value: str) -> tuple[int, ...]:
    """``"3,4"`` -> ``(3, 4)`` (which stages exist is checked by resmo.eval.dense_probe)."""
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid stages: {value!r} (ResNet stages 1-4 separated by commas, "
                                         "e.g. 4 or 3,4)") from None


def add_dense_parser(probes) -> None:
    """``resmo eval dense`` under ``resmo eval``'s subcommands."""
    dense = probes.add_parser(
        "dense", help="dense linear probe on a VOC segmentation folder: mIoU, pixel accuracy",
        description="Per-pixel linear probe on the frozen backbone's feature maps: the chosen ResNet stages "
        "(default the last; several are upsampled bilinearly to the finest and concatenated), standardised per "
        "channel, a 1x1 convolution whose logits are upsampled bilinearly to the mask size, trained with "
        "cross-entropy (label 255 ignored) by Adam. Reports mIoU (mean over the classes in the ground truth "
        "or the prediction of TP / (TP + FP + FN)) and pixel accuracy for each encoder and for a random-init "
        "encoder of the same architecture (same seed). Data: a VOC segmentation folder (JPEGImages/, "
        "SegmentationClass/*.png, ImageSets/Segmentation/<split>.txt, optional classes.txt). Saves "
        "<run>/eval/dense-<data>-<splits>.json.",
    )
    add_run_argument(dense)
    dense.add_argument("--data", metavar="VOC_ROOT", required=True, help="a VOC segmentation-layout folder")
    dense.add_argument("--encoder", choices=("student", "teacher", "both"), default="both",
                       help="which backbone to evaluate (default: both)")
    dense.add_argument("--no-random-init", dest="random_init", action="store_false",
                       help="leave out the random-init baseline")
    dense.add_argument("--train-split", default="train", help="split the probe trains on (default train)")
    dense.add_argument("--val-split", default="val", help="split the scores are measured on (default val)")
    dense.add_argument("--image-size", type=positive_int, metavar="PX",
                       help="images and masks resized to PX x PX (default: the run's image size)")
    dense.add_argument("--stages", type=stage_list, default=(4,), metavar="4|3,4",
                       help="ResNet stages whose maps the probe reads (default 4: the last)")
    dense.add_argument("--epochs", type=positive_int, default=20, help="passes over the training images (default 20)")
    dense.add_argument("--lr", type=positive_float, default=0.01, help="Adam learning rate (default 0.01)")
    dense.add_argument("--seed", type=int, default=0, help="seed of the batch order and the random-init encoder (default 0)")
    dense.add_argument("--batch-size", type=positive_int, default=32, help="images per batch (default 32)")
    dense.add_argument("--max-train", type=positive_int, metavar="N", help="use the first N training images")
    dense.add_argument("--max-val", type=positive_int, metavar="N", help="use the first N evaluation images")
    dense.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    dense.add_argument("--out", metavar="FILE.json", help="result file (default <run>/eval/dense-<data>-<splits>.json)")
    dense.set_defaults(no_cache=True)  # nothing is cached: a Ctrl+C leaves no result (resmo eval's kept_on_interrupt)


def format_dense(payload: dict[str, Any]) -> list[str]:
    settings = payload["settings"]
    lines = [f"dense probe (stages {','.join(map(str, settings['stages']))}, {settings['image_size']} px) on "
             f"{payload['data']} ({payload['num_train']} train / {payload['num_val']} eval images, "
             f"{payload['num_classes']} classes), checkpoint {payload['checkpoint']} (step {payload['global_step']})",
             f"{'encoder':<12}{'mIoU':>8}{'pixel acc':>11}{'vs random mIoU':>16}"]
    gains = payload.get("minus_random_init") or {}
    for encoder, scores in payload["results"].items():
        gain = f"{gains[encoder]['mIoU']:+.2f}" if encoder in gains else ""
        lines.append(f"{encoder:<12}{scores['mIoU']:>8.2f}{scores['pixel_accuracy']:>11.2f}{gain:>16}")
    if payload.get("teacher_minus_student"):
        lines.append(f"teacher - student mIoU: {payload['teacher_minus_student']['mIoU']:+.2f}")
    return lines + [f"saved {payload['path']}"]


def run_dense(args: argparse.Namespace) -> int:
    from resmo.eval.dense import dense_data, evaluate_dense
    from resmo.eval.features import resolve_device
    from resmo.eval.runs import expand_encoders, load_run

    try:
        encoders = expand_encoders(args.encoder)
        resolve_device(args.device)
        run = load_run(args.run, config=args.config)
        data = dense_data(run, args.data, train_split=args.train_split, val_split=args.val_split,
                          image_size=args.image_size, max_train=args.max_train, max_val=args.max_val)
        payload = evaluate_dense(run, data, encoders, stages=args.stages, epochs=args.epochs, lr=args.lr,
                                 batch_size=args.batch_size, seed=args.seed, random_init=args.random_init,
                                 device=args.device, out=args.out, log=lambda line: print(line, flush=True))
    except USER_ERRORS as error:
        return fail("resmo eval dense", error)
    print("\n".join(format_dense(payload)))
    return 0
