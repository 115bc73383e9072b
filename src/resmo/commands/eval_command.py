"""``resmo eval knn|linear|dense RUN``: probes of the frozen student and/or teacher backbone.

Prints one line per encoder (top-1 / top-5 on the held-out split) and the teacher -
student gap, and saves ``<run>/eval/knn-<data>.json`` or ``linear-<data>.json``; ``dense`` lives in :mod:`resmo.commands.eval_dense`.
"""

from __future__ import annotations

import argparse
from typing import Any

from resmo.commands.common import (
    USER_ERRORS,
    add_data_arguments,
    add_run_argument,
    describe,
    extract_options,
    fail,
    features_kept_on_interrupt,
    load,
    positive_int,
)
from resmo.commands.eval_dense import add_dense_parser, run_dense

#: What a Ctrl+C leaves (resmo.ctrl_c).
kept_on_interrupt = features_kept_on_interrupt


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "eval", help="kNN, linear or dense probe of a run's student and teacher backbones",
        description="Evaluate the frozen backbone(s) of a run folder or checkpoint. Features are "
        "extracted once (eval mode) and cached in <run>/eval/cache/; results go to <run>/eval/*.json.",
    )
    probes = parser.add_subparsers(dest="probe", required=True, parser_class=type(parser))
    knn = probes.add_parser("knn", help="weighted kNN (cosine, T=0.07, k=20 and 200)",
                            description="Weighted kNN on cached features: top-1 / top-5 per encoder and k.")
    knn.add_argument("--k", type=positive_int, nargs="+", default=[20, 200], help="neighbours (default: 20 200)")
    knn.add_argument("--temperature", type=float, default=0.07, help="vote temperature T (default 0.07)")
    linear = probes.add_parser("linear", help="linear probe (on cached features, or --augment)",
                               description="Linear probe on standardised frozen features (L-BFGS), or with "
                               "--augment on features of augmented training images (Adam).")
    linear.add_argument("--steps", type=positive_int, default=200, help="L-BFGS iterations on cached features (default 200)")
    linear.add_argument("--weight-decay", type=float, default=1e-4, help="L2 weight on W (default 1e-4)")
    linear.add_argument("--augment", action="store_true", help="train on augmented images (crop + flip) instead")
    linear.add_argument("--epochs", type=positive_int, default=10, help="epochs with --augment (default 10)")
    linear.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate with --augment (default 1e-3)")
    linear.add_argument("--seed", type=int, default=0, help="seed of augmentations and batch order with --augment")
    for sub in (knn, linear):
        add_run_argument(sub)
        sub.add_argument("--encoder", choices=("student", "teacher", "both"), default="both",
                         help="which backbone to evaluate (default: both)")
        add_data_arguments(sub)
    add_dense_parser(probes)


def format_knn(payload: dict[str, Any]) -> list[str]:
    lines = [f"kNN (T={payload['temperature']}) on {describe(payload)}",
             f"{'encoder':<9}{'k':>5}{'top-1':>9}{'top-5':>9}"]
    for encoder, by_k in payload["results"].items():
        for key, scores in by_k.items():
            lines.append(f"{encoder:<9}{key[1:]:>5}{scores['top1']:>9.2f}{scores['top5']:>9.2f}")
    if payload.get("teacher_minus_student"):
        gaps = ", ".join(f"k={key[1:]} {gap['top1']:+.2f}" for key, gap in payload["teacher_minus_student"].items())
        lines.append(f"teacher - student top-1: {gaps}")
    return lines + [f"saved {payload['path']}"]


def format_linear(payload: dict[str, Any]) -> list[str]:
    mode = "augmented images" if payload["kind"] == "linear_augmented" else "cached features"
    lines = [f"linear probe ({mode}) on {describe(payload)}",
             f"{'encoder':<9}{'top-1':>9}{'top-5':>9}{'train top-1':>13}"]
    for encoder, scores in payload["results"].items():
        lines.append(f"{encoder:<9}{scores['top1']:>9.2f}{scores['top5']:>9.2f}{scores['train_top1']:>13.2f}")
    if payload.get("teacher_minus_student"):
        lines.append(f"teacher - student top-1: {payload['teacher_minus_student']['top1']:+.2f}")
    return lines + [f"saved {payload['path']}"]


def run(args: argparse.Namespace) -> int:
    from resmo.eval.probes import evaluate_knn, evaluate_linear
    from resmo.eval.runs import expand_encoders

    if args.probe == "dense":
        return run_dense(args)
    prog = f"resmo eval {args.probe}"
    try:
        encoders = expand_encoders(args.encoder)
        run_, data = load(args)
        if args.probe == "knn":
            payload = evaluate_knn(run_, data, encoders, ks=args.k, temperature=args.temperature,
                                   **extract_options(args))
            lines = format_knn(payload)
        else:
            payload = evaluate_linear(
                run_, data, encoders, steps=args.steps, weight_decay=args.weight_decay, augment=args.augment,
                epochs=args.epochs, lr=args.lr, seed=args.seed, **extract_options(args))
            lines = format_linear(payload)
    except USER_ERRORS as error:
        return fail(prog, error)
    print("\n".join(lines))
    return 0
