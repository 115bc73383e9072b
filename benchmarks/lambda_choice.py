"""The default λ per method, chosen on the held-out validation split of the confirmatory runs.

    python -m benchmarks.lambda_choice            # once every run of the protocol is saved

The confirmatory protocol (``benchmarks/protocol.py``: ``confirm``) holds 10% of CIFAR-10's
training images out (class-balanced, ``data.val_fraction``) and runs resmo's kNN monitor on
them at the end of every run (student, k = 20, ``record["monitor"]``): the split on which a
choice may be made, unlike the test split its pre-registered hypotheses are read on.

The rule, fixed before its numbers were complete: for each method, among the λ values the
protocol runs it with (0 included), the default is the one with the highest mean student kNN
top-1 on the validation split over the protocol's seeds (a tie goes to the smaller λ). A choice
is not a claim: the paired differences against λ = 0 (mean, 95 % t interval, p) are reported
beside it so that a reader sees how close it was, and the README words each default as chosen
this way, not as shown better. Methods the protocol does not run keep the paper's λ = 1.

Writes ``benchmarks/results/quality/<protocol>/lambda_choice.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from benchmarks.paired_statistics import paired_test
from benchmarks.protocol import PROTOCOLS, Protocol, cached_result, run_key
from benchmarks.results_io import save_json

RESULTS = Path(__file__).resolve().parent / "results" / "quality"


def validation_values(protocol: Protocol, results: Path) -> tuple[dict[str, dict[float, list[float]]], list[str]]:
    """``{method: {λ: [student kNN on the validation split, per seed]}}`` of the protocol's
    resmo arms, and the run keys that are missing (or made with other settings)."""
    values: dict[str, dict[float, list[float]]] = {}
    missing = []
    for arm in protocol.arms:
        if arm.impl != "resmo":
            continue
        for seed in arm.seeds:
            key = run_key(arm, seed)
            record = cached_result(protocol, key, results)
            if record is None:
                missing.append(key)
                continue
            values.setdefault(arm.method, {}).setdefault(arm.weight, []).append(float(record["monitor"]["student"]))
    return values, missing


def choose(by_weight: dict[float, list[float]]) -> dict:
    """The rule of the module doc for one method: the λ with the highest mean (ties: the
    smaller), with each λ's mean and its paired difference against λ = 0."""
    means = {weight: statistics.fmean(values) for weight, values in by_weight.items()}
    chosen = min(means, key=lambda weight: (-means[weight], weight))
    against_zero = {}
    if 0.0 in by_weight:
        for weight, values in sorted(by_weight.items()):
            if weight != 0.0:
                test = paired_test(values, by_weight[0.0])
                against_zero[f"{weight:g}"] = {key: test[key] for key in ("n", "mean_difference", "ci95", "p")}
    return {"chosen": chosen, "mean": {f"{w:g}": m for w, m in sorted(means.items())},
            "per_seed": {f"{w:g}": v for w, v in sorted(by_weight.items())}, "minus_lambda_0": against_zero}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lambda_choice", description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="confirm", choices=[name for name, p in PROTOCOLS.items()
                                                                  if p.budget.val_fraction is not None])
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    protocol = PROTOCOLS[args.protocol]
    values, missing = validation_values(protocol, args.results_dir)
    if missing:
        print(f"lambda_choice: {len(missing)} runs of protocol {protocol.name} are not saved yet ({', '.join(missing[:4])}"
              f"{', ...' if len(missing) > 4 else ''}); the choice reads all of them: "
              f"python -m benchmarks.quality_cifar10 --protocol {protocol.name}", file=sys.stderr)
        return 2
    result = {"protocol": protocol.name, "date": time.strftime("%Y-%m-%d"),
              "metric": "student kNN top-1 (k = 20) on the held-out validation split (record['monitor'])",
              "rule": "highest mean over the seeds among the λ the protocol runs (0 included); ties: the smaller",
              "methods": {method: choose(by_weight) for method, by_weight in sorted(values.items())}}
    out = args.results_dir / protocol.name / "lambda_choice.json"
    save_json(out, result)
    for method, choice in result["methods"].items():
        print(f"{method}: λ = {choice['chosen']:g} (validation means: "
              + ", ".join(f"λ={w}: {m:.2f}" for w, m in choice["mean"].items()) + ")")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
