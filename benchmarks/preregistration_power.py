"""Power of a confirmatory design, from the spread of a benchmark's committed pairs.

For each comparison of the benchmark (:data:`COMPARISONS`: ResMo arm against its plain method,
paired by seed) the committed run files of the protocol (read from git at ``rev``, so only committed results count, and only
those made with the protocol's current settings) give per-seed differences and their sample
standard deviation ``s_d``. The minimal detectable effect at ``n`` pairs is
``d_min(n, alpha, power) · s_d`` (``paired_statistics.minimal_detectable_effect``), with
``alpha`` Holm's worst case for a family of ``m`` hypotheses, ``alpha_family / m`` (the
smallest p gets multiplied by ``m``). The SD of a handful of pairs is itself uncertain: the
report also gives its one-sided 80 % upper bound and the effects detectable if that is the SD.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.paired_statistics import minimal_detectable_effect, standardized_mde
from benchmarks.preregistration_schema import ROOT, Metric, PreregistrationError
from benchmarks.preregistration_sources import SOURCES, Source
from benchmarks.provenance import git

#: per benchmark, the pre-registered comparisons: (treatment arm, control arm)
COMPARISONS = {"quality": (("mocov3-w0.3", "mocov3-w0"), ("byol-w1", "byol-w0")),
               "dense": (("densecl-w1", "densecl-w0"), ("mocov3-w1", "mocov3-w0"))}
#: per benchmark, the primary endpoint, then the secondary ones the pre-registration will report
METRICS = {"quality": (Metric("knn", "student", "test", 20), Metric("knn", "student", "test", 200),
                       Metric("knn", "teacher", "test", 20), Metric("linear", "student", "test")),
           "dense": (Metric("dense", "student", "test", measure="mIoU"),
                     Metric("dense", "student", "test", measure="pixel_accuracy"))}


def committed_record(source: Source, protocol: str, arm: str, seed: int, rev: str, root: Path = ROOT) -> dict | None:
    """The run record of ``arm`` at ``seed`` in ``protocol`` as committed at ``rev`` in ``root``
    (``None``: absent there, or made with other settings than the protocol's current ones)."""
    path = source.run_file(protocol, arm, seed, Path(source.default_results))
    text = git("show", f"{rev}:{path.as_posix()}", root=root)
    if text is None:
        return None
    record = json.loads(text)
    return record if source.is_current(protocol, arm, seed, record) else None


def committed_differences(protocol: str, treatment: str, control: str, metric: Metric, rev: str = "HEAD",
                          root: Path = ROOT, benchmark: str = "quality") -> dict:
    """Per-seed ``treatment - control`` of ``metric`` over the control arm's seeds both have at ``rev``."""
    source = SOURCES[benchmark]
    seeds, differences, commits = [], [], set()
    for seed in source.seeds(protocol, control):
        pair = [committed_record(source, protocol, arm, seed, rev, root) for arm in (treatment, control)]
        if None in pair:
            continue
        values = [metric.value(record) for record in pair]
        if None in values:
            continue
        seeds.append(seed)
        differences.append(values[0] - values[1])
        commits.update(record.get("code", {}).get("commit") for record in pair)
    return {"seeds": seeds, "differences": differences, "commits": sorted(map(str, commits))}


def sd_upper_bound(sd: float, n: int, confidence: float = 0.8) -> float:
    """One-sided upper ``confidence`` bound of a standard deviation estimated from ``n`` normal
    values: ``s · sqrt((n - 1) / χ²_{1-confidence, n-1})``; a spread from few seeds is itself
    uncertain, and this is the conservative value to size a design with."""
    from scipy import stats

    return sd * ((n - 1) / float(stats.chi2.ppf(1 - confidence, n - 1))) ** 0.5


def power_report(protocol: str = "full", *, ns: tuple[int, ...] = (8, 10, 12), alpha: float = 0.05,
                 family: int = 3, power: float = 0.8, rev: str = "HEAD", root: Path = ROOT,
                 benchmark: str = "quality") -> dict:
    """SD of the paired differences and minimal detectable effect at each ``n`` per comparison
    and metric of ``benchmark``'s ``protocol``."""
    worst_alpha = alpha / family
    comparisons = []
    for treatment, control in COMPARISONS[benchmark]:
        for metric in SOURCES[benchmark].protocol_metrics(protocol, METRICS[benchmark]):
            pairs = committed_differences(protocol, treatment, control, metric, rev, root, benchmark)
            if len(pairs["differences"]) < 2:
                raise PreregistrationError(f"protocol {protocol}: {treatment} vs {control} has "
                                           f"{len(pairs['differences'])} committed pairs of {metric.label} at {rev}; "
                                           f"the spread needs 2 or more")
            sd = statistics.stdev(pairs["differences"])
            sd_upper = sd_upper_bound(sd, len(pairs["differences"]))
            comparisons.append({
                "treatment": treatment, "control": control, "metric": metric.label, **pairs,
                "n_committed": len(pairs["differences"]), "mean_difference": statistics.fmean(pairs["differences"]),
                "sd_difference": sd,
                "mde": {str(n): minimal_detectable_effect(sd, n, worst_alpha, power) for n in ns},
                "sd_difference_upper80": sd_upper,
                "mde_at_sd_upper80": {str(n): minimal_detectable_effect(sd_upper, n, worst_alpha, power) for n in ns},
            })
    return {"benchmark": benchmark, "protocol": protocol, "rev": git("rev-parse", rev, root=root), "alpha_family": alpha, "family": family,
            "alpha_worst_case": worst_alpha, "power": power, "test": "paired t, two-sided",
            "standardized_mde": {str(n): standardized_mde(n, worst_alpha, power) for n in ns},
            "comparisons": comparisons}


def table(report: dict) -> str:
    """``report`` as a text table, one line per comparison and metric."""
    ns = list(report["standardized_mde"])
    lines = [f"{report.get('benchmark', 'quality')} protocol {report['protocol']} at {str(report['rev'])[:12]}: paired two-sided t, alpha "
             f"{report['alpha_family']}/{report['family']} = {report['alpha_worst_case']:.4f}, power {report['power']}",
             "standardized MDE d: " + ", ".join(f"n={n}: {d:.3f}" for n, d in report["standardized_mde"].items()),
             f"{'comparison':<26} {'metric':<32} {'n':>2} {'mean':>6} {'sd':>6} "
             + " ".join(f"{'MDE n=' + n:>9}" for n in ns)]
    for c in report["comparisons"]:
        lines.append(f"{c['treatment'] + ' vs ' + c['control']:<26} {c['metric']:<32} {c['n_committed']:>2} "
                     f"{c['mean_difference']:>6.3f} {c['sd_difference']:>6.3f} "
                     + " ".join(f"{c['mde'][n]:>9.3f}" for n in ns)
                     + f"   (sd upper 80 % {c['sd_difference_upper80']:.3f}: MDE "
                     + ", ".join(f"{c['mde_at_sd_upper80'][n]:.3f}" for n in ns) + ")")
    return "\n".join(lines)
