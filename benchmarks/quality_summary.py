"""Aggregate a quality protocol's cached runs into ``summary.json`` (and a plot).

Per arm: each metric's values over seeds, mean and sample standard deviation (``None``
with one seed). Then the checks the docs report: the plain method's margin over a random
encoder (student kNN top-1, whole test split; target at least 15 points), ResMo's effect
against the plain method for every ResMo arm with several seeds (paired per seed: same
seed, same data order; mean, standard deviation, standard error and 95 % confidence interval
of the differences), and peer parity (resmo's baseline against the
LightlySSL-built one, "within noise" meaning no more than two standard deviations of
resmo's seeds below, with the source of that spread recorded).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from benchmarks.protocol import Arm, Protocol, budget_settings, cached_result, random_key, run_key

PROJECT = Path(__file__).resolve().parents[1]
FIGURE = PROJECT / "docs" / "figures" / "quality_cifar10.png"
MARGIN_TARGET = 15.0
#: Two-sided 95 % critical values of Student's t by degrees of freedom; beyond 10 the value
#: for 10 is used (slightly wider than exact, never narrower).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}
METRICS = {
    "knn_student": ("knn", "student"), "knn_teacher": ("knn", "teacher"),
    "linear_student": ("linear", "student"), "linear_teacher": ("linear", "teacher"),
}


def _stats(values: list[float]) -> dict:
    return {
        "values": values,
        "mean": statistics.fmean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 else None,
    }


def _metric(record: dict, name: str, k: str) -> float | None:
    if name in ("intra_gap_output", "intra_gap_features"):
        return record.get("intra_gap", {}).get(name.removeprefix("intra_gap_"))
    section, encoder = METRICS[name]
    value = record.get(section, {}).get(encoder)
    return value.get(k) if isinstance(value, dict) else value


def load_runs(protocol: Protocol, results: Path) -> dict[str, dict]:
    """The cached runs of ``protocol`` made with its current settings (stale results are left out)."""
    return {key: record for key in protocol.run_keys()
            if (record := cached_result(protocol, key, results)) is not None}


def _present(runs: dict, keys: list[str], missing: list[str]) -> list[dict]:
    """The records of ``keys`` found in ``runs``; the others are appended to ``missing``."""
    missing += [key for key in keys if key not in runs]
    return [runs[key] for key in keys if key in runs]


def summarise(protocol: Protocol, results: Path, *, command: str, wall_seconds: float | None = None,
              figure: Path | None = None, jobs: int | None = None) -> Path:
    runs = load_runs(protocol, results)
    k = f"k{protocol.budget.knn_k[0]}"
    missing: list[str] = []
    random_records = _present(runs, [random_key(seed) for seed in protocol.random_init_seeds], missing)
    random_init = {
        "knn": _stats([r["knn"]["random"][k] for r in random_records]),
        "linear": _stats([r["linear"]["random"] for r in random_records]),
    }
    arms = []
    for arm in protocol.arms:
        records = _present(runs, [run_key(arm, seed) for seed in arm.seeds], missing)
        metrics = {name: _stats([v for r in records if (v := _metric(r, name, k)) is not None])
                   for name in [*METRICS, "intra_gap_output", "intra_gap_features"]}
        arms.append({
            "key": arm.key, "label": arm.label, "group": arm.group, "method": arm.method, "impl": arm.impl,
            "weight": arm.weight, "distance": arm.distance, "seeds": [r["seed"] for r in records],
            "metrics": metrics,
            "train_seconds": _stats([r["train_seconds"] for r in records]),
            "train_images_per_second": _stats([r["images_per_second"] for r in records
                                               if r.get("images_per_second") is not None]),
            "eval_seconds": _stats([r["eval_seconds"] for r in records]),
            "command": records[0].get("command") if records else None,
        })
    by_key = {arm["key"]: arm for arm in arms}
    summary = {
        "protocol": protocol.name, "command": command, "date": time.strftime("%Y-%m-%d"),
        "run_dates": sorted({r["date"] for r in runs.values() if "date" in r}),
        "code_commits": sorted({r["code"]["commit"] for r in runs.values() if (r.get("code") or {}).get("commit")}),
        "jobs": jobs, "torch_threads_per_run": sorted({r["machine"].get("torch_threads") for r in runs.values()
                                                      if r.get("machine", {}).get("torch_threads")}),
        "budget": _budget(protocol), "knn_k": k, "notes": list(protocol.notes),
        "machine": next(iter(runs.values()))["machine"] if runs else None,
        "complete": not missing, "missing_runs": missing,
        "cpu_seconds_runs": sum(r.get("train_seconds", 0) + r.get("eval_seconds", 0) for r in runs.values()),
        "wall_seconds_this_invocation": wall_seconds,
        "random_init": random_init, "arms": arms,
        "checks": _checks(by_key, random_init, runs, protocol, k),
    }
    out = results / protocol.name / "summary.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    if protocol.name == "full" or figure is not None:
        plot(summary, figure or FIGURE)
    return out


def _budget(protocol: Protocol) -> dict:
    return budget_settings(protocol.budget)


def _mean(arm: dict | None, metric: str) -> float | None:
    return None if arm is None else arm["metrics"][metric]["mean"]


def _checks(by_key: dict, random_init: dict, runs: dict, protocol: Protocol, k: str) -> dict:
    plain = by_key.get("mocov3-w0")
    random_knn = random_init["knn"]["mean"]
    checks: dict = {}
    if plain and random_knn is not None and _mean(plain, "knn_student") is not None:
        margin = _mean(plain, "knn_student") - random_knn
        checks["margin_over_random_init"] = {"points": margin, "target": MARGIN_TARGET,
                                             "met": margin >= MARGIN_TARGET}
    checks["resmo_effects"] = {}
    arms = {arm.key: arm for arm in protocol.arms}
    for arm in protocol.arms:  # each ResMo arm with several seeds against its plain method, paired by seed
        control = arms.get(f"{arm.method}-w0")
        if arm.impl != "resmo" or arm.weight == 0 or len(arm.seeds) < 2 or control is None:
            continue
        effects = {metric: effect for metric in METRICS if (effect := _paired(runs, arm, control, metric, k))}
        if effects:
            checks["resmo_effects"][arm.key] = {"label": arm.label, "method": arm.method,
                                                "control": control.key, "metrics": effects}
    parity = {}
    for method, ours in (("mocov3", plain), ("byol", by_key.get("byol-w0"))):
        theirs = by_key.get(f"lightly-{method}")
        if not ours or not theirs or _mean(theirs, "knn_student") is None or _mean(ours, "knn_student") is None:
            continue
        noise, source = _noise(ours, plain, method)
        difference = _mean(ours, "knn_student") - _mean(theirs, "knn_student")
        parity[method] = {
            "resmo_knn_student": _mean(ours, "knn_student"), "lightly_knn_student": _mean(theirs, "knn_student"),
            "resmo_minus_lightly": difference, "noise_std": noise, "noise_source": source,
            "at_least_as_accurate_within_noise": difference >= -2 * noise if noise is not None else difference >= 0,
        }
    checks["peer_parity"] = parity
    return checks


def _noise(ours: dict, plain: dict | None, method: str) -> tuple[float | None, str]:
    """The seed-to-seed spread that parity is judged against, and where it comes from."""
    if ours["metrics"]["knn_student"]["std"] is not None:
        return ours["metrics"]["knn_student"]["std"], f"resmo {method} seeds"
    if plain and plain["metrics"]["knn_student"]["std"] is not None:
        return plain["metrics"]["knn_student"]["std"], "resmo MoCo v3 seeds (this method has one seed)"
    return None, "none (one seed): judged as difference >= 0"


def _paired(runs: dict, treated: Arm, control: Arm, metric: str, k: str) -> dict | None:
    """Per-seed differences ``d_s = treated_s - control_s`` over the seeds both have: mean
    ``d̄``, standard deviation ``s``, standard error ``s / sqrt(n)`` and the 95 % confidence
    interval ``d̄ ± t_{0.975, n-1} · s / sqrt(n)`` (``None`` with fewer than two seeds)."""
    differences = []
    for seed in control.seeds:
        a, b = runs.get(run_key(treated, seed)), runs.get(run_key(control, seed))
        if a is None or b is None:
            continue
        va, vb = _metric(a, metric, k), _metric(b, metric, k)
        if va is not None and vb is not None:
            differences.append(va - vb)
    return paired_interval(differences)


def paired_interval(differences: list[float]) -> dict | None:
    """Mean, standard deviation, standard error and 95 % t interval of per-seed differences
    (see :func:`_paired`); ``None`` without any."""
    if not differences:
        return None
    mean = statistics.fmean(differences)
    std = statistics.stdev(differences) if len(differences) > 1 else None
    error = None if std is None else std / len(differences) ** 0.5
    interval = None
    if error is not None:
        half = T95[min(len(differences) - 1, 10)] * error
        interval = [mean - half, mean + half]
    return {"per_seed": differences, "mean": mean, "std": std, "standard_error": error, "ci95": interval}


def plot(summary: dict, path: Path) -> Path:
    """Student (filled) and teacher (open) kNN top-1 per arm, one dot per seed; the
    random-init encoder as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [a for a in summary["arms"] if a["metrics"]["knn_student"]["values"]]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(arms) + 1.6))
    for row, arm in enumerate(arms):
        y = len(arms) - 1 - row
        for name, marker, fill in (("knn_student", "o", "tab:blue"), ("knn_teacher", "s", "none")):
            values = arm["metrics"][name]["values"]
            ax.scatter(values, [y] * len(values), marker=marker, facecolors=fill, edgecolors="tab:blue",
                       zorder=3, label=name.replace("knn_", "") if row == 0 else None)
        mean = arm["metrics"]["knn_student"]["mean"]
        ax.plot([mean, mean], [y - 0.3, y + 0.3], color="tab:blue", linewidth=2)
    random_knn = summary["random_init"]["knn"]["mean"]
    if random_knn is not None:
        ax.axvline(random_knn, linestyle="--", color="gray", label="random init")
    ax.set_yticks(range(len(arms)), [a["label"] for a in reversed(arms)])
    ax.set_xlabel(f"kNN top-1 (%), CIFAR-10 test, {summary['knn_k']}")
    ax.set_title(f"{summary['protocol']} protocol, {summary['date']} ({summary['command']})", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
