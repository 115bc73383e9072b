"""``resmo transfer detect RUN --data VOC_ROOT``: fine-tune Faster R-CNN (R-C4 or FPN) on a run's backbone.

Prints a line per logged iteration and per seed, then the mean ± std over seeds, and saves
``<run>/transfer/detect-<init>-<data>.json``. Exit codes: 0 done, 2 bad input (or the
``detect`` extra missing), 1 the loss became non-finite.
"""

from __future__ import annotations

import argparse

from resmo.commands.common import (
    USER_ERRORS,
    add_run_argument,
    fail,
    non_negative_int,
    positive_int,
)


def seed_list(value: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seeds: {value!r} (integers separated by commas, e.g. 0,1,2)") from None
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"invalid seeds: {value!r} repeats a seed")
    return seeds


def image_size(value: str) -> tuple[int, int]:
    """``MIN`` or ``MIN,MAX`` -> (min_size, max_size); ``MAX`` defaults to MIN x 1333 / 800."""
    parts = value.split(",")
    try:
        sizes = [int(part) for part in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"invalid image size: {value!r} (MIN or MIN,MAX in pixels, e.g. 800,1333)")
    if len(sizes) == 1:
        sizes.append(max(sizes[0], round(sizes[0] * 1333 / 800)))
    if sizes[1] < sizes[0]:
        raise argparse.ArgumentTypeError(f"invalid image size: {value!r} (MAX is below MIN)")
    return sizes[0], sizes[1]


def size_list(value: str) -> tuple[int, ...]:
    """``480,512,...`` -> shorter sides in pixels for multi-scale training."""
    try:
        sizes = tuple(int(part) for part in value.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"invalid sizes: {value!r} (shorter sides in pixels separated by commas, "
                                         "e.g. 480,512,544,576,608,640,672,704,736,768,800)")
    return sizes


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {value!r}") from None
    if not 0 < number < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number > 0")
    return number


