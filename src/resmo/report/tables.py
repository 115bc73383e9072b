"""Report tables: final numbers per run, mean ± std over seeds, eval results per encoder.

- :func:`final_metrics`: per run, the last kNN monitor top-1 of student and teacher, the
  intra gap per level of the last epoch, the final loss and every saved eval result
  (kNN per ``k``, linear probe, held-out intra gap), newest checkpoint's files only;
- :func:`group_runs` / :func:`final_table`: runs whose recipes differ only in ``seed`` (and
  bookkeeping such as ``out``) form one configuration. Runs of one configuration that
  repeat a seed are not independent samples: each seed counts once (its first run that
  has the number; :func:`repeated_seeds` says which runs were merged), so a configuration
  with n >= 2 distinct seeds shows ``mean ± std (n=...)`` (sample standard deviation,
  ddof = 1) over those seeds and one with a single seed shows the plain value;
- :func:`eval_table`: every eval result of a run, student and teacher side by side.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass

from resmo.report.run_data import RunData, differing_settings, flatten

NOT_CONFIGURATION = ("seed", "out", "data.num_workers", "data.cache_dir", "train.progress_bar")
LEVELS = ("features", "projection", "output")


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]


def _last(run: RunData, column: str) -> float | None:
    return run.series(column).last


def _either(first: float | None, second: float | None) -> float | None:
    return first if first is not None else second


def _eval_metrics(run: RunData) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for saved in run.evals.get("knn", []):
        for encoder, by_k in saved["results"].items():
            for k, scores in by_k.items():
                metrics[f"eval kNN {k} top-1 {encoder} [{saved['data']}]"] = scores["top1"]
        for k, gap in (saved.get("teacher_minus_student") or {}).items():
            metrics[f"eval kNN {k} top-1 teacher - student [{saved['data']}]"] = gap["top1"]
    for kind in ("linear", "linear_augmented"):
        for saved in run.evals.get(kind, []):
            name = "linear" if kind == "linear" else "linear (augmented)"
            for encoder, scores in saved["results"].items():
                metrics[f"eval {name} top-1 {encoder} [{saved['data']}]"] = scores["top1"]
            if saved.get("teacher_minus_student"):
                metrics[f"eval {name} top-1 teacher - student [{saved['data']}]"] = saved["teacher_minus_student"]["top1"]
    for saved in run.evals.get("gap", []):
        for level, value in saved["intra_gap"].items():
            metrics[f"held-out intra gap {level} [{saved['data']}]"] = value
    return metrics


def final_metrics(run: RunData) -> dict[str, float]:
    """Name -> value of the numbers listed in the module docstring (missing ones left out)."""
    metrics: dict[str, float | None] = {
        "kNN top-1 student (monitor)": _either(_last(run, "knn/student_top1"), run.summary.get("knn_top1_student")),
        "kNN top-1 teacher (monitor)": _either(_last(run, "knn/teacher_top1"), run.summary.get("knn_top1_teacher")),
    }
    student, teacher = metrics["kNN top-1 student (monitor)"], metrics["kNN top-1 teacher (monitor)"]
    if student is not None and teacher is not None:
        metrics["kNN top-1 teacher - student (monitor)"] = teacher - student
    for level in LEVELS:
        metrics[f"intra gap {level} (last epoch)"] = _either(
            _last(run, f"gap/{level}_epoch"), run.summary.get("intra_gap", {}).get(level))
    metrics["final loss"] = _either(_last(run, "train/loss_epoch"), run.summary.get("final_loss"))
    metrics |= _eval_metrics(run)
    return {name: float(value) for name, value in metrics.items() if value is not None}


def configuration_key(run: RunData) -> str:
    flat = flatten(run.config)
    return json.dumps({k: v for k, v in flat.items() if k not in NOT_CONFIGURATION}, sort_keys=True, default=str)


def group_runs(runs: list[RunData]) -> list[list[RunData]]:
    """Runs grouped by configuration (recipe without seed and bookkeeping), in input order."""
    groups: dict[str, list[RunData]] = {}
    for run in runs:
        groups.setdefault(configuration_key(run), []).append(run)
    return list(groups.values())


def runs_by_seed(group: list[RunData]) -> dict:
    """Distinct seed -> the runs of ``group`` with that seed, in input order."""
    by_seed: dict = {}
    for run in group:
        by_seed.setdefault(run.config.get("seed"), []).append(run)
    return by_seed


def _names(runs: list[RunData]) -> str:
    names = [run.name for run in runs]
    return ", ".join(names[:-1]) + f" and {names[-1]}"


def repeated_seeds(runs: list[RunData]) -> list[str]:
    """One line per seed that several runs of one configuration share, e.g. ``runs a and b
    repeat seed 0: counted once``."""
    return [f"runs {_names(same)} repeat seed {seed}: counted once"
            for group in group_runs(runs) for seed, same in runs_by_seed(group).items() if len(same) > 1]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _decimals(value: float) -> int:
    return 4 if abs(value) < 1 else 2


def _cell(values: list[float], num_seeds: int) -> str:
    """``value``, or ``mean ± std (n=k)`` over a configuration's seeds (k seeds had the metric)."""
    if not values:
        return "–"
    mean, std = mean_std(values)
    d = _decimals(mean)
    if num_seeds == 1:
        return f"{mean:.{d}f}"
    if len(values) == 1:
        return f"{mean:.{d}f} (n=1)"
    return f"{mean:.{d}f} ± {std:.{d}f} (n={len(values)})"


