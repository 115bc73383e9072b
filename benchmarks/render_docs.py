"""Write docs/benchmarks.md from the JSON results in benchmarks/results/.

    python -m benchmarks.render_docs          # after any benchmark script

Every number in docs/benchmarks.md comes from a JSON file read here; a result that does
not exist yet is reported as not measured, with the command that measures it. The prose is
``templates/benchmarks.md`` (fragments read by :mod:`benchmarks.doc_template`); this module
picks the fragments, fills in the numbers and writes the tables.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import sys
from pathlib import Path

from benchmarks.doc_fragments import TEMPLATE, block, p_number, p_text, sentence
from benchmarks.docs_preregistered import preregistered_section
from benchmarks.paired_statistics import paired_test
from benchmarks.provenance import freshness_text, is_ancestor, result_commits
from benchmarks.quality_effect_tests import effect_tests
from benchmarks.quality_rechecks import QUALITY_RECHECKS

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
RESULTS = HERE / "results"
DOC = PROJECT / "docs" / "benchmarks.md"
METHOD_TITLES = {"mocov3": "MoCo v3", "byol": "BYOL"}
EFFECT_METRICS = {"knn_student": "student kNN", "knn_teacher": "teacher kNN",
                  "linear_student": "student linear", "linear_teacher": "teacher linear"}
#: the commands the page tells a reader to run (a result's own command is quoted as recorded)
QUALITY_LONG_RUNS = "python -m benchmarks.quality_cifar10 --protocol long"
QUICKSTART = "python -m benchmarks.quickstart"


def rerun(command: str) -> str:
    """The command that re-runs a result recorded as ``command``: results made before
    benchmarks/ became a package recorded ``python benchmarks/<name>.py ...``, which now runs as
    ``python -m benchmarks.<name> ...`` (the result's own command is still quoted as recorded)."""
    return re.sub(r"^python benchmarks/(\w+)\.py\b", r"python -m benchmarks.\1", command)


def freshness_line(result: dict, kind: str, command: str) -> str:
    """:func:`provenance.freshness_text` of ``result``, re-run by :func:`rerun` of ``command``."""
    return freshness_text(result, kind, rerun(command))


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def fmt(stats: dict | None, digits: int = 1) -> str:
    """``mean ± std`` (``mean`` alone with one value, ``—`` without)."""
    if not stats or stats.get("mean") is None:
        return "—"
    text = f"{stats['mean']:.{digits}f}"
    return text + (f" ± {stats['std']:.{digits}f}" if stats.get("std") is not None else "")


def signed(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:+.{digits}f}"


def machine_line(machine: dict | None) -> str:
    if not machine:
        return "machine not recorded"
    if machine.get("gpu"):
        return f"{machine['gpu']}, torch {machine.get('torch', '?')}"
    cores = f"{machine['cpu_count']}-core" if "cpu_count" in machine else "CPU:"
    return f"{cores} {machine.get('processor', 'CPU')}, torch {machine.get('torch', '?')}"


# --- quality ---------------------------------------------------------------------------------
def quality_table(summary: dict) -> list[str]:
    k = summary["knn_k"]
    lines = [
        f"| arm | seeds | student kNN top-1 ({k}) | teacher kNN top-1 | student linear top-1 "
        "| teacher linear top-1 | intra gap, output | intra gap, features | training images/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for arm in summary["arms"]:
        m = arm["metrics"]
        seeds = ", ".join(str(s) for s in arm["seeds"]) or "missing"
        lines.append(
            f"| {arm['label']} | {seeds} | {fmt(m['knn_student'])} | {fmt(m['knn_teacher'])} "
            f"| {fmt(m['linear_student'])} | {fmt(m['linear_teacher'])} | {fmt(m['intra_gap_output'], 3)} "
            f"| {fmt(m['intra_gap_features'], 3)} | {fmt(arm.get('train_images_per_second'), 0)} |"
        )
    r = summary["random_init"]
    seeds = len(r["knn"]["values"])
    lines.append(f"| random init (no training) | {seeds} seed{'s' * (seeds != 1)} | {fmt(r['knn'])} | — "
                 f"| {fmt(r['linear'])} | — | — | — | — |")
    return lines


def confirm_runs_section(summary: dict | None) -> list[str]:
    """The confirmatory protocol's runs per arm (its ``summary.json``), once all are there."""
    if summary is None or not summary.get("complete"):
        return []
    lines = block("confirmatory.runs", budget=budget_text(summary), command=summary["command"],
                  dates=", ".join(summary["run_dates"]), commits=", ".join(f"`{c[:7]}`" for c in summary["code_commits"]),
                  threads=", ".join(map(str, summary["torch_threads_per_run"])), jobs=summary.get("jobs") or "?",
                  machine=machine_line(summary["machine"]))
    return lines + quality_table(summary) + [""]


def budget_text(summary: dict) -> str:
    b = summary["budget"]
    train = "all 50,000" if b["train_per_class"] is None else f"{10 * b['train_per_class']:,}"
    if b.get("val_fraction"):  # the protocol holds a class-balanced share out for the kNN monitor
        train += f" (of them {100 * b['val_fraction']:g} % held out as the monitor's validation split)"
    test = "all 10,000" if b["test_per_class"] is None else f"{10 * b['test_per_class']:,}"
    return sentence("quality.budget", train=train, test=test, **{key: b[key] for key in (
        "width", "epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "momentum", "hidden_dim",
        "out_dim", "temperature", "linear_steps")})


def paired_verdict(effect: dict) -> str:
    """Where the 95 % confidence interval of per-seed differences (Student's t over the seeds)
    lies: whether it excludes zero."""
    if effect.get("ci95") is None:
        return "one seed: no noise estimate"
    low, high = effect["ci95"]
    side = "excludes" if low > 0 or high < 0 else "includes"
    return f"95 % interval [{low:+.1f}, {high:+.1f}] {side} 0"


def p_values_text(test: dict | None) -> str:
    """``; p = 0.032, Holm-adjusted over the 16 comparisons p = 0.45`` (empty without a test)."""
    if test is None:
        return ""
    return sentence("quality.effect_test", p=p_text(test["p"]), family=test["family"],
                    p_holm=f"{test['p_holm']:.2f}")


def exploratory_lines(summary: dict, tests: dict) -> list[str]:
    """Why the paired effects are exploratory: the family's size, how many of its intervals
    exclude 0 (and their raw p), its smallest Holm-adjusted p and how many survive Holm at 0.05."""
    if not tests:
        return []
    effects = summary["checks"]["resmo_effects"]
    excluding = [test["p"] for (key, metric), test in tests.items()
                 if paired_verdict(effects[key]["metrics"][metric]).endswith("excludes 0")]
    survivors = sum(test["p_holm"] < 0.05 for test in tests.values())
    return block("quality.exploratory", family=len(tests),
                 excluding=(f"{len(excluding)} exclude 0 (raw p {p_number(min(excluding))} to {p_number(max(excluding))})"
                            if excluding else "none excludes 0"),
                 smallest_p_holm=f"{min(t['p_holm'] for t in tests.values()):.2f}",
                 survivors="none survives" if survivors == 0 else f"{survivors} survive{'s' * (survivors == 1)}")


def quality_findings(summary: dict) -> list[str]:
    checks = summary["checks"]
    lines = []
    margin = checks.get("margin_over_random_init")
    if margin:
        lines.append(sentence("quality.margin", points=f"{margin['points']:.1f}", target=f"{margin['target']:.0f}",
                              verdict="meets" if margin["met"] else "does not meet"))
    arms = {a["key"]: a for a in summary["arms"]}
    tests = effect_tests(summary)
    for key, effect in checks.get("resmo_effects", {}).items():
        control = arms[effect["control"]]["label"] if effect["control"] in arms else effect["control"]
        for metric, name in EFFECT_METRICS.items():
            if metric in effect["metrics"]:
                e = effect["metrics"][metric]
                lead = f"- {effect['label']} against {control}, paired by seed," if metric == "knn_student" else " "
                lines.append(sentence("quality.effect", lead=lead, metric=name, mean=signed(e["mean"]),
                                      per_seed=", ".join(signed(v) for v in e["per_seed"]), verdict=paired_verdict(e),
                                      test=p_values_text(tests.get((key, metric)))))
    for method, title in METHOD_TITLES.items():
        if f"{method}-w0" in arms and f"{method}-w1" in arms:
            g0 = arms[f"{method}-w0"]["metrics"]["intra_gap_output"]["mean"]
            g1 = arms[f"{method}-w1"]["metrics"]["intra_gap_output"]["mean"]
            if g0 is not None and g1 is not None:
                lines.append(sentence("quality.intra_gap", method=title, without_resmo=f"{g0:.3f}", with_resmo=f"{g1:.3f}"))
    lines += single_seed_lines(summary, arms)
    lines += peer_lines(summary, arms)
    return lines


def peer_placement(peer: float, ours: list[float]) -> str:
    """Where the peer's number falls among resmo's per-seed values."""
    below = sum(value < peer for value in ours)
    if below == len(ours):
        return "above every resmo seed"
    if below == 0 and peer not in ours:
        return "below every resmo seed"
    return f"above {below} of the {len(ours)} resmo seeds"


def peer_lines(summary: dict, arms: dict) -> list[str]:
    """resmo's per-seed student kNN against the LightlySSL build's runs, method by method."""
    lines = []
    for method, title in METHOD_TITLES.items():
        ours, theirs = arms.get(f"{method}-w0"), arms.get(f"lightly-{method}")
        if not ours or not theirs or not ours["seeds"] or not theirs["seeds"]:
            continue
        values = ours["metrics"]["knn_student"]["values"]
        peer = theirs["metrics"]["knn_student"]
        placed = "the peer's mean is " if len(peer["values"]) > 1 else ""
        lines.append(sentence(
            "quality.peer", method=title, k=summary["knn_k"], seeds=", ".join(map(str, ours["seeds"])),
            values=", ".join(f"{v:.1f}" for v in values), mean=f"{statistics.fmean(values):.1f}",
            peer_seeds=", ".join(map(str, theirs["seeds"])), peer_values=", ".join(f"{v:.1f}" for v in peer["values"]),
            seed_word="seeds" if len(theirs["seeds"]) > 1 else "seed",
            placement=placed + peer_placement(peer["mean"], values)))
    return lines


def single_seed_lines(summary: dict, arms: dict) -> list[str]:
    """The one-seed arms against the core arms' seed-0 runs (same seed, same data order)."""
    plain = arms.get("mocov3-w0")
    if not plain or 0 not in plain["seeds"]:
        return []
    spread = plain["metrics"]["knn_student"]["std"]

    def seed0(arm: dict) -> float | None:
        values = dict(zip(arm["seeds"], arm["metrics"]["knn_student"]["values"], strict=False))
        return values.get(0)

    lines = []
    for method, name in METHOD_TITLES.items():
        group = [a for a in summary["arms"] if a["method"] == method and a["impl"] == "resmo" and seed0(a) is not None]
        if len(group) > 1 and any(len(a["seeds"]) == 1 for a in group):
            listed = "; ".join(f"{a['label']} {seed0(a):.1f}" for a in group)
            lines.append(sentence("quality.single_seed", method=name, listed=listed))
    if lines and spread is not None:
        lines.append(sentence("quality.single_seed_noise", threshold=f"{2 * spread:.1f}"))
    return lines


def quality_section(full: dict | None, smoke: dict | None) -> list[str]:
    lines = block("quality")
    if full is None:
        lines += block("quality.not_measured")
    else:
        threads = "/".join(str(t) for t in full.get("torch_threads_per_run", [])) or "?"
        lines += block("quality.measured", command=full["command"], jobs=full.get("jobs") or "?", threads=threads,
                       machine=machine_line(full["machine"]),
                       run_dates=", ".join(full.get("run_dates", [])) or full["date"],
                       hours=f"{full['cpu_seconds_runs'] / 3600:.1f}", budget=budget_text(full),
                       freshness=quality_freshness(full))
        if not full["complete"]:
            lines += block("quality.incomplete", missing=", ".join(full["missing_runs"]))
        lines += quality_table(full) + [""]
        lines += block("quality.reading")
        lines += exploratory_lines(full, effect_tests(full))
        lines += quality_findings(full) + [""]
        lines += block("quality.scale", command=full["command"], date=full["date"],
                       machine=machine_line(full["machine"]))
        commands = {a["label"]: a["command"] for a in full["arms"] if a.get("command")}
        if commands:
            label, command = next(iter(commands.items()))
            lines += block("quality.example", label=label, command=command)
    lines += block("quality.smoke")
    if smoke is None:
        lines += block("quality.smoke_not_measured")
    else:
        b = smoke["budget"]
        lines += block("quality.smoke_measured", command=smoke["command"], width=b["width"],
                       train=10 * b["train_per_class"], test=10 * b["test_per_class"], epochs=b["epochs"],
                       batch_size=b["batch_size"], date=smoke["date"], machine=machine_line(smoke["machine"]),
                       freshness=quality_freshness(smoke))
        lines += quality_table(smoke) + [""]
    if QUALITY_RECHECKS:
        lines += block("quality.rechecks")
    for date, commit, what in QUALITY_RECHECKS:
        lines += block("quality.recheck", date=date, commit=commit, what=what)
    return lines


def quality_freshness(result: dict, command: str | None = None) -> str:
    """Freshness of quality results (a summary, or the long protocol's curves): their runs'
    commits, or the last re-check's where it comes after all of them. A re-check recomputed the
    smoke protocol from scratch on later code and got exactly the committed numbers, so that code
    computes what the older runs computed."""
    command = rerun(command or result["command"])
    commits = result_commits(result)
    if not QUALITY_RECHECKS or not all(is_ancestor(c, QUALITY_RECHECKS[-1][1]) for c in commits):
        return freshness_text({"code_commits": commits}, "quality", command)
    recheck = QUALITY_RECHECKS[-1][1]
    if recheck in {c[:len(recheck)] for c in commits}:
        return freshness_text({"code_commits": commits}, "quality", command)
    made = (sentence("quality.made_by", commits=", ".join(f"`{c[:7]}`" for c in dict.fromkeys(commits)))
            if commits else sentence("quality.made_by_unrecorded"))
    return sentence("quality.judged_by_recheck", made=made, recheck=recheck,
                    freshness=freshness_text({"code_commits": [recheck]}, "quality", command))


# --- speed -----------------------------------------------------------------------------------
SPEED_ROWS = {
    "resmo-mocov3-w0": "training step, resmo MoCo v3", "resmo-mocov3-w1": "training step, resmo MoCo v3 + ResMo",
    "lightly-mocov3": "training step, MoCo v3 from LightlySSL blocks", "resmo-byol-w0": "training step, resmo BYOL",
    "resmo-byol-w1": "training step, resmo BYOL + ResMo", "lightly-byol": "training step, BYOL from LightlySSL blocks",
    "views-batched": "views only, batched path (main process)",
    "views-torchvision": "views only, torchvision per image (2 workers)",
}
SPEED_RATIOS = {
    "mocov3_resmo_over_lightly": "MoCo v3 step: resmo / LightlySSL blocks",
    "byol_resmo_over_lightly": "BYOL step: resmo / LightlySSL blocks",
    "mocov3_resmo_on_over_off": "MoCo v3 step: ResMo on / off (target ≥ 0.97)",
    "byol_resmo_on_over_off": "BYOL step: ResMo on / off (target ≥ 0.97)",
    "views_batched_over_model_step": "batched views / MoCo v3 + ResMo step",
    "views_torchvision_over_model_step": "torchvision views / MoCo v3 + ResMo step",
}


def speed_section(speed: dict | None) -> list[str]:
    lines = block("speed")
    if speed is None:
        return lines + block("speed.not_measured")
    rates, memory, ratios = speed["images_per_second_median"], speed["peak_rss_increase_mib"], speed["ratios"]
    m = speed["machine"]
    lines += block("speed.measured", command=speed["command"].strip(), machine=machine_line(m), threads=m["threads"],
                   load_before=m["load_average_1min_before"], load_after=m["load_average_1min_after"],
                   date=speed["date"], model=speed["model"], batch_size=speed["batch_size"], steps=speed["steps"],
                   warmup=speed["warmup"], rounds=speed["rounds"],
                   freshness=freshness_line(speed, "speed", speed["command"].strip()))
    lines += ["| measurement | images/s (median) | rounds | peak memory increase (MiB) |", "|---|---:|---|---:|"]
    for key, label in SPEED_ROWS.items():
        if key in rates:
            rounds = ", ".join(f"{sample['images_per_second']:.1f}" for sample in speed["samples"][key])
            lines.append(f"| {label} | {rates[key]:.1f} | {rounds} | {memory[key]:.0f} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    for key, label in SPEED_RATIOS.items():
        if key in ratios:
            lines.append(f"| {label} | {ratios[key]:.2f} |")
    on_off = [ratios[k] for k in ("mocov3_resmo_on_over_off", "byol_resmo_on_over_off") if k in ratios]
    verdict = "meets" if on_off and min(on_off) >= speed["targets"]["resmo_on_over_off_min"] else "does not meet"
    steps = [[r["images_per_second"] for r in runs] for key, runs in speed["samples"].items()
             if not key.startswith("views")]
    spread = max(((max(v) - min(v)) / statistics.median(v) for v in steps if v), default=0.0)
    tie = (f"; the ratios ({', '.join(f'{ratio:.2f}' for ratio in on_off)}) lie within that spread of 1, so on this "
           "machine ResMo on and off are tied, not measured apart"
           if on_off and all(abs(ratio - 1) < spread for ratio in on_off) else "")
    return lines + [""] + block("speed.reading", spread=f"{100 * spread:.0f}", verdict=verdict, tie=tie)


# --- view generation -------------------------------------------------------------------------
def views_section(views: dict | None) -> list[str]:
    lines = block("views")
    if views is None:
        return lines + block("views.not_measured")
    med, rounds = views["images_per_second_median"], views["images_per_second_rounds"]
    labels = {
        "torchvision": f"torchvision `transforms.v2` on PIL, `DataLoader(num_workers={views['torchvision_workers']})`",
        "batched_threads1": "batched (`BatchedViews` on uint8 batches), 1 torch thread",
        "batched_threads2": "batched, 2 torch threads",
        "kornia_threads1": "`kornia.augmentation`, same settings, 1 thread",
    }
    lines += block("views.measured", command=views["command"], machine=machine_line(views["machine"]),
                   load_before=views["load_average_before"], load_after=views["load_average_after"],
                   date=views["date"], recipe=views["recipe"], images=views["images"],
                   batch_size=views["batch_size"], freshness=freshness_line(views, "views", views["command"]))
    lines += ["| pipeline | images/s (median) | rounds | vs torchvision |", "|---|---:|---|---:|"]
    for key, label in labels.items():
        if key in med:
            ratio = med[key] / med["torchvision"]
            lines.append(f"| {label} | {med[key]:,.0f} | {', '.join(f'{v:,.0f}' for v in rounds[key])} "
                         f"| {ratio:.1f}x |")
    return lines + [""] + block("views.reading")


# --- GPU -------------------------------------------------------------------------------------
def gpu_section(throughput: dict | None, cifar: dict | None) -> list[str]:
    lines = block("gpu")
    if throughput is None:
        lines += block("gpu.throughput_not_measured")
    else:
        rates = throughput["images_per_second"]
        lines += block("gpu.throughput_measured", command=throughput["command"],
                       machine=machine_line(throughput["machine"]), date=throughput["date"],
                       model=throughput["model"], batch_size=throughput["batch_size"],
                       precision=throughput["precision"],
                       freshness=freshness_line(throughput, "gpu", throughput["command"]))
        lines += ["| mode | images/s |", "|---|---:|"]
        lines += [f"| {mode} | {rate:,.0f} |" for mode, rate in rates.items()]
        ratios = [f"{label}: {throughput[key]:.2f}" for key, label in (
            ("batched_over_model_only", "batched / model-only"), ("batched_over_lightly", "batched / LightlySSL"))
            if key in throughput]
        lines += ["", "; ".join(ratios) if ratios else "No ratio measured.", ""]
        if not throughput.get("complete", True):
            lines += block("gpu.throughput_incomplete", measured=", ".join(rates))
    if cifar is None:
        lines += block("gpu.cifar_not_measured")
    else:
        lines += block("gpu.cifar_measured", command=cifar["command"], machine=machine_line(cifar["machine"]),
                       date=cifar["date"], epochs=cifar["epochs"], seed=cifar["seed"],
                       ceiling=f"{cifar['model_only_images_per_second']:,.0f}",
                       freshness=freshness_line(cifar, "gpu", cifar["command"]))
        lines += ["| run | student kNN top-1 | teacher kNN top-1 | training images/s | / ceiling |",
                  "|---|---:|---:|---:|---:|"]
        for name, run in cifar["runs"].items():
            ratio = cifar["train_over_model_only"].get(name)
            lines.append(f"| {name} | {run['knn_top1_student']:.1f} | {run['knn_top1_teacher']:.1f} "
                         f"| {run['train_images_per_second'] or 0:,.0f} | "
                         f"{'-' if ratio is None else f'{ratio:.2f}'} |")
        lines.append("")
        if not cifar.get("complete", True):
            lines += block("gpu.cifar_incomplete", runs=len(cifar["runs"]))
    return lines


# --- quickstart ------------------------------------------------------------------------------
def quickstart_section(quick: dict | None) -> list[str]:
    lines = block("quickstart")
    if quick is None:
        return lines + block("quickstart.not_measured")
    settings = quick.get("settings", {"epochs": 10, "batch_size": 128})
    machine = quick["machine"]
    lines += block("quickstart.measured", command=quick["command"], epochs=settings["epochs"],
                   batch_size=settings["batch_size"], seed=quick["seed"], script=QUICKSTART,
                   machine=machine_line(machine), threads=machine["torch_threads"],
                   load_before=machine["load_average_1min"], load_after=quick["load_average_1min_after"],
                   date=quick["date"], freshness=freshness_line(quick, "quickstart", QUICKSTART),
                   wall_seconds=f"{quick['wall_seconds_total']:.1f}", student=f"{quick['knn_top1_student']:.1f}",
                   teacher=f"{quick['knn_top1_teacher']:.1f}", random_init=f"{quick['knn_top1_random_init']:.1f}",
                   margin=f"{quick['margin_points']:+.1f}", wall_seconds_max=quick["targets"]["wall_seconds_total_max"],
                   margin_min=quick["targets"]["margin_points_min"])
    plain = quick.get("plain")
    if plain:
        lines += block("quickstart.plain", command=quick["command"], weight=f"{settings.get('resmo_weight', 1):g}",
                       student=f"{quick['knn_top1_student']:.1f}", teacher=f"{quick['knn_top1_teacher']:.1f}",
                       gap_output=f"{quick['intra_gap']['output']:.3f}",
                       gap_projection=f"{quick['intra_gap']['projection']:.3f}", plain_command=plain["command"],
                       plain_student=f"{plain['knn_top1_student']:.1f}", plain_teacher=f"{plain['knn_top1_teacher']:.1f}",
                       plain_gap_output=f"{plain['intra_gap']['output']:.3f}",
                       plain_gap_projection=f"{plain['intra_gap']['projection']:.3f}")
    return lines


# --- loop overhead ----------------------------------------------------------------------------
def loop_section(loop: dict | None) -> list[str]:
    lines = block("loop")
    if loop is None:
        return lines + block("loop.not_measured")
    machine = loop["machine"]
    return lines + block(
        "loop.measured", command=loop["command"], rounds=loop["rounds"], machine=machine_line(machine),
        threads=machine["torch_threads"], load_before=machine["load_average_1min"],
        load_after=loop["load_average_1min_after"], date=loop["date"],
        freshness=freshness_line(loop, "loop", loop["command"]), loop=f"{loop['loop_median']:.1f}",
        bare=f"{loop['bare_median']:.1f}", ratio=f"{loop['ratio']:.3f}", target=loop["target_ratio"])


def long_section(curves: dict | None, summary: dict | None = None) -> list[str]:
    """The long protocol's curves; ``summary`` (its ``summary.json``) gives the runs' thread counts."""
    lines = block("long")
    if curves is None:
        return lines + block("long.not_measured")
    made = sum(len(arm["seeds"]) for arm in curves["arms"])  # runs of the arms (random init aside)
    total = made + len(curves["missing_runs"])
    lines += block("long.measured", runs_command=QUALITY_LONG_RUNS, command=curves["command"], date=curves["date"],
                   freshness=quality_freshness(curves, QUALITY_LONG_RUNS))
    if curves["missing_runs"]:
        lines += block("long.in_progress", made=made, total=total, missing=", ".join(curves["missing_runs"]))
    lines += ["| arm | seeds | last kNN epoch | student kNN | teacher kNN | teacher - student | intra gap (output) |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for arm in curves["arms"]:
        if not arm["seeds"]:
            continue
        knn = {name: arm["curves"][name][-1] if arm["curves"][name] else None
               for name in ("student", "teacher", "teacher_minus_student", "intra_gap_output")}
        lines.append(f"| {arm['label']} | {', '.join(map(str, arm['seeds']))} | "
                     f"{knn['student']['epoch'] if knn['student'] else '-'} | {_mean_std(knn['student'])} | "
                     f"{_mean_std(knn['teacher'])} | {_mean_std(knn['teacher_minus_student'], signed=True)} | "
                     f"{_mean_std(knn['intra_gap_output'], digits=3)} |")
    lines += [""] + block("long.effects")
    lines += ["| effect | encoder | " + " | ".join(f"epoch {e}" for e in _effect_epochs(curves)) + " |",
              "|---|---|" + "---:|" * len(_effect_epochs(curves))]
    for effect in curves["effects"]:
        by_epoch = {row["epoch"]: row for row in effect["by_epoch"]}
        if not by_epoch:
            continue
        cells = [_effect_cell(by_epoch.get(epoch)) for epoch in _effect_epochs(curves)]
        lines.append(f"| {effect['label']} | {effect['encoder']} | " + " | ".join(cells) + " |")
    lines += [""] + block("long.reading")
    lines += long_reading(curves, long_provenance(curves, summary))
    return lines + [""] + block("long.figures")


def long_provenance(curves: dict, summary: dict | None) -> str:
    """How many commits (and torch thread counts, from ``summary``) the long runs were made at."""
    commits = len(curves.get("code_commits", []))
    made = f"runs made at {commits} commit{'s' * (commits != 1)}" if commits else "runs' commits not recorded"
    threads = (summary or {}).get("torch_threads_per_run") or []
    if threads:
        counts = str(threads[-1]) if len(threads) == 1 else f"{', '.join(map(str, threads[:-1]))} and {threads[-1]}"
        made += f" and with {counts} torch thread{'s' * (threads != [1])}"
    return made


def long_reading(curves: dict, made: str) -> list[str]:
    """One bullet per ResMo arm and encoder: at how many measured epochs its interval excludes 0
    (and on which side), its effect at the first, middle and last kNN epochs, the sign of
    teacher - student of the plain arm there, the seeds and ``made`` (the runs' commits and
    thread counts); each labelled exploratory."""
    epochs = _effect_epochs(curves)
    plain = {arm["method"]: arm for arm in curves["arms"] if arm["weight"] == 0}
    bullets = []
    for effect in curves["effects"]:
        by_epoch = {row["epoch"]: row for row in effect["by_epoch"]}
        if not by_epoch:
            continue
        verdicts = [f"epoch {epoch}: {_verdict(by_epoch[epoch])}" for epoch in epochs if epoch in by_epoch]
        arm = next(a for a in curves["arms"] if a["key"] == effect["arm"])
        lead = {p["epoch"]: p["mean"] for p in plain[arm["method"]]["curves"]["teacher_minus_student"]}
        signs = [f"{epoch}: {lead[epoch]:+.1f}" for epoch in epochs if epoch in lead]
        above = [e for e, row in by_epoch.items() if row["ci95"] is not None and row["ci95"][0] > 0]
        below = [e for e, row in by_epoch.items() if row["ci95"] is not None and row["ci95"][1] < 0]
        sides = "; ".join(f"{side} 0 at epoch{'s' * (len(listed) > 1)} {', '.join(map(str, listed))}"
                          for side, listed in (("above", above), ("below", below)) if listed)
        seeds = sorted({len(row["per_seed"]) for row in by_epoch.values()})
        seeds = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}"
        bullets.append(sentence("long.reading_line", effect=effect["label"], encoder=effect["encoder"],
                                excluding=len(above) + len(below), measured=len(by_epoch), sides=f" ({sides})" if sides else "",
                                verdicts="; ".join(verdicts), signs=", ".join(signs),
                                seeds=seeds,
                                made=made))
    return bullets


def _verdict(row: dict) -> str:
    if row["ci95"] is None:
        return f"{row['mean']:+.2f}, one seed"
    low, high = row["ci95"]
    return f"{row['mean']:+.2f} [{low:+.2f}, {high:+.2f}]"


def _effect_epochs(curves: dict) -> list[int]:
    """Three epochs of the effects table: the first and last kNN epochs and the one between."""
    epochs = sorted({row["epoch"] for effect in curves["effects"] for row in effect["by_epoch"]})
    return sorted({epochs[0], epochs[len(epochs) // 2], epochs[-1]}) if epochs else []


def _effect_cell(row: dict | None) -> str:
    if row is None:
        return "-"
    if row["ci95"] is None:
        return f"{row['mean']:+.2f} (n={len(row['per_seed'])})"
    low, high = row["ci95"]
    return f"{row['mean']:+.2f} [{low:+.2f}, {high:+.2f}] (n={len(row['per_seed'])})"


def _mean_std(point: dict | None, *, digits: int = 1, signed: bool = False) -> str:
    if point is None:
        return "-"
    sign = "+" if signed else ""
    text = f"{point['mean']:{sign}.{digits}f}"
    return text + (f" ± {point['std']:.{digits}f}" if point["std"] is not None else "")


def before_after_section(compared: dict | None) -> list[str]:
    lines = block("before_after")
    if compared is None:
        return lines + block("before_after.not_measured")
    machine, commits, medians = compared["machine"], compared["commits"], compared["medians"]
    lines += block("before_after.measured", rounds=len(compared["runs"]["after"]), before=commits["before"][:7],
                   after=commits["after"][:7], command=compared["command"], machine=machine_line(machine),
                   load_before=machine["load_average_1min"], load_after=compared["load_average_1min_after"],
                   date=compared["date"], same="identical" if compared["same_results"] else "different",
                   freshness=freshness_line(compared, "before_after", compared["command"]))
    lines += ["| commit | wall time (median) | training images/s (median) |", "|---|---:|---:|",
              *(f"| `{commits[side][:7]}` ({side}) | {medians[side]['wall_seconds']:.1f} s | "
                f"{medians[side]['images_per_second']:.1f} |" for side in ("before", "after")), ""]
    return lines + block("before_after.ratio", ratio=f"{compared['ratio_images_per_second']:.3f}")


# --- detection transfer -----------------------------------------------------------------------
def paired_ap_line(arm: dict, base: dict) -> str:
    """One bullet: ``arm``'s AP minus ``base``'s, seed by seed, and their mean."""
    diffs = [a - b for a, b in zip(arm["AP"]["per_seed"], base["AP"]["per_seed"], strict=True)]
    return sentence("detection.paired", arm=arm["label"], base=base["label"], mean=f"{statistics.fmean(diffs):+.2f}",
                    per_seed=", ".join(f"{d:+.2f}" for d in diffs))


def without_out_folder(command: str, placeholder: str = "SCENES_FOLDER") -> str:
    """``command`` with the folder after ``--out`` replaced by ``placeholder``: the docs show a
    command a reader can run on their machine, not the path it had on the benchmark's."""
    words = shlex.split(command)
    for i, word in enumerate(words[:-1]):
        if word == "--out":
            words[i + 1] = placeholder
    return shlex.join(words)


def stems_lines(stems: dict) -> list[str]:
    """The students' stems (``detection_stems.py``) beside a ResNet-18 at init: one line each."""
    init = stems["init"]
    measured = (stems.get("code") or {}).get("commit")
    lines = block("detection.stems", command=stems["command"], at=f" at `{measured[:7]}`" if measured else "",
                  date=stems["date"],
                  commits=", ".join(f"`{c[:7]}`" for c in stems["steps_code_commits"]) or "no recorded commit",
                  init_norm=f"{init['conv1_norm']:.2f}", init_variance=f"{init['bn1_running_var']:.1f}")
    for arm in stems["arms"].values():
        lines.append(sentence("detection.stem", arm=arm["label"], norms=", ".join(f"{v:.2f}" for v in arm["conv1_norm"]),
                              variances=", ".join(f"{v:.1f}" for v in arm["bn1_running_var"])))
    return lines + [""]


def detection_section(summary: dict | None, stems: dict | None = None) -> list[str]:
    lines = block("detection")
    if summary is None:
        return lines + block("detection.not_measured")
    b, scenes = summary["budget"], summary["scenes"]
    lines += block(
        "detection.measured", scenes_command=without_out_folder(scenes["command"]), train=scenes["images"]["train"],
        test=scenes["images"]["test"], canvas=b["canvas"], objects=f"{scenes['objects'][0]}-{scenes['objects'][1]}",
        unlabelled=scenes["images"]["unlabelled"], pretrain_epochs=b["pretrain_epochs"], batch_size=b["batch_size"],
        pretrain_size=b["pretrain_size"], optimizer=b["pretrain_optimizer"].upper(),
        lr=f"{b['pretrain_lr_per_256']:g}", weight_decay=f"{b['pretrain_weight_decay']:g}",
        momentum=f"{b['teacher_momentum']:g}", encoder=b["encoder"], detect_epochs=f"{b['detect_epochs']:g}",
        detect_batch_size=b["detect_batch_size"], rois=b["rois_per_image"], proposals=b["proposals"],
        detector={"c4": "R-C4", "fpn": "+ FPN"}[b.get("head", "fpn")],
        seeds=", ".join(map(str, b["seeds"])), command=summary["command"], date=summary["date"],
        machine=machine_line(summary["machine"]), freshness=freshness_line(summary, "detection", summary["command"]))
    lines += ["| arm | AP | AP50 | AP75 |", "|---|---:|---:|---:|"]
    arms = summary["arms"]
    for arm in arms.values():
        lines.append(f"| {arm['label']} | " + " | ".join(fmt(arm[m], 2) for m in ("AP", "AP50", "AP75")) + " |")
    lines.append("")
    pairs = [("densecl-w1", "densecl-w0"), ("mocov3-w1", "mocov3-w0"),
             *((key, "random-init") for key in arms if key != "random-init")]
    lines += [paired_ap_line(arms[arm], arms[base]) for arm, base in pairs]
    best = max((key for key in arms if key != "random-init"), key=lambda key: arms[key]["AP"]["mean"])
    ahead = arms[best]["AP"]["mean"] - arms["random-init"]["AP"]["mean"]
    lines += [sentence("detection.best", arm=arms[best]["label"], ahead=f"{ahead:+.2f}",
                       verdict="ahead" if ahead > 0 else "not ahead"), ""]
    if stems is not None:
        lines += stems_lines(stems)
    return lines + block("detection.commands") + ["```bash", *summary["pretrain_commands"].values(),
                                                  summary["detect_command"], "```", ""]


# --- dense probe -------------------------------------------------------------------------------
def interval_text(interval: dict) -> str:
    """``+1.23 [low, high]`` (a paired mean and its 95 % t-interval; the mean alone for one seed)."""
    if interval["low"] is None:
        return f"{interval['mean']:+.2f}"
    return f"{interval['mean']:+.2f} [{interval['low']:+.2f}, {interval['high']:+.2f}]"


#: the dense protocols shown, newest design first: (protocol, its heading fragment, exploratory)
DENSE_PROTOCOLS = (("densecl-confirm", "dense.densecl_confirm", False), ("densecl-pilot", "dense.densecl_pilot", True),
                   ("confirm", "dense.confirm", False), ("objects-pilot", "dense.objects_pilot", True),
                   ("pilot", "dense.pilot", True))


def dense_section(summaries: dict[str, dict | None]) -> list[str]:
    """The dense probe on CIFAR-10 scenes (``dense_scenes.py``): each protocol's table (its
    heading fragment) with mIoU per arm and paired intervals, newest design first."""
    lines = block("dense")
    if not any(summaries.values()):
        return lines + block("dense.not_measured")
    for protocol, fragment, exploratory in DENSE_PROTOCOLS:
        if summaries.get(protocol) is not None:
            lines += block(fragment) + dense_table(summaries[protocol], exploratory)
    return lines


def dense_table(summary: dict, exploratory: bool) -> list[str]:
    """One dense protocol's table and paired intervals."""
    lines = []
    b = summary["budget"]
    objects = "max_images" in b["pretrain"]
    pretraining = sentence("dense.pretraining_objects" if objects else "dense.pretraining_scenes",
                           pretrain_command=next(iter(summary["pretrain_commands"].values())))
    lines += block("dense.measured", pretraining=pretraining, stages=b["stages"], image_size=b["image_size"],
                   epochs=b["epochs"], split=b.get("eval_split", "test"), seeds=", ".join(map(str, b["seeds"])),
                   command=summary["command"], date=summary["date"], machine=machine_line(summary["machine"]))
    lines += ["| arm | mIoU | pixel accuracy |", "|---|---:|---:|"]
    for arm in summary["arms"].values():
        lines.append(f"| {arm['label']} | {fmt(arm['mIoU'], 2)} | {fmt(arm['pixel_accuracy'], 2)} |")
    lines += [""]
    intervals = summary["pretrained_minus_random_init"]["mIoU"].values()
    if all(interval["low"] is None for interval in intervals):
        lines += block("dense.one_seed")
    elif not any(interval["low"] is not None and interval["low"] > 0 for interval in intervals):
        lines += block("dense.no_separation")
    lines += block("dense.paired")
    for arm, interval in summary["pretrained_minus_random_init"]["mIoU"].items():
        lines.append(sentence("dense.over_random_init", arm=summary["arms"][arm]["label"],
                              interval=interval_text(interval)))
    for method, interval in summary["resmo_minus_plain"]["mIoU"].items():
        lines.append(sentence("dense.resmo_effect", arm=summary["arms"][f"{method}-w0"]["label"],
                              interval=interval_text(interval),
                              label="exploratory (the pilot)" if exploratory else
                              "descriptive; confirmed or not by the pre-registered analysis (n, effect, interval, p_holm: benchmarks/results/preregistered/)"))
    return lines + [""]


def teacher_leads_section(records: list[dict]) -> list[str]:
    """The teacher-leads search (``teacher_leads.py``): one row per run, and per schedule with
    several seeds the paired interval of teacher minus student at the end."""
    lines = block("leads")
    if not records:
        return lines + block("leads.not_measured")
    lines += ["| schedule | seed | training images | epochs | batch | constant lr | momentum | student | teacher "
              "| teacher − student, end | best | date, commit |",
              "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    by_schedule: dict[str, list[dict]] = {}
    for record in sorted(records, key=lambda r: (r["schedule"], r["seed"])):
        settings, last = record["settings"], record["knn_history"][-1]
        lines.append(f"| {record['schedule']} | {record['seed']} | {record['train_images']} "
                     f"| {settings.get('epochs', 8)} | {settings.get('batch_size', 256)} "
                     f"| {'yes' if settings['constant_lr'] else 'no'} | {settings['momentum']} "
                     f"| {last['student']:.1f} | {last['teacher']:.1f} | {record['teacher_minus_student']:+.1f} "
                     f"| {record['best_teacher_minus_student']:+.1f} | {record['date']}, "
                     f"`{(record['code'].get('commit') or '?')[:7]}` |")
        by_schedule.setdefault(record["schedule"], []).append(record)
    lines.append("")
    for schedule, runs in by_schedule.items():
        if len(runs) < 2:
            continue
        test = paired_test([r["knn_history"][-1]["teacher"] for r in runs],
                           [r["knn_history"][-1]["student"] for r in runs])
        low, high = test["ci95"]
        verdict = ("the teacher leads (interval above 0)" if low > 0 else
                   "the teacher trails (interval below 0)" if high < 0 else "not told apart from 0")
        lines.append(sentence("leads.check", schedule=schedule, seeds=", ".join(str(r["seed"]) for r in runs),
                              mean=f"{test['mean_difference']:+.2f}", low=f"{low:+.2f}", high=f"{high:+.2f}",
                              verdict=verdict))
    return lines + [""]


def render(results: Path = RESULTS) -> str:
    sections = [
        *quality_section(load(results / "quality" / "full" / "summary.json"),
                         load(results / "quality" / "smoke" / "summary.json")),
        *preregistered_section(results / "preregistered",
                               lambda_choice=load(results / "quality" / "confirm" / "lambda_choice.json")),
        *confirm_runs_section(load(results / "quality" / "confirm" / "summary.json")),
        *long_section(load(results / "quality" / "long" / "curves.json"),
                      load(results / "quality" / "long" / "summary.json")),
        *teacher_leads_section([json.loads(path.read_text())
                                for path in sorted((results / "teacher_leads").glob("*.json"))]),
        *detection_section(load(results / "detection" / "full" / "summary.json"),
                           load(results / "detection" / "full" / "stems.json")),
        *dense_section({protocol: load(results / "dense" / protocol / "summary.json")
                        for protocol, _, _ in DENSE_PROTOCOLS}),
        *speed_section(load(results / "speed_cpu.json")),
        *views_section(load(results / "view_generation.json")),
        *gpu_section(load(results / "gpu_throughput.json"), load(results / "gpu_cifar10.json")),
        *quickstart_section(load(results / "quickstart.json")),
        *loop_section(load(results / "loop_overhead.json")),
        *before_after_section(load(results / "loop_before_after.json")),
    ]
    return TEMPLATE.fill("page", sections="\n".join(sections)).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render_docs", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    args.out.write_text(render(args.results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
