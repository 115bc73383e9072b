"""The ``resmo`` command.

    resmo pretrain [--config RECIPE|FILE.yaml] [flags] [key.sub=value ...]
    resmo recipes [NAME]
    resmo eval knn|linear RUN [--encoder student|teacher|both] [--data NAME|PATH]
    resmo gap RUN [--data NAME|PATH]
    resmo report RUN [RUN ...] [--out DIR]
    resmo export RUN --encoder student|teacher [--out FILE.pt]
    resmo transfer detect RUN --data VOC_ROOT [--encoder teacher|student] [--random-init]

Flags are shortcuts for recipe keys; ``key.sub=value`` overrides any key (the value is
read as YAML). Bad input ends with one line on stderr and exit code 2.

``resmo pretrain`` exit codes: 0 done; 2 bad input (flags, recipe, data, an unreadable
image with ``data.on_bad_image=error``); 1 stopped on non-finite loss or gradients;
128 + signal (130 SIGINT, 143 SIGTERM) interrupted. Early stops save a checkpoint first
and print, on one line, how to continue (``--resume auto``).

Ctrl+C at any moment of any command ends with exit code 130 and one line: this module
imports nothing heavy (torch, Lightning and the rest load inside the commands), and
:func:`main` holds a SIGINT handler that prints that line and exits (resmo.ctrl_c) from
before the first heavy import on, for the ``resmo`` script and ``python -m resmo.cli``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from resmo import __version__, ctrl_c
from resmo.commands import (
    eval_command,
    export_command,
    gap_command,
    recipes_command,
    report_command,
    transfer_command,
)
from resmo.commands.parser import OneLineParser, chosen_parser, deferred_help
from resmo.validation import one_line

#: Subcommands defined in resmo.commands: name -> module with add_parser() and run().
COMMANDS = {"eval": eval_command, "gap": gap_command, "report": report_command, "export": export_command,
            "transfer": transfer_command, "recipes": recipes_command}

# flag -> recipe key
FLAG_KEYS = {
    "method": "method",
    "backbone": "backbone",
    "data": "data.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "resmo_weight": "resmo.weight",
    "seed": "seed",
    "out": "out",
    "devices": "train.devices",
    "num_nodes": "train.num_nodes",
    "precision": "train.precision",
}


def _error_text(error: BaseException) -> str:
    """The one-line message of ``error``; an error re-raised from a DataLoader worker
    carries the worker's traceback, whose last line is the original message."""
    text = str(error)
    if "Original Traceback" in text:
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return one_line(text)


def _method_help() -> str:
    from resmo.methods import method_names

    return f"{_names(method_names())} (recipe key: method)"


def _backbone_help() -> str:
    from resmo.backbones import backbone_names

    return f"{_names(backbone_names())} (key: backbone)"


def _precision_help() -> str:
    from resmo.config.schema import PRECISIONS

    return f"{_names(PRECISIONS)} (key: train.precision)"


