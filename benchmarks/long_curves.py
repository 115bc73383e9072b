"""ResMo over the course of training: the long protocol's curves, figures and paired effects.

    python -m benchmarks.long_curves      # after: python -m benchmarks.quality_cifar10 --protocol long

Reads each run's ``curves`` (online kNN of student and teacher every few epochs, intra gap
per epoch; see ``quality_cifar10.training_curves``) from
``benchmarks/results/quality/long/runs/``, and writes

- ``benchmarks/results/quality/long/curves.json``: per arm and epoch, mean and standard
  deviation over seeds of the student and teacher kNN, their difference (teacher - student)
  and the intra gap at the output; per ResMo arm and kNN epoch, the paired effect against
  the plain method of the same seed (mean, per seed, 95 % t interval: quality_summary);
- ``docs/figures/long_knn.png`` (student solid, teacher dashed, ±1 std band),
  ``long_gap.png`` (intra gap) and ``long_teacher_minus_student.png``, one panel per method.

Runs not yet made are left out (the JSON lists them): the figures grow as the protocol runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from benchmarks.protocol import PROTOCOLS, Protocol, run_key
from benchmarks.quality_summary import load_runs, paired_interval
from benchmarks.results_io import code_provenance, save_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "quality"
FIGURES = HERE.parent / "docs" / "figures"
TITLES = {"mocov3": "MoCo v3", "byol": "BYOL"}
SERIES = ("student", "teacher", "teacher_minus_student", "intra_gap_output")


def series(record: dict) -> dict[str, dict[int, float]]:
    """``{series name: {epoch: value}}`` of one run's curves."""
    curves = record.get("curves") or {}
    knn = curves.get("knn", [])
    return {
        "student": {row["epoch"]: row["student"] for row in knn},
        "teacher": {row["epoch"]: row["teacher"] for row in knn},
        "teacher_minus_student": {row["epoch"]: row["teacher"] - row["student"] for row in knn},
        "intra_gap_output": {row["epoch"]: row["value"] for row in curves.get("intra_gap", {}).get("output", [])},
    }


def _by_epoch(values: dict[int, list[float]]) -> list[dict]:
    return [{"epoch": epoch, "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else None,
             "n": len(v)} for epoch, v in sorted(values.items())]


def aggregate(protocol: Protocol, runs: dict[str, dict]) -> dict:
    """Curves per arm (mean ± std over seeds per epoch) and paired ResMo effects per epoch."""
    curves = {key: series(record) for key, record in runs.items()}
    arms, missing = [], []
    for arm in protocol.arms:
        pooled: dict[str, dict[int, list[float]]] = {name: {} for name in SERIES}
        seeds = [seed for seed in arm.seeds if run_key(arm, seed) in curves]
        missing += [run_key(arm, seed) for seed in arm.seeds if seed not in seeds]
        for seed in seeds:
            for name, values in curves[run_key(arm, seed)].items():
                for epoch, value in values.items():
                    pooled[name].setdefault(epoch, []).append(value)
        arms.append({"key": arm.key, "label": arm.label, "method": arm.method, "weight": arm.weight,
                     "seeds": seeds, "curves": {name: _by_epoch(pooled[name]) for name in SERIES}})
    return {"arms": arms, "effects": effects(protocol, curves), "missing_runs": missing}


def effects(protocol: Protocol, curves: dict[str, dict[str, dict[int, float]]]) -> list[dict]:
    """Each ResMo arm against the plain arm of its method, paired by seed (runs both have),
    at every kNN epoch; ``curves``: :func:`series` of each run, by run key."""
    plain = {arm.method: arm for arm in protocol.arms if arm.weight == 0}
    found = []
    for arm in protocol.arms:
        control = plain.get(arm.method)
        if arm.weight == 0 or control is None:
            continue
        pairs = [(curves[run_key(arm, seed)], curves[run_key(control, seed)]) for seed in control.seeds
                 if run_key(arm, seed) in curves and run_key(control, seed) in curves]
        for encoder in ("student", "teacher"):
            epochs = sorted({epoch for treated, _ in pairs for epoch in treated[encoder]})
            per_epoch = []
            for epoch in epochs:
                differences = [treated[encoder][epoch] - base[encoder][epoch] for treated, base in pairs
                               if epoch in treated[encoder] and epoch in base[encoder]]
                if differences:
                    per_epoch.append({"epoch": epoch, **paired_interval(differences)})
            found.append({"arm": arm.key, "label": arm.label, "control": control.key, "encoder": encoder,
                          "by_epoch": per_epoch})
    return found


def plot(curves: dict, figures: Path) -> list[Path]:
    """The three figures (one panel per method; mean line, ±1 std band, a marker per epoch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted({arm["method"] for arm in curves["arms"]})
    colours = plt.get_cmap("tab10")
    drawn = []
    specs = (("long_knn.png", (("student", "-"), ("teacher", "--")), "kNN top-1 (%), CIFAR-10 test"),
             ("long_gap.png", (("intra_gap_output", "-"),), "intra gap at the output (1 - cos)"),
             ("long_teacher_minus_student.png", (("teacher_minus_student", "-"),), "teacher - student kNN (points)"))
    for name, lines, ylabel in specs:
        fig, axes = plt.subplots(1, len(methods), figsize=(5.5 * len(methods), 4), squeeze=False)
        for ax, method in zip(axes[0], methods, strict=True):
            for index, arm in enumerate(a for a in curves["arms"] if a["method"] == method):
                for field, style in lines:
                    points = arm["curves"][field]
                    if not points:
                        continue
                    epochs = [p["epoch"] for p in points]
                    mean = [p["mean"] for p in points]
                    std = [p["std"] or 0.0 for p in points]
                    label = f"{arm['label']} ({field})" if len(lines) > 1 else arm["label"]
                    ax.plot(epochs, mean, style, marker="o", markersize=3, color=colours(index),
                            label=f"{label}, n={len(arm['seeds'])}")
                    ax.fill_between(epochs, [m - s for m, s in zip(mean, std, strict=True)],
                                    [m + s for m, s in zip(mean, std, strict=True)], color=colours(index), alpha=0.15)
            if name == "long_teacher_minus_student.png":
                ax.axhline(0.0, color="gray", linewidth=0.8)
            ax.set_title(TITLES.get(method, method))
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes)
        fig.suptitle(f"long protocol, mean ± 1 std over seeds ({curves['date']})", fontsize=9)
        fig.tight_layout()
        figures.mkdir(parents=True, exist_ok=True)
        fig.savefig(figures / name, dpi=110)
        plt.close(fig)
        drawn.append(figures / name)
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.long_curves", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--figures", type=Path, default=FIGURES)
    args = parser.parse_args(argv)
    protocol = PROTOCOLS["long"]
    runs = load_runs(protocol, args.results_dir)
    curves = {"protocol": protocol.name, "command": "python -m benchmarks.long_curves",
              "date": time.strftime("%Y-%m-%d"), "code": code_provenance(),
              "code_commits": sorted({r["code"]["commit"] for r in runs.values() if (r.get("code") or {}).get("commit")}),
              "runs": len(runs), **aggregate(protocol, runs)}
    curves["figures"] = [str(path) for path in plot(curves, args.figures)]
    save_json(args.results_dir / protocol.name / "curves.json", curves)
    print(f"{len(runs)} runs; missing {len(curves['missing_runs'])}; wrote "
          f"{args.results_dir / protocol.name / 'curves.json'} and {', '.join(curves['figures'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
