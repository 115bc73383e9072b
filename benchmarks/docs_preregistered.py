"""The confirmatory tests' section of docs/benchmarks.md: one part per pre-registration in
``benchmarks/preregistered/``, from its analysis (``benchmarks/results/preregistered/<name>.json``,
written by ``python -m benchmarks.preregistration analyse``) or, before that, what it tests and
the command that makes its runs.

Per analysed hypothesis the table gives n, the mean paired difference (treatment − control) with
its 95 % t interval, the raw and Holm-adjusted p, the exact Wilcoxon p (a robustness number) and
the decision; then each hypothesis' manipulation check and the secondary endpoints (raw p,
exploratory).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.doc_fragments import block, p_number, sentence
from benchmarks.preregistration_governance import added_commit, governed_results
from benchmarks.preregistration_schema import PREREGISTERED, Preregistration, load, relative_to_root


def interval(low: float, high: float, digits: int = 2) -> str:
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def pending_part(preregistration: Preregistration, commit: str | None) -> list[str]:
    """A pre-registration not analysed yet: what it tests and how its runs are made (not how
    many exist: the page must not change with every run a long protocol commits)."""
    total = len(governed_results(preregistration)) - 1  # its runs, not its analysis output
    protocols = sorted({h.protocol for h in preregistration.hypotheses})
    commands = "`, `".join(preregistration.source.command.format(protocol=p) for p in protocols)
    return block("confirmatory.pending", name=preregistration.name, path=relative_to_root(preregistration.path),
                 commit=commit[:7] if commit else "not committed yet", date=preregistration.date,
                 hypotheses="; ".join(f"{h.id}: {h.arm_treatment} vs {h.arm_control}" for h in preregistration.hypotheses),
                 total=total, command=commands)


def hypothesis_row(hypothesis: dict) -> str:
    low, high = hypothesis["ci95"]
    wilcoxon = hypothesis.get("p_wilcoxon_exact")
    return (f"| {hypothesis['id']}: {hypothesis['arm_treatment']} vs {hypothesis['arm_control']} | {hypothesis['n']} "
            f"| {hypothesis['mean_difference']:+.2f} | {interval(low, high)} | {p_number(hypothesis['p'])} "
            f"| {p_number(hypothesis['p_holm'])} | {'—' if wilcoxon is None else p_number(wilcoxon)} "
            f"| {'**confirmed**' if hypothesis['confirmed'] else 'not confirmed'} |")


def hypotheses_count(count: int) -> str:
    """``the 1 hypothesis`` / ``the 3 hypotheses`` (Holm's correction over them)."""
    return f"the {count} {'hypothesis' if count == 1 else 'hypotheses'}"


def analysed_part(analysis: dict) -> list[str]:
    runs, mde = analysis["runs"], analysis["minimal_detectable_effect"]
    load = runs.get("load_average_1min") or {}
    lines = block("confirmatory.analysed", name=analysis["name"], path=analysis["preregistration"],
                  commit=str(analysis.get("preregistration_commit") or "?")[:7], date=analysis["preregistration_date"],
                  endpoint=analysis["primary_endpoint"], test=analysis["test"], family=hypotheses_count(len(analysis["hypotheses"])),
                  alpha=analysis["alpha"], power=mde["power"], mde=f"{mde['value']:.2f}", mde_n=mde["n"],
                  runs=runs["count"], code=", ".join(f"`{c[:12]}`" for c in runs["commits"]),
                  threads=", ".join(f"{n} torch thread{'s' * (n != '1')}: {count} runs"
                                    for n, count in runs["torch_threads"].items()),
                  load=f"{load.get('min', '?')}-{load.get('max', '?')}", analysed=analysis["analysed"],
                  analysis_commit=str(analysis.get("analysis_commit") or "?")[:7],
                  rule=analysis["decision_rule"])
    lines += ["| hypothesis | n | treatment − control | 95 % interval | p | p (Holm) | exact Wilcoxon p | decision |",
              "|---|---:|---:|---|---:|---:|---:|---|",
              *(hypothesis_row(h) for h in analysis["hypotheses"]), ""]
    gate = " (the gate of its hypothesis)" if analysis.get("manipulation_gate") else ""
    for key, check in analysis["manipulation_checks"].items():
        low, high = check["ci95"]
        lines.append(sentence("confirmatory.check", id=key, arm=check["arm"],
                              difference=check.get("difference", "teacher - student"),
                              mean=f"{check['mean_difference']:+.2f}", interval=interval(low, high),
                              verdict=("above 0" if low > 0 else "below 0" if high < 0 else "includes 0") + gate))
    lines.append("")
    for endpoint in analysis["secondary_endpoints"].values():
        for key, test in endpoint["by_hypothesis"].items():
            low, high = test["ci95"]
            lines.append(sentence("confirmatory.secondary", metric=endpoint["metric"], id=key,
                                  mean=f"{test['mean_difference']:+.2f}", interval=interval(low, high),
                                  p=p_number(test["p"])))
    return lines + [""]


def lambda_choice_part(choice: dict | None) -> list[str]:
    """The default λ per method chosen on the validation split (``benchmarks/lambda_choice.py``)."""
    if choice is None:
        return block("confirmatory.lambda_not_chosen")
    lines = block("confirmatory.lambda", protocol=choice["protocol"], metric=choice["metric"], rule=choice["rule"],
                  date=choice["date"])
    for method, row in choice["methods"].items():
        versus = "; ".join(f"λ = {weight} minus λ = 0: {test['mean_difference']:+.2f} {interval(*test['ci95'])}, "
                           f"p {p_number(test['p'])}" for weight, test in row["minus_lambda_0"].items())
        lines.append(sentence("confirmatory.lambda_method", method=method, chosen=f"{row['chosen']:g}",
                              means=", ".join(f"λ = {w}: {m:.2f}" for w, m in row["mean"].items()), versus=versus))
    return lines + [""]


def preregistered_section(outputs: Path, folder: Path = PREREGISTERED, lambda_choice: dict | None = None) -> list[str]:
    """The section: every pre-registration in ``folder``, analysed (its JSON in ``outputs``) or
    not, then the default λ chosen on the validation split (``lambda_choice``, when made)."""
    lines = block("confirmatory")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        return lines + block("confirmatory.none")
    for path in files:
        preregistration = load(path)
        output = Path(outputs) / f"{preregistration.name}.json"
        if output.is_file():
            lines += analysed_part(json.loads(output.read_text()))
        else:
            lines += pending_part(preregistration, added_commit(path))
    return lines + lambda_choice_part(lambda_choice)