def _names(names: Sequence[str]) -> str:
    """``"a, b or c"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _devices(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid devices value: {value!r} (an integer or 'auto')") from None


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="resmo", description="Momentum self-supervised pretraining with residual momentum (ResMo).")
    parser.add_argument("--version", action="version", version=f"resmo {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    pretrain = commands.add_parser(
        "pretrain", help="pretrain an encoder (no arguments: the offline quickstart)",
        description="Pretrain an encoder. With no arguments: MoCo v3 + ResMo with a small ResNet on "
        "the built-in generated dataset, under a minute on two CPU cores. Writes a run folder with "
        "config.yaml, metrics.csv, checkpoints/, exported backbones and summary.json.",
        epilog="Any recipe key can be overridden as key.sub=value, e.g. optimizer.lr=0.05 "
        "resmo.level=projection method_options.mocov3.hidden_dim=1024.",
    )
    pretrain.add_argument("--config", metavar="RECIPE|FILE.yaml", help="a shipped recipe such as cifar10/mocov3 (list: resmo recipes) or a recipe file; a file that exists wins; flags and overrides win over it")
    deferred_help(pretrain.add_argument("--method"), _method_help)
    deferred_help(pretrain.add_argument("--backbone"), _backbone_help)
    pretrain.add_argument("--data", metavar="NAME|PATH", help="synthetic (default, offline), cifar10, cifar100, stl10, or an image folder (key: data.name)")
    pretrain.add_argument("--epochs", type=int, help="training epochs (key: train.epochs)")
    pretrain.add_argument("--batch-size", type=int, help="images per process per step (key: train.batch_size)")
    pretrain.add_argument("--resmo-weight", type=float, metavar="LAMBDA", help="ResMo weight; 0 trains the plain method (key: resmo.weight; default: the method's, resmo.losses.default_weight)")
    pretrain.add_argument("--seed", type=int, help="random seed (key: seed)")
    pretrain.add_argument("--out", metavar="DIR", help="run folder (default: runs/<method>-<data>-<time>) (key: out)")
    pretrain.add_argument("--devices", type=_devices, help="devices per node: an integer or 'auto'; >1 trains with DDP (key: train.devices)")
    pretrain.add_argument("--num-nodes", type=int, help="number of nodes for multi-node DDP (key: train.num_nodes)")
    deferred_help(pretrain.add_argument("--precision"), _precision_help)
    pretrain.add_argument("--resume", metavar="CKPT|auto", help="continue from a checkpoint; 'auto' takes the newest loadable checkpoint in <out>/checkpoints/, or starts from scratch when there is none; settings that differ from <out>/config.yaml are refused, except train.epochs and how the run trains (devices, nodes, workers, logging: docs/reliability.md)")
    pretrain.add_argument("--verbose", action="store_true", help="also show third-party messages (Lightning's banners, tips and warnings, deprecation warnings), hidden by default")
    pretrain.add_argument("overrides", nargs="*", metavar="key.sub=value", help="override any recipe key")
    for module in COMMANDS.values():
        module.add_parser(commands)
    return parser


def _flag_settings(args: argparse.Namespace) -> dict[str, tuple[object, str]]:
    """The flags given, as ``{recipe key: (value, "--flag")}`` for ``load_config(settings=)``."""
    return {key: (getattr(args, flag), f"--{flag.replace('_', '-')}")
            for flag, key in FLAG_KEYS.items() if getattr(args, flag) is not None}


def run_pretrain_command(args: argparse.Namespace, argv: Sequence[str] = (),
                         on_ctrl_c: ctrl_c.ExitAtOnce | None = None) -> int:
    """``resmo pretrain``; ``on_ctrl_c`` (held by :func:`main`) learns what a Ctrl+C
    outside StopSignals keeps once the run is set up."""
    from resmo.config import load_config
    from resmo.config.loader import dump_chosen_config
    from resmo.console import quiet_third_party
    from resmo.data.errors import DataError
    from resmo.train.interrupt import StopSignals
    from resmo.train.pretrain import execute_run, prepare_run
    from resmo.train.stopping import RunStopped

    quiet_third_party(verbose=args.verbose)
    try:
        with StopSignals().at_once("during set-up (reading the recipe, building the data and the model)"):
            config = load_config(args.config, list(args.overrides), settings=_flag_settings(args))
            run = prepare_run(config, resume=args.resume)
    except RunStopped as stop:
        print(f"resmo pretrain: {one_line(stop.message)}", file=sys.stderr)
        return stop.exit_code
    except (ValueError, OSError) as error:
        print(f"resmo pretrain: error: {one_line(error)}", file=sys.stderr)
        return 2
    except (TypeError, OverflowError) as error:  # a free-form option of the wrong type
        print(f"resmo pretrain: error: a setting has an unusable value "
              f"({type(error).__name__}: {one_line(error)})", file=sys.stderr)
        return 2
    if on_ctrl_c is not None:
        on_ctrl_c.line = lambda: _interrupted_run_line(run, argv)
    try:
        if run.fabric.is_global_zero:
            print(f"# the resolved recipe, options of {config.method} and {config.backbone} only "
                  f"(all of it: {run.out / 'config.yaml'})")
            print(dump_chosen_config(run.config), end="")  # the plan: every automatic choice made
            for note in [*run.splits.notes, *run.notes]:
                print(f"# note: {one_line(note)}")
            print(f"# run folder: {run.out}")
        summary = execute_run(run)
        if run.fabric.is_global_zero:
            lines = [_summary_line(summary, run.out), _gap_line(summary), _learnt_line(summary),
                     _next_line(run.out, config)]
            print("\n".join(line for line in lines if line))
    except KeyboardInterrupt:  # outside StopSignals, or Ctrl+C twice
        return _interrupted_run(run, argv)
    except RunStopped as stop:
        if run.fabric.is_global_zero:
            print(f"resmo pretrain: {one_line(stop.message)}; continue with: "
                  f"{resume_command(argv, run.out)}", file=sys.stderr)
        return stop.exit_code
    except DataError as error:  # data.on_bad_image=error met an unreadable file
        if run.fabric.is_global_zero:
            print(f"resmo pretrain: error: {_error_text(error)}", file=sys.stderr)
        return 2
    return 0


def _interrupted_run(run, argv: Sequence[str]) -> int:
    """A ``KeyboardInterrupt`` out of the run (a second Ctrl+C while training): one line."""
    if not run.fabric.is_global_zero:
        return ctrl_c.EXIT_CODE
    print(_interrupted_run_line(run, argv), file=sys.stderr, flush=True)
    return ctrl_c.EXIT_CODE


def _interrupted_run_line(run, argv: Sequence[str]) -> str:
    """Ctrl+C that ``StopSignals`` does not turn into a saved stop: before the loop takes
    over, a second Ctrl+C while training (stops at once), or while the backbones and the
    summary are written after training. What is kept is the loop's last checkpoint."""
    loop, settings = run.loop, run.loop.settings
    if loop.step >= settings.schedule.total_steps:
        where = "after training, while saving the backbones and the summary"
    elif loop.step == 0:
        where = "before training started"
    else:
        where = f"at step {loop.step} of {settings.schedule.total_steps}"
    kept = (f"checkpoint: {settings.checkpoint}" if settings.checkpoint.is_file()
            else "no checkpoint yet: a new run starts from scratch")
    return ctrl_c.interrupted_line("resmo pretrain", f"{kept}; continue with: {resume_command(argv, run.out)}",
                                   where)


