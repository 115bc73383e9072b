"""Pre-registered confirmatory tests of ResMo's effect: check, analyse, size.

    python -m benchmarks.preregistration check [FILE ...]   # validate + governance rules (default: every
                                                            # benchmarks/preregistered/*.yaml)
    python -m benchmarks.preregistration analyse benchmarks/preregistered/<name>.yaml
    python -m benchmarks.preregistration power              # MDE from the committed short-protocol pairs
    python -m benchmarks.preregistration power --benchmark dense --protocol pilot --family 2

The YAML schema, with an example, is in ``preregistration_schema.py``; the governance rules (a
pre-registration predates its results in git; its seeds are fresh) in
``preregistration_governance.py``; the analysis (paired t over seeds, 95 % interval, Holm's
correction, decision rule, exact Wilcoxon, exploratory secondary endpoints) in
``preregistration_analysis.py``, written to ``benchmarks/results/preregistered/<name>.json``;
the power analysis in ``preregistration_power.py``, written to
``benchmarks/results/preregistered/power_<protocol>.json``. ``analyse`` refuses a
pre-registration that breaks a governance rule. A bad file, missing runs or runs that break
the pre-registration's ``code`` rules stop with one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.preregistration_schema import OUTPUT, PREREGISTERED, PreregistrationError, load
from benchmarks.preregistration_sources import SOURCES
from benchmarks.results_io import save_json

PROG = "python -m benchmarks.preregistration"


def check(files: list[Path]) -> int:
    problems = []
    from benchmarks.preregistration_governance import violations

    for path in files:
        problems += violations(load(path))
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{len(files)} pre-registrations checked, {len(problems)} violations")
    return 1 if problems else 0


def analyse(path: Path, out: Path | None) -> int:
    from benchmarks.preregistration_analysis import analyse as analysis
    from benchmarks.preregistration_governance import violations

    preregistration = load(path)
    problems = violations(preregistration)
    if problems:
        raise PreregistrationError(f"{path}: breaks {len(problems)} governance rules, first: {problems[0]}")
    result = analysis(preregistration)
    out = out or preregistration.output_file()
    save_json(out, result)
    for h in result["hypotheses"]:
        low, high = h["ci95"]
        print(f"{h['id']}: n={h['n']} mean difference {h['mean_difference']:+.3f} [{low:+.3f}, {high:+.3f}] "
              f"p={h['p']:.4f} p_holm={h['p_holm']:.4f} -> {'confirmed' if h['confirmed'] else 'not confirmed'}")
        check = result["manipulation_checks"][h["id"]]
        low, high = check["ci95"]
        print(f"  manipulation check, {check['arm']}: {check['difference']} {check['mean_difference']:+.3f} "
              f"[{low:+.3f}, {high:+.3f}]" + (" (the gate)" if result["manipulation_gate"] else ""))
    print(f"written: {out}")
    return 0


def power(args) -> int:
    from benchmarks.preregistration_power import power_report, table

    if args.protocol not in SOURCES[args.benchmark].protocols():
        raise PreregistrationError(f"--protocol {args.protocol}: the {args.benchmark} benchmark has the protocols "
                                   f"{', '.join(sorted(SOURCES[args.benchmark].protocols()))}")
    report = power_report(args.protocol, ns=tuple(args.n), alpha=args.alpha, family=args.family,
                          power=args.power, rev=args.rev, benchmark=args.benchmark)
    print(table(report))
    prefix = "power" if args.benchmark == "quality" else f"power_{args.benchmark}"
    out = args.out or OUTPUT / f"{prefix}_{args.protocol}.json"
    save_json(out, report)
    print(f"written: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser("check", help="validate pre-registrations and apply the governance rules")
    checking.add_argument("files", nargs="*", type=Path)
    analysing = commands.add_parser("analyse", help="the confirmatory analysis of one pre-registration")
    analysing.add_argument("file", type=Path)
    analysing.add_argument("--out", type=Path, help="default benchmarks/results/preregistered/<name>.json")
    sizing = commands.add_parser("power", help="minimal detectable effects from the committed pairs")
    sizing.add_argument("--benchmark", default="quality", choices=sorted(SOURCES))
    sizing.add_argument("--protocol", default="full", help="a protocol of the benchmark (default full)")
    sizing.add_argument("--n", type=int, nargs="+", default=[8, 10, 12], help="paired seeds (default 8 10 12)")
    sizing.add_argument("--alpha", type=float, default=0.05, help="family-wise level (default 0.05)")
    sizing.add_argument("--family", type=int, default=3, help="hypotheses in the family (default 3)")
    sizing.add_argument("--power", type=float, default=0.8)
    sizing.add_argument("--rev", default="HEAD", help="the git revision whose committed runs are read")
    sizing.add_argument("--out", type=Path, help="default benchmarks/results/preregistered/power[_dense]_<protocol>.json")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            return check(args.files or sorted(PREREGISTERED.glob("*.yaml")))
        if args.command == "analyse":
            return analyse(args.file, args.out)
        return power(args)
    except PreregistrationError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