def _group_heading(group: list[RunData], keys: list[str]) -> str:
    flat = flatten(group[0].config)
    setting = ", ".join(f"{key}={flat.get(key)}" for key in keys) or "same recipe"
    by_seed = runs_by_seed(group)
    if len(group) == 1:
        return f"{group[0].name} ({setting})"
    names = ", ".join(run.name for run in group)
    if len(by_seed) == 1:
        return f"{setting}: 1 seed ({names}; seed {next(iter(by_seed))})"
    return f"{setting}: {len(by_seed)} seeds ({names}; seeds {', '.join(map(str, by_seed))})"


def _seed_values(group: list[RunData], name: str, per_run: dict[int, dict[str, float]]) -> list[float]:
    """``name`` once per distinct seed of ``group``: from the seed's first run that has it."""
    values: list[float] = []
    for same in runs_by_seed(group).values():
        values += [per_run[id(run)][name] for run in same if name in per_run[id(run)]][:1]
    return values


def final_table(runs: list[RunData]) -> Table:
    """Metrics as rows; one column per configuration (mean ± std over its distinct seeds)."""
    groups = group_runs(runs)
    per_run = {id(run): final_metrics(run) for run in runs}
    names: list[str] = []
    for run in runs:
        names += [name for name in per_run[id(run)] if name not in names]
    keys = differing_settings(runs, ignore=NOT_CONFIGURATION)
    columns = ["metric"] + [_group_heading(group, keys) for group in groups]
    rows = [
        [name] + [_cell(_seed_values(group, name, per_run), len(runs_by_seed(group))) for group in groups]
        for name in names
    ]
    return Table(columns, rows)


def eval_table(run: RunData) -> Table:
    """Every saved kNN / linear result of ``run``: one row per (kind, data, k), student and
    teacher top-1 / top-5 side by side, and teacher - student top-1."""
    rows = []

    def add(kind: str, saved: dict, setting: str, student: dict | None, teacher: dict | None) -> None:
        cells = [kind, saved["data"], setting, str(saved.get("global_step"))]
        for scores in (student, teacher):
            cells += [f"{scores['top1']:.2f}", f"{scores['top5']:.2f}"] if scores else ["–", "–"]
        cells.append(f"{teacher['top1'] - student['top1']:+.2f}" if student and teacher else "–")
        rows.append(cells)

    for saved in run.evals.get("knn", []):
        for k in saved.get("k", []):
            results = saved["results"]
            add("kNN", saved, f"k={k}, T={saved['temperature']}", results.get("student", {}).get(f"k{k}"),
                results.get("teacher", {}).get(f"k{k}"))
    for kind in ("linear", "linear_augmented"):
        for saved in run.evals.get(kind, []):
            setting = ", ".join(f"{k}={v}" for k, v in saved.get("settings", {}).items())
            add(kind.replace("_", " "), saved, setting, saved["results"].get("student"), saved["results"].get("teacher"))
    columns = ["probe", "data", "settings", "ckpt step", "student top-1", "student top-5",
               "teacher top-1", "teacher top-5", "teacher - student top-1"]
    return Table(columns, rows)
