"""The confirmatory analysis of a pre-registration (``preregistration_schema.py``).

Runs are found where their benchmark saves them (``preregistration_sources.py``):
``<results>/<protocol>/runs/<arm>-s<seed>.json``, one per arm of a hypothesis and
pre-registered seed, each made with the protocol's current settings (a run made with other
settings is refused).
Every run must be there: the analysis is made once, on all pre-registered seeds, never on
part of them.

The runs must share what the pre-registration's ``code`` asks (one commit, one torch thread
count, no uncommitted changes); the output records the commits, thread counts, machines and
load of the runs it read. Per hypothesis, treatment and control are paired by seed and
tested (``paired_statistics.paired_test``: mean difference, 95 % t interval, paired t p,
exact Wilcoxon p); Holm's correction runs over the family of hypotheses (``p_holm``), and
:func:`confirmed` applies the decision rule. Each hypothesis' manipulation check (its control
arm's primary endpoint, the source's ``ahead`` reading minus its ``behind`` one, paired by seed)
is reported; with ``manipulation_gate`` a hypothesis whose check's interval is not above 0 is
not confirmed, whatever its p. Secondary endpoints get the same paired test,
raw p only, marked exploratory.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

from benchmarks.paired_statistics import holm, paired_test
from benchmarks.preregistration_governance import added_commit
from benchmarks.preregistration_schema import (
    Hypothesis,
    Metric,
    Preregistration,
    PreregistrationError,
    relative_to_root,
)
from benchmarks.provenance import git


def load_runs(preregistration: Preregistration) -> dict[Path, dict]:
    """Every run record the pre-registration reads, by file; refuses (one line) missing runs and
    runs made with settings other than the protocol's current ones."""
    import json

    records, missing, stale = {}, [], []
    for hypothesis in preregistration.hypotheses:
        protocol = hypothesis.protocol
        for (arm, seed), path in preregistration.run_files(hypothesis).items():
            if path in records:
                continue
            if not path.is_file():
                missing.append(f"{protocol}/{arm}-s{seed}")
                continue
            record = json.loads(path.read_text())
            if not preregistration.source.is_current(protocol, arm, seed, record):
                stale.append(f"{protocol}/{arm}-s{seed}")
            records[path] = record
    if missing:
        raise PreregistrationError(f"{preregistration.path}: {len(missing)} pre-registered runs are missing under "
                                   f"{preregistration.results} ({', '.join(missing)}); the analysis reads all or none")
    if stale:
        raise PreregistrationError(f"{preregistration.path}: {len(stale)} runs were made with settings other than "
                                   f"their protocol's current ones ({', '.join(stale)})")
    return records


def run_provenance(preregistration: Preregistration, records: dict[Path, dict]) -> dict:
    """Commits, torch thread counts, machines and load of ``records``; refuses (one line) what
    the pre-registration's ``code`` rules out."""
    commits: dict[str, list[str]] = {}
    threads: Counter = Counter()
    machines: list[dict] = []
    dirty, loads = [], []
    for record in records.values():
        code = record.get("code", {})
        # the same code: its tree (commits that only added results share it), or the commit
        commits.setdefault(str(code.get("code_tree") or code.get("commit")), []).append(record.get("key"))
        if code.get("dirty") is not False:
            dirty.append(record.get("key"))
        machine = record.get("machine", {})
        threads[machine.get("torch_threads")] += 1
        if machine not in machines:
            machines.append(machine)
        # quality runs record the load at their start and end; dense steps in their machine, at the start
        loads += [record[key] for key in ("load_average_1min_start", "load_average_1min_end") if key in record]
        loads += [machine["load_average_1min"]] if "load_average_1min" in machine else []
    where = preregistration.path
    if preregistration.clean and dirty:
        raise PreregistrationError(f"{where}: code.clean is true but {len(dirty)} runs had uncommitted changes or "
                                   f"record none ({', '.join(map(str, sorted(dirty)))})")
    if preregistration.same_commit and len(commits) > 1:
        counts = ", ".join(f"{commit[:12]}: {len(keys)} runs" for commit, keys in sorted(commits.items()))
        raise PreregistrationError(f"{where}: code.same_commit is true but the runs come from {len(commits)} code versions "
                                   f"({counts})")
    if preregistration.same_threads and len(threads) > 1:
        counts = ", ".join(f"{n} threads: {count} runs" for n, count in sorted(threads.items(), key=str))
        raise PreregistrationError(f"{where}: code.same_threads is true but the runs used {len(threads)} thread "
                                   f"counts ({counts})")
    return {"count": len(records), "commits": {c: sorted(map(str, keys)) for c, keys in sorted(commits.items())},
            "torch_threads": {str(n): count for n, count in threads.items()}, "machines": machines,
            "load_average_1min": {"min": min(loads), "max": max(loads)} if loads else None}


