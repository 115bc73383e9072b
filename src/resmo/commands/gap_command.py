"""``resmo gap RUN``: intra gap per level on held-out images, accuracy gap, cosine histogram."""

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
from resmo.report.numbers import cosine_text

#: What a Ctrl+C leaves (resmo.ctrl_c).
kept_on_interrupt = features_kept_on_interrupt


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "gap", help="student-teacher gap diagnostics of a run on held-out images",
        description="Same-view cosine of student and teacher per level (features, projection, output) "
        "on the held-out split, its histogram (PNG) and the kNN accuracy gap teacher - student. "
        "Saves <run>/eval/gap-<data>.json and gap_hist-<data>.png.",
    )
    add_run_argument(parser)
    add_data_arguments(parser)
    parser.add_argument("--k", type=positive_int, default=20, help="kNN neighbours for the accuracy gap (default 20)")
    parser.add_argument("--temperature", type=float, default=0.07, help="kNN temperature (default 0.07)")


def format_gap(payload: dict[str, Any]) -> list[str]:
    lines = [f"gap on {describe(payload)}", f"{'level':<12}{'intra gap':>11}{'mean cos':>10}{'std cos':>9}"]
    for level, gap in payload["intra_gap"].items():
        mean, std = payload["cosine_mean"][level], payload["cosine_std"][level]
        lines.append(f"{level:<12}{cosine_text(gap):>11}{cosine_text(mean):>10}{cosine_text(std):>9}")
    knn = payload["knn"]
    lines.append(f"kNN k={knn['k']} top-1: student {knn['student']['top1']:.2f}, teacher "
                 f"{knn['teacher']['top1']:.2f}, teacher - student {knn['teacher_minus_student']['top1']:+.2f}")
    if payload.get("linear"):
        lines.append(f"linear top-1 teacher - student: {payload['linear']['teacher_minus_student']['top1']:+.2f}")
    if payload.get("histogram_png"):
        lines.append(f"histogram {payload['histogram_png']}")
    return lines + [f"saved {payload['path']}"]


def run(args: argparse.Namespace) -> int:
    from resmo.eval.gap_diagnostics import measure_gap
    from resmo.report.histogram import plot_cosine_histograms

    try:
        run_, data = load(args)
        payload = measure_gap(run_, data, k=args.k, temperature=args.temperature,
                              plot=plot_cosine_histograms, **extract_options(args))
    except USER_ERRORS as error:
        return fail("resmo gap", error)
    print("\n".join(format_gap(payload)))
    return 0
