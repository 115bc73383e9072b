"""Shared command-line pieces: the run argument, evaluation options, one-line errors."""

from __future__ import annotations

import argparse
import sys
from typing import Any

#: What bad input raises below the CLI (``ConfigError`` and ``DataError`` are ValueErrors).
USER_ERRORS = (ValueError, OSError)


def fail(prog: str, error: BaseException) -> int:
    """Print ``<prog>: error: <first line>`` on stderr and return exit code 2."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    print(f"{prog}: error: {lines[0]}", file=sys.stderr)
    return 2


def _int_at_least(value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {value!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer >= {minimum}")
    return number


def positive_int(value: str) -> int:
    return _int_at_least(value, 1)


def non_negative_int(value: str) -> int:
    return _int_at_least(value, 0)


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder (config.yaml + checkpoints/last.ckpt) or a .ckpt file")
    parser.add_argument("--config", metavar="FILE.yaml",
                        help="the run's recipe, for a checkpoint without config.yaml next to or above it")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, feature-extraction and cache options shared by eval and gap."""
    parser.add_argument("--data", metavar="NAME|PATH", help="labelled data to evaluate on (default: the run's data)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="images per forward pass (default 256)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--num-workers", type=non_negative_int, default=0,
                        help="data-loading processes (default 0; at most the machine's CPU cores)")
    parser.add_argument("--max-train", type=positive_int, metavar="N", help="use a fixed random subset of N training images")
    parser.add_argument("--max-val", type=positive_int, metavar="N", help="use a fixed random subset of N validation images")
    parser.add_argument("--no-cache", action="store_true", help="recompute features instead of using eval/cache/")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="evaluate on the data's test split (default) or on the training images "
                        "the run held out (val: runs trained with data.val_fraction)")


def extract_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"batch_size": args.batch_size, "device": args.device, "num_workers": args.num_workers,
            "use_cache": not args.no_cache}


def load(args: argparse.Namespace):
    """The run and its evaluation data from ``args`` (raises ``ValueError``).

    Also lowers ``args.num_workers`` to the machine's CPU cores, printing a ``# note:`` line
    (stdout, before any feature is extracted) when it does."""
    from resmo.data.workers import capped_workers
    from resmo.eval.features import build_eval_data, resolve_device
    from resmo.eval.runs import load_run

    resolve_device(args.device)  # fail on a bad device before any work
    run = load_run(args.run, config=args.config)
    data = build_eval_data(run, args.data, max_train=args.max_train, max_val=args.max_val, split=args.split)
    args.num_workers, note = capped_workers(args.num_workers, name="--num-workers")
    if note:
        print(f"# note: {note}", flush=True)
    return run, data


def features_kept_on_interrupt(args: argparse.Namespace) -> str:
    """What an interrupted ``resmo eval`` / ``resmo gap`` leaves (resmo.ctrl_c): the features
    of each finished encoder and split stay cached and are reused."""
    if args.no_cache:
        return "no result written; run the command again"
    return ("no result written; the features already extracted stay in the run's eval/cache/: "
            "run the command again to continue")


def describe(payload: dict[str, Any]) -> str:
    return (f"{payload['data']} ({payload['num_train']} train / {payload['num_val']} val images, "
            f"{payload['num_classes']} classes), checkpoint {payload['checkpoint']} (step {payload['global_step']})")