def metric_values(records: dict[Path, dict], files: dict[tuple[str, int], Path], arm: str, seeds: tuple[int, ...],
                  metric: Metric) -> list[float]:
    """``metric`` of ``arm`` at each of ``seeds``; refuses (one line) a run that lacks it or was
    evaluated on another split."""
    values = []
    for seed in seeds:
        path = files[(arm, seed)]
        record = records[path]
        split = record.get("eval_split", "test")
        if split != metric.split:
            raise PreregistrationError(f"{path}: evaluated on the {split} split, the metric {metric.label} asks "
                                       f"for {metric.split}")
        value = metric.value(record)
        if not isinstance(value, int | float):
            raise PreregistrationError(f"{path}: holds no {metric.label}")
        values.append(float(value))
    return values


def confirmed(expects: str, mean_difference: float, p_holm: float, alpha: float, gate: bool = True) -> bool:
    """The decision rule: Holm-adjusted p below ``alpha`` and the mean paired difference of the
    sign the hypothesis expects (``higher``: > 0, ``lower``: < 0, ``different``: either), and
    ``gate`` (the manipulation check passed, where the pre-registration makes it a gate)."""
    sign_ok = {"higher": mean_difference > 0, "lower": mean_difference < 0, "different": mean_difference != 0}
    return gate and p_holm < alpha and sign_ok[expects]


def paired(preregistration: Preregistration, records: dict[Path, dict], hypothesis: Hypothesis,
           metric: Metric) -> dict:
    files = preregistration.run_files(hypothesis)
    treatment = metric_values(records, files, hypothesis.arm_treatment, hypothesis.seeds, metric)
    control = metric_values(records, files, hypothesis.arm_control, hypothesis.seeds, metric)
    return {"seeds": list(hypothesis.seeds), "treatment": treatment, "control": control,
            **paired_test(treatment, control)}


def manipulation_check(preregistration: Preregistration, records: dict[Path, dict],
                       hypothesis: Hypothesis) -> dict:
    """The manipulation check of ``hypothesis``: in its control arm (the plain method), the
    primary endpoint read as the source's ``ahead`` encoder minus its ``behind`` one, paired by
    seed (quality: teacher − student, ResMo's premise of a teacher that leads; dense: student −
    random init, pretraining ahead of none). ``passes``: its 95 % interval lies above 0. Never
    part of the family."""
    files = preregistration.run_files(hypothesis)
    primary, source = preregistration.primary, preregistration.source
    values = {encoder: metric_values(records, files, hypothesis.arm_control, hypothesis.seeds,
                                     dataclasses.replace(primary, encoder=encoder))
              for encoder in (source.ahead, source.behind)}
    test = paired_test(values[source.ahead], values[source.behind])
    return {"arm": hypothesis.arm_control, "seeds": list(hypothesis.seeds), "difference": f"{source.ahead} - {source.behind}",
            **values, **test, "passes": test["ci95"][0] > 0}


def analyse(preregistration: Preregistration) -> dict:
    """The confirmatory result of ``preregistration`` (see the module docstring)."""
    records = load_runs(preregistration)
    runs = run_provenance(preregistration, records)
    tests = [paired(preregistration, records, h, preregistration.primary) for h in preregistration.hypotheses]
    adjusted = holm([test["p"] for test in tests])
    manipulation = {hypothesis.id: manipulation_check(preregistration, records, hypothesis)
                    for hypothesis in preregistration.hypotheses}
    hypotheses = []
    for hypothesis, test, p_holm in zip(preregistration.hypotheses, tests, adjusted, strict=True):
        gate = manipulation[hypothesis.id]["passes"] or not preregistration.manipulation_gate
        hypotheses.append({
            "id": hypothesis.id, "description": hypothesis.description, "protocol": hypothesis.protocol,
            "arm_treatment": hypothesis.arm_treatment, "arm_control": hypothesis.arm_control,
            "expects": hypothesis.expects, **test, "p_holm": p_holm,
            "confirmed": confirmed(hypothesis.expects, test["mean_difference"], p_holm, preregistration.alpha, gate),
        })
    secondary = {
        endpoint.id: {"metric": endpoint.metric.label, "exploratory": True,
                      "by_hypothesis": {h.id: paired(preregistration, records, h, endpoint.metric)
                                        for h in preregistration.hypotheses}}
        for endpoint in preregistration.secondary
    }
    return {
        "name": preregistration.name, "benchmark": preregistration.source.name,
        "preregistration": relative_to_root(preregistration.path),
        "preregistration_date": preregistration.date,
        "preregistration_commit": added_commit(preregistration.path),
        "analysed": time.strftime("%Y-%m-%d"), "analysis_commit": git("rev-parse", "HEAD"),
        "primary_endpoint": preregistration.primary.label, "test": "paired t, two-sided",
        "correction": "holm", "alpha": preregistration.alpha, "decision_rule": preregistration.decision_rule,
        "minimal_detectable_effect": preregistration.mde, "runs": runs, "hypotheses": hypotheses,
        "manipulation_gate": preregistration.manipulation_gate, "manipulation_checks": manipulation, "secondary_endpoints": secondary,
    }