def add_parser(commands) -> None:
    from resmo.transfer.settings import BASE_BATCH, BASE_LR, DEFAULT_EPOCHS, TrainingRequest

    defaults = TrainingRequest()
    parser = commands.add_parser(
        "transfer", help="transfer a run's backbone to a downstream task (detect: Faster R-CNN on VOC)",
        description="Fine-tune on a downstream task with a run's exported backbone; results go to <run>/transfer/.",
    )
    tasks = parser.add_subparsers(dest="task", required=True, parser_class=type(parser))
    detect = tasks.add_parser(
        "detect", help="Faster R-CNN (R-C4 or FPN) on a Pascal VOC folder: AP, AP50, AP75",
        description="Fine-tune Faster R-CNN (--head c4: MoCo's R-C4; fpn: torchvision's FPN) on the run's ResNet-18/50 backbone "
        "(ImageNet stem) on a Pascal VOC folder (Annotations/*.xml, JPEGImages/, ImageSets/Main/<split>.txt) "
        "and report COCO-style AP, AP50 and AP75 (torchmetrics; pip install 'resmo[detect]') and VOC07's "
        "11-point VOC07_AP, VOC07_AP50, VOC07_AP75. Class names: "
        "--classes, else <data>/classes.txt (one per line), else the 20 VOC classes. Saves "
        "<run>/transfer/detect-<init>-<data>.json with the settings, each seed and mean ± std.",
    )
    add_run_argument(detect)
    detect.add_argument("--data", metavar="VOC_ROOT", required=True, help="a Pascal VOC-layout folder")
    detect.add_argument("--encoder", "--branch", dest="encoder", choices=("student", "teacher"), default="student",
                        help="which backbone of the run (default: student, the query encoder that MoCo's "
                        "and DenseCL's detection converters take; teacher: the EMA encoder, as DINO evaluates)")
    detect.add_argument("--random-init", action="store_true",
                        help="the baseline: a randomly initialised backbone of the same architecture, same budget")
    detect.add_argument("--seeds", type=seed_list, default=(0,), metavar="0,1,2",
                        help="seeds to fine-tune with; the JSON has each and mean ± std (default: 0)")
    detect.add_argument("--train-split", default="train", help="ImageSets/Main/<split>.txt to train on (default: train)")
    detect.add_argument("--eval-split", help="split to evaluate on (default: test if the folder has it, else val)")
    detect.add_argument("--classes", metavar="a,b,c", help="class names (default: <data>/classes.txt, else VOC's 20)")
    budget = detect.add_mutually_exclusive_group()
    budget.add_argument("--iterations", type=positive_int, help=f"SGD iterations (default: {DEFAULT_EPOCHS} epochs' worth)")
    budget.add_argument("--epochs", type=positive_float, help=f"passes over the training split (default {DEFAULT_EPOCHS})")
    detect.add_argument("--batch-size", type=positive_int, default=defaults.batch_size,
                        help=f"images per iteration (default {defaults.batch_size})")
    detect.add_argument("--lr", type=positive_float, help=f"base learning rate (default {BASE_LR:g} x batch size / {BASE_BATCH})")
    detect.add_argument("--image-size", type=image_size, default=(defaults.min_size, defaults.max_size),
                        metavar="MIN[,MAX]", help="the detector's resize: shorter side MIN, longer side at most MAX "
                        f"(default {defaults.min_size},{defaults.max_size}; MAX defaults to MIN x 1333 / 800)")
    detect.add_argument("--train-sizes", type=size_list, metavar="S1,S2,...",
                        help="multi-scale training: the shorter side of each training image drawn from these "
                        "(MoCo's VOC protocol: 480,512,...,800); testing keeps --image-size (default: one scale)")
    detect.add_argument("--rois-per-image", type=positive_int, default=defaults.rois_per_image, metavar="N",
                        help=f"proposals per training image for the box head (default {defaults.rois_per_image}, "
                        "as detectron2; fewer for small images with few objects: the box head's cost grows with N)")
    detect.add_argument("--proposals", type=positive_int, metavar="N",
                        help="region proposals kept after the RPN's NMS, training and evaluation "
                        "(default: torchvision's 2000 / 1000)")
    detect.add_argument("--norm", choices=("batch", "frozen"), default=defaults.norm,
                        help="batch (default): BatchNorm fine-tuned, all stages trained (MoCo's transfer); "
                        "frozen: FrozenBatchNorm, stem and layer1 frozen (torchvision's default)")
    detect.add_argument("--head", choices=("c4", "fpn"), default=defaults.head,
                        help="c4 (default): MoCo's R-C4 detector (RPN and 14x14 RoIAlign on res4, res5 as the box "
                        "head); fpn: torchvision's Faster R-CNN with a feature pyramid over every stage")
    detect.add_argument("--device", default=defaults.device, help="auto (default: cuda if available, else cpu), cpu, cuda or cuda:N")
    detect.add_argument("--workers", type=non_negative_int, default=defaults.workers,
                        help=f"data-loading processes (default {defaults.workers}; at most the machine's CPU cores)")
    detect.add_argument("--out", metavar="FILE.json", help="result file (default <run>/transfer/detect-<init>-<data>.json)")


def kept_on_interrupt(args: argparse.Namespace) -> str:
    return "no result file written; run the command again to start over"


def run(args: argparse.Namespace) -> int:
    import sys

    from resmo.transfer.detect import DetectJob, transfer_detect
    from resmo.transfer.metrics import MissingPackage
    from resmo.transfer.results import format_scores
    from resmo.transfer.settings import TrainingRequest
    from resmo.transfer.train_detect import NonFiniteLoss

    prog = "resmo transfer detect"
    training = TrainingRequest(
        iterations=args.iterations, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        min_size=args.image_size[0], max_size=args.image_size[1], train_sizes=args.train_sizes,
        rois_per_image=args.rois_per_image, proposals=args.proposals, norm=args.norm, head=args.head, workers=args.workers,
        device=args.device)
    job = DetectJob(
        run=args.run, data=args.data, encoder=args.encoder, random_init=args.random_init, seeds=args.seeds,
        train_split=args.train_split, eval_split=args.eval_split, classes=args.classes, training=training,
        out=args.out, config=args.config)
    try:
        payload = transfer_detect(job, log=lambda line: print(line, flush=True))
    except NonFiniteLoss as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    except (*USER_ERRORS, MissingPackage) as error:
        return fail(prog, error)
    count = len(payload["seeds"])
    print(f"{payload['init']} {payload['backbone']}, mean over {count} seed{'s' * (count > 1)}: "
          f"{format_scores(payload['mean'], payload['std'])} ({payload['eval_split']})")
    print(f"saved {payload['path']}")
    return 0