def resume_command(argv: Sequence[str], out) -> str:
    """The ``resmo pretrain`` command line ``argv`` with ``--out OUT --resume auto``."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token in ("--resume", "--out"):
            skip = True
            continue
        if token.startswith(("--resume=", "--out=", "out=")):
            continue
        kept.append(token)
    return shlex.join(["resmo", *kept, "--out", str(out), "--resume", "auto"])


def _summary_line(summary: dict, out) -> str:
    def pct(value):
        return "n/a" if value is None else f"{value:.1f}%"

    return (
        f"done in {summary['wall_seconds']:.0f} s: kNN top-1 student {pct(summary['knn_top1_student'])}, "
        f"teacher {pct(summary['knn_top1_teacher'])}, random init {pct(summary['knn_top1_random_init'])}; "
        f"summary: {out}/summary.json"
    )


def _gap_line(summary: dict) -> str | None:
    """What the run's intra gap is, and what ResMo does to it."""
    gaps = summary.get("intra_gap") or {}
    if "output" not in gaps:
        return None
    weight = summary.get("resmo_weight") or 0.0
    with_resmo = (f"ResMo (weight {weight:g}) trains it down; the plain method is --resmo-weight 0"
                  if weight > 0 else "the plain method (no ResMo) leaves it open")
    return (
        f"intra gap (1 - cos of student and teacher on the same view, 0 = equal): "
        f"{gaps['output']:.3f} at the output, last epoch; {with_resmo}"
    )


def _learnt_line(summary: dict) -> str | None:
    """The student's kNN top-1 against the random-init encoder's, as the done line prints
    them (one decimal): how far above, or that it is not above; ``None`` when either is
    n/a (no labelled split)."""
    student, random_init = summary.get("knn_top1_student"), summary.get("knn_top1_random_init")
    if student is None or random_init is None:
        return None
    points = round(round(student, 1) - round(random_init, 1), 1)
    if points > 0:
        return f"student {points:.1f} points above random init in kNN top-1: what pretraining learnt"
    relation = "level with" if points == 0 else "below"
    return (f"student {relation} random init in kNN top-1 ({student:.1f}% vs {random_init:.1f}%): "
            f"nothing learnt that the kNN sees, at this budget")


def _next_line(out, config) -> str:
    """What to run next: evaluate and report the run; after a run on the generated data, a
    recipe on real data (the same method's CIFAR-10 recipe where there is one)."""
    from resmo.recipes import find_recipe

    run = shlex.quote(str(out))
    steps = [f"resmo eval knn {run}", f"resmo report {run}"]
    if str(config.data.name) == "synthetic":
        recipe = find_recipe(f"cifar10/{config.method}") or "cifar10/mocov3"
        steps.append(f"on real data, a recipe: resmo pretrain --config {recipe}")
    return f"next: {'; '.join(steps)}. ResMo against the plain method, measured: docs/benchmarks.md"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv``; returns the exit code. Ctrl+C that no command handles
    (importing torch, evaluating, exporting) ends the process with one line and 130
    (resmo.ctrl_c.ExitAtOnce); a ``KeyboardInterrupt`` that reaches here is one line too."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog, where, kept = "resmo", "while starting", "nothing done"
    with ctrl_c.ExitAtOnce(lambda: ctrl_c.interrupted_line(prog, kept, where)) as on_ctrl_c:
        try:
            parser = build_parser()
            args = parser.parse_args(argv)
            prog, where, kept = _interrupt_text(parser, args)  # read by the lambda above
            if args.command == "pretrain":
                return run_pretrain_command(args, argv, on_ctrl_c)
            if args.command in COMMANDS:
                return COMMANDS[args.command].run(args)
            return 2
        except KeyboardInterrupt:
            return ctrl_c.interrupted(prog, kept, where)


def _interrupt_text(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, str, str]:
    """The command's name, where a Ctrl+C lands and what it leaves, before the command
    starts its own handling (``resmo pretrain``: from its set-up on)."""
    prog = chosen_parser(parser, args).prog
    if args.command == "pretrain":
        return prog, "while starting", "nothing written yet: the same command starts from scratch"
    kept_on_interrupt = getattr(COMMANDS.get(args.command), "kept_on_interrupt", None)
    return prog, "", kept_on_interrupt(args) if kept_on_interrupt else "nothing written; run the command again"


if __name__ == "__main__":
    sys.exit(main())
