"""``resmo report RUN [RUN ...]``: HTML report per run, and a comparison across runs."""

from __future__ import annotations

import argparse

from resmo.commands.common import USER_ERRORS, fail


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "report", help="HTML report of one or more runs (curves, gaps, kNN, tables)",
        description="Write <run>/report/index.html for every run (self-contained: PNGs embedded, and "
        "also saved beside it) and, for several runs, a comparison page with overlaid curves and a "
        "final table (mean ± std over the distinct seeds of one configuration; runs that repeat a "
        "seed count once), by default in <first RUN>/report/compare-<time>/. Run 'resmo eval' and "
        "'resmo gap' first to include their results.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    parser.add_argument("--out", metavar="DIR", help="comparison folder (default <first RUN>/report/"
                        "compare-<time>); with one run: where its report goes (default <RUN>/report)")


def kept_on_interrupt(args: argparse.Namespace) -> str:
    return "the report pages may be incomplete; run the command again to write them"


def run(args: argparse.Namespace) -> int:
    from resmo.report import build_report

    try:
        files = build_report(args.runs, out=args.out)
    except USER_ERRORS as error:
        return fail("resmo report", error)
    for page in files.runs:
        print(f"run report written to {page}")
    for note in files.notes:
        print(note)
    if files.comparison is not None:
        print(f"comparison report written to {files.comparison}")
    return 0
