"""Write docs/benchmarks.md from the JSON results in benchmarks/results/.

    python benchmarks/render_docs.py          # after any benchmark script

Every number in docs/benchmarks.md comes from a JSON file read here; a result that does
not exist yet is reported as not measured, with the command that measures it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

from provenance import freshness_text, is_ancestor, result_commits

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
RESULTS = HERE / "results"
DOC = PROJECT / "docs" / "benchmarks.md"
METHOD_TITLES = {"mocov3": "MoCo v3", "byol": "BYOL"}
EFFECT_METRICS = {"knn_student": "student kNN", "knn_teacher": "teacher kNN",
                  "linear_student": "student linear", "linear_teacher": "teacher linear"}


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


def budget_text(summary: dict) -> str:
    b = summary["budget"]
    train = "all 50,000" if b["train_per_class"] is None else f"{10 * b['train_per_class']:,}"
    test = "all 10,000" if b["test_per_class"] is None else f"{10 * b['test_per_class']:,}"
    return (
        f"`resnet_small` width {b['width']} (four stages of one basic block, 3x3 stem, no pooling "
        f"before the stages), 32 px, {train} CIFAR-10 training images, {b['epochs']} epoch(s), batch "
        f"{b['batch_size']}, AdamW (lr {b['lr']}, weight decay {b['weight_decay']}, none on norms and biases, "
        f"{b['warmup_epochs']} warm-up epochs then cosine), teacher momentum {b['momentum']} -> 1 (cosine), heads "
        f"hidden {b['hidden_dim']} / out {b['out_dim']}, MoCo v3 temperature {b['temperature']}; views: each "
        "method's 32 px recipe made by the batched path. Evaluation on the frozen backbones: kNN (T 0.07) and "
        f"linear probe (L-BFGS, {b['linear_steps']} steps) with {train} training images as bank / "
        f"probe set and {test} test images as queries; intra gap = 1 − mean cos(student(x), teacher(x)) on "
        "the test images (`resmo gap`)."
    )


def paired_verdict(effect: dict) -> str:
    """Whether per-seed differences are told apart from zero: their 95 % confidence interval
    (Student's t over the seeds) excludes zero."""
    if effect.get("ci95") is None:
        return "one seed: no noise estimate"
    low, high = effect["ci95"]
    if low > 0 or high < 0:
        return f"95 % interval [{low:+.1f}, {high:+.1f}] excludes 0: consistent across seeds"
    return f"95 % interval [{low:+.1f}, {high:+.1f}] includes 0: not told apart from noise"


def quality_findings(summary: dict) -> list[str]:
    checks = summary["checks"]
    lines = []
    margin = checks.get("margin_over_random_init")
    if margin:
        verdict = "meets" if margin["met"] else "does not meet"
        lines.append(f"- Plain MoCo v3's student is {margin['points']:.1f} points above a random encoder "
                     f"(kNN top-1); this {verdict} the protocol's bar of {margin['target']:.0f} points.")
    arms = {a["key"]: a for a in summary["arms"]}
    for effect in checks.get("resmo_effects", {}).values():
        control = arms[effect["control"]]["label"] if effect["control"] in arms else effect["control"]
        for metric, name in EFFECT_METRICS.items():
            if metric in effect["metrics"]:
                e = effect["metrics"][metric]
                lead = f"- {effect['label']} against {control}, paired by seed," if metric == "knn_student" else " "
                lines.append(f"{lead} {name} top-1: {signed(e['mean'])} points (per seed: "
                             f"{', '.join(signed(v) for v in e['per_seed'])}); {paired_verdict(e)}.")
    for method, title in METHOD_TITLES.items():
        if f"{method}-w0" in arms and f"{method}-w1" in arms:
            g0 = arms[f"{method}-w0"]["metrics"]["intra_gap_output"]["mean"]
            g1 = arms[f"{method}-w1"]["metrics"]["intra_gap_output"]["mean"]
            if g0 is not None and g1 is not None:
                lines.append(f"- {title}: the intra gap at the output (the quantity ResMo minimises) goes from "
                             f"{g0:.3f} without ResMo to {g1:.3f} with it.")
    lines += single_seed_lines(summary, arms)
    for method, parity in checks.get("peer_parity", {}).items():
        verdict = "at least as accurate within noise" if parity["at_least_as_accurate_within_noise"] else \
            "less accurate than the LightlySSL build beyond noise"
        noise = "" if parity["noise_std"] is None else f"spread {parity['noise_std']:.1f}, "
        verdict += f" ({noise}from {parity['noise_source']})"
        lines.append(f"- Peer parity, {method}: resmo {parity['resmo_knn_student']:.1f} vs LightlySSL blocks "
                     f"{parity['lightly_knn_student']:.1f} (student kNN, {signed(parity['resmo_minus_lightly'])}): "
                     f"{verdict}.")
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
            lines.append(f"- {name}, seed 0, student kNN top-1: {listed}.")
    if lines and spread is not None:
        lines.append(f"  One seed each: differences below about {2 * spread:.1f} points (twice the plain MoCo v3 "
                     "seed-to-seed spread) are not evidence either way.")
    return lines


def quality_section(full: dict | None, smoke: dict | None) -> list[str]:
    lines = ["## Quality on real CIFAR-10 (CPU)", "",
             "ResMo against the plain method, and resmo's methods against the same methods built from",
             "LightlySSL's blocks (`benchmarks/lightly_baselines.py`), on the real CIFAR-10 images of",
             "`../shared/data`. Arms, seeds and budgets: `benchmarks/protocol.py`; each run's result is a JSON",
             "file under `benchmarks/results/quality/<protocol>/runs/`, the table below is their `summary.json`.",
             "The LightlySSL builds share the backbone, views (same seeds), optimizer, schedules, head sizes and",
             "epochs with resmo's; LightlySSL has no MoCo v3 loss, so that build uses its `NTXentLoss`, whose",
             "negatives also include the other queries (SimCLR-style), and its projection head ends in an",
             "affine batch norm (MoCo v3's has none).", ""]
    if full is None:
        lines += ["The full protocol has not been run yet: `python benchmarks/quality_cifar10.py`.", ""]
    else:
        threads = "/".join(str(t) for t in full.get("torch_threads_per_run", [])) or "?"
        lines += [f"Command: `{full['command']}` (resumable; {full.get('jobs') or '?'} runs at a time, "
                  f"{threads} torch thread(s) each). Machine: {machine_line(full['machine'])}. "
                  f"Runs made on {', '.join(full.get('run_dates', [])) or full['date']}. "
                  f"Sum of the runs' wall times: {full['cpu_seconds_runs'] / 3600:.1f} h.", "",
                  f"Budget: {budget_text(full)}", "", quality_freshness(full), ""]
        if not full["complete"]:
            lines += [f"**Incomplete**: missing runs {', '.join(full['missing_runs'])}.", ""]
        lines += quality_table(full) + [""]
        lines += ["Training images/s are each run's own loop, measured while another run shared the machine: "
                  "they are not a speed comparison (the speed section is).", ""]
        lines += ["Paired effects compare runs of the same seed (same initialisation, data order and views); "
                  "the interval is the 95 % confidence interval of the mean per-seed difference (Student's t "
                  "over the seeds).", ""]
        lines += quality_findings(full) + [""]
        lines += ["This is a short CPU budget (a small network, a few epochs); the published ResMo gains "
                  "come from ResNet-18 runs of hundreds of epochs. The table says what ResMo does at this "
                  "scale, not whether those gains reproduce; `benchmarks/gpu_cifar10.py` is the step towards "
                  "that on a GPU.", ""]
        lines += ["![kNN top-1 per arm](figures/quality_cifar10.png)", "",
                  f"Figure: student (filled) and teacher (open) kNN top-1 per run, bar = mean over seeds; "
                  f"dashed = random init. Made by `{full['command']}` on {full['date']} "
                  f"({machine_line(full['machine'])}).", ""]
        commands = {a["label"]: a["command"] for a in full["arms"] if a.get("command")}
        if commands:
            first = next(iter(commands.items()))
            lines += [f"Each resmo run is one command, e.g. {first[0]}:", "", "```bash", first[1], "```", ""]
    lines += ["### Smoke protocol", ""]
    if smoke is None:
        lines += ["Not run yet: `python benchmarks/quality_cifar10.py --smoke`.", ""]
    else:
        b = smoke["budget"]
        lines += [f"`{smoke['command']}` checks in minutes that the whole protocol runs; rerunning it "
                  "reproduces this table's shape. Its numbers mean nothing: width "
                  f"{b['width']}, {10 * b['train_per_class']} training and {10 * b['test_per_class']} test images, "
                  f"{b['epochs']} epoch(s), batch {b['batch_size']}, otherwise as above. "
                  f"Date: {smoke['date']}, {machine_line(smoke['machine'])}.", "", quality_freshness(smoke), ""]
        lines += quality_table(smoke) + [""]
    if QUALITY_RECHECKS:
        lines += ["Re-checks: the smoke protocol recomputed from scratch on later code than the results "
                  "they vouch for (the long protocol's runs are judged by the last one).", ""]
    for date, commit, what in QUALITY_RECHECKS:
        lines += [f"Re-checked on {date} at commit `{commit}`: {what}.", ""]
    return lines


def quality_freshness(result: dict, command: str | None = None) -> str:
    """Freshness of quality results (a summary, or the long protocol's curves): their runs'
    commits, or the last re-check's where it comes after all of them. A re-check recomputed the
    smoke protocol from scratch on later code and got exactly the committed numbers, so that code
    computes what the older runs computed."""
    command = command or result["command"]
    commits = result_commits(result)
    if not QUALITY_RECHECKS or not all(is_ancestor(c, QUALITY_RECHECKS[-1][1]) for c in commits):
        return freshness_text({"code_commits": commits}, "quality", command)
    recheck = QUALITY_RECHECKS[-1][1]
    if recheck in {c[:len(recheck)] for c in commits}:
        return freshness_text({"code_commits": commits}, "quality", command)
    made = (f"The runs were made by the code at {', '.join(f'`{c[:7]}`' for c in dict.fromkeys(commits))}"
            if commits else "The runs name no commit (made before results recorded one)")
    return (f"{made}; judged by the last re-check (listed after the smoke table), at `{recheck}`: "
            + freshness_text({"code_commits": [recheck]}, "quality", command))


#: Re-runs on later code that reproduced the committed quality results (date, commit, what).
QUALITY_RECHECKS = [
    ("2026-12-02", "1abe811", "`python benchmarks/quality_cifar10.py --smoke` with `--results-dir` and "
     "`--work-dir` in empty folders recomputed every smoke run from scratch and gave exactly the committed "
     "numbers for all 19 runs; the full protocol's runs go through the same code paths (views, AdamW, "
     "MoCo v3 / BYOL, the training loop), so its table of the time (runs of 2026-11-28, since re-run at "
     "`c4d1e4e`) described that code too"),
    ("2026-12-02", "1e5cd60", "the smoke protocol recomputed from scratch in empty folders again gave exactly "
     "the committed numbers for all 19 runs (three times: at ffb46bf, 4942ac6 and 1e5cd60; the smoke table above "
     "now holds the last runs, with their commit)"),
    ("2026-12-02", "e93e266", "after the declarative view spec, the pydantic config layer and DenseCL's changes to the "
     "method base class, the smoke protocol recomputed from scratch gave exactly the committed numbers for all 19 "
     "runs again (the smoke table above holds these runs; their working tree differed from e93e266 only in the "
     "README, the command line's help and tests)"),
    ("2026-12-02", "788c9ec", "after the training loop moved from Lightning's Trainer to the explicit loop on "
     "Lightning Fabric (resmo.train.loop), the smoke protocol recomputed from scratch gave exactly the committed "
     "numbers for all 19 runs again"),
    ("2026-12-02", "7dbad81", "after the loop's review fixes (learning rate logged for its own step, images/s of "
     "a resumed epoch, decisions taken by all processes together), the smoke protocol recomputed from scratch gave "
     "exactly the committed numbers for all 19 runs again (the smoke table above holds these runs)"),
    ("2026-12-03", "4f4726c", "on a new machine, the smoke protocol recomputed from scratch at `7dbad81` (the re-check "
     "before) and at `4f4726c` gave identical numbers for all 19 runs; both differ from the numbers the earlier "
     "machine gave in rounding only (intra gaps in the fourth digit, kNN and linear top-1 by 0.5 points, one "
     "image of 200), and so do the two LightlySSL runs, which resmo's code does not train: the machine changed, "
     "not what the code computes (the smoke table above holds the `4f4726c` runs)"),
]


# --- speed -----------------------------------------------------------------------------------
def speed_section(speed: dict | None) -> list[str]:
    lines = ["## Speed on this CPU: resmo vs LightlySSL, data vs model, ResMo on vs off", ""]
    if speed is None:
        return lines + ["Not measured yet: `python benchmarks/speed_cpu.py`.", ""]
    rates, memory, ratios = speed["images_per_second_median"], speed["peak_rss_increase_mib"], speed["ratios"]
    m = speed["machine"]
    lines += [f"Command: `{speed['command'].strip()}`. Machine: {machine_line(m)}, {m['threads']} torch threads, "
              f"load average {m['load_average_1min_before']} before / {m['load_average_1min_after']} after. "
              f"Date: {speed['date']}. Model: {speed['model']}, batch {speed['batch_size']}; "
              f"{speed['steps']} timed steps after {speed['warmup']} warm-up, median of {speed['rounds']} rounds, "
              "each measurement in a fresh process.", "",
              freshness_text(speed, "speed", speed["command"].strip()), "",
              "| measurement | images/s (median) | rounds | peak memory increase (MiB) |", "|---|---:|---|---:|"]
    names = {
        "resmo-mocov3-w0": "training step, resmo MoCo v3", "resmo-mocov3-w1": "training step, resmo MoCo v3 + ResMo",
        "lightly-mocov3": "training step, MoCo v3 from LightlySSL blocks", "resmo-byol-w0": "training step, resmo BYOL",
        "resmo-byol-w1": "training step, resmo BYOL + ResMo", "lightly-byol": "training step, BYOL from LightlySSL blocks",
        "views-batched": "views only, batched path (main process)",
        "views-torchvision": "views only, torchvision per image (2 workers)",
    }
    for key, label in names.items():
        if key in rates:
            rounds = ", ".join(f"{sample['images_per_second']:.1f}" for sample in speed["samples"][key])
            lines.append(f"| {label} | {rates[key]:.1f} | {rounds} | {memory[key]:.0f} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    ratio_names = {
        "mocov3_resmo_over_lightly": "MoCo v3 step: resmo / LightlySSL blocks",
        "byol_resmo_over_lightly": "BYOL step: resmo / LightlySSL blocks",
        "mocov3_resmo_on_over_off": "MoCo v3 step: ResMo on / off (target ≥ 0.97)",
        "byol_resmo_on_over_off": "BYOL step: ResMo on / off (target ≥ 0.97)",
        "views_batched_over_model_step": "batched views / MoCo v3 + ResMo step",
        "views_torchvision_over_model_step": "torchvision views / MoCo v3 + ResMo step",
    }
    for key, label in ratio_names.items():
        if key in ratios:
            lines.append(f"| {label} | {ratios[key]:.2f} |")
    on_off = [ratios[k] for k in ("mocov3_resmo_on_over_off", "byol_resmo_on_over_off") if k in ratios]
    verdict = "meets" if on_off and min(on_off) >= speed["targets"]["resmo_on_over_off_min"] else "does not meet"
    steps = [[r["images_per_second"] for r in runs] for key, runs in speed["samples"].items()
             if not key.startswith("views")]
    spread = max(((max(v) - min(v)) / statistics.median(v) for v in steps if v), default=0.0)
    lines += ["", f"Between rounds, the same training step varied by up to {100 * spread:.0f} % (see rounds): "
              "step ratios closer to 1 than that are ties, not differences.",
              "", f"By the medians, ResMo on / off {verdict} the target of at most 3 % slower on this machine. "
              "By design, "
              "ResMo at the output level reuses the student and teacher outputs the method already computes "
              "(both views go through both networks): one cosine per view pair, no extra forward pass. "
              "The per-round samples are in the JSON (`samples`).", ""]
    return lines


# --- view generation -------------------------------------------------------------------------
def views_section(views: dict | None) -> list[str]:
    lines = ["## View generation on this CPU", ""]
    if views is None:
        return lines + ["Not measured yet: `python benchmarks/view_generation.py --kornia`.", ""]
    med, rounds = views["images_per_second_median"], views["images_per_second_rounds"]
    labels = {
        "torchvision": f"torchvision `transforms.v2` on PIL, `DataLoader(num_workers={views['torchvision_workers']})`",
        "batched_threads1": "batched (`BatchedViewRecipe` on uint8 batches), 1 torch thread",
        "batched_threads2": "batched, 2 torch threads",
        "kornia_threads1": "`kornia.augmentation`, same settings, 1 thread",
    }
    lines += [f"Command: `{views['command']}`. Machine: {machine_line(views['machine'])}; load average "
              f"{views['load_average_before']} before, {views['load_average_after']} after. Date: {views['date']}. "
              f"Recipe: {views['recipe']}, {views['images']} in-memory images, batches of {views['batch_size']}.", "",
              freshness_text(views, "views", views["command"]), "",
              "| pipeline | images/s (median) | rounds | vs torchvision |", "|---|---:|---|---:|"]
    for key, label in labels.items():
        if key in med:
            ratio = med[key] / med["torchvision"]
            lines.append(f"| {label} | {med[key]:,.0f} | {', '.join(f'{v:,.0f}' for v in rounds[key])} "
                         f"| {ratio:.1f}x |")
    lines += ["", "What makes the batched path fast on a CPU: crops and resizes as two batched matrix products "
              "per view group (torchvision's antialiased resize semantics), colour ops on the whole batch with "
              "per-sample factors and no per-pixel `torch.where`, and temporaries reused between batches. "
              "kornia was measured first, as DESIGN.md asks; its crop-and-resize also does not follow "
              "torchvision's pixel-area convention. On a shared 2-core machine two torch threads can be slower "
              "than one (they wait for each other at every op): use `OMP_NUM_THREADS=1` there.",
              "", "Parity with torchvision is tested, not benchmarked (`tests/data/test_batched_views.py`: each op "
              "against torchvision's functional op, and crop, flip, jitter, grayscale, blur and solarisation "
              "statistics at fixed seeds).", ""]
    return lines


# --- GPU -------------------------------------------------------------------------------------
def gpu_section(throughput: dict | None, cifar: dict | None) -> list[str]:
    lines = ["## On a GPU", "",
             "Both scripts rewrite their JSON after every measurement, with `\"complete\": false` until the last, "
             "so an interrupted run keeps what it measured; `gpu_cifar10.py`'s docstring says how to run them "
             "where only the repository travels (`--archive`, `--out`).", ""]
    if throughput is None:
        lines += ["End-to-end throughput against the model-only ceiling and against LightlySSL: not measured "
                  "yet (no GPU was available). Command, on one H100:", "", "```bash",
                  "python benchmarks/gpu_throughput.py --torchvision-workers 8 --lightly-workers 8", "```", ""]
    else:
        rates = throughput["images_per_second"]
        lines += [f"Command: `{throughput['command']}`. Machine: {machine_line(throughput['machine'])}. "
                  f"Date: {throughput['date']}. {throughput['model']}, batch {throughput['batch_size']}, "
                  f"precision {throughput['precision']}.", "",
                  freshness_text(throughput, "gpu", throughput["command"]), "", "| mode | images/s |", "|---|---:|"]
        lines += [f"| {mode} | {rate:,.0f} |" for mode, rate in rates.items()]
        ratios = [f"{label}: {throughput[key]:.2f}" for key, label in (
            ("batched_over_model_only", "batched / model-only"), ("batched_over_lightly", "batched / LightlySSL"))
            if key in throughput]
        lines += ["", "; ".join(ratios) if ratios else "No ratio measured.", ""]
        if not throughput.get("complete", True):
            lines += [f"Incomplete: the run stopped after {', '.join(rates)}.", ""]
    if cifar is None:
        lines += ["MoCo v3 with and without ResMo on CIFAR-10 (ResNet-18, sized for 8 minutes on one H100): "
                  "not measured yet. "
                  "Commands, on one H100 (`--archive PATH/cifar10-jpeg.tar.gz` where `../shared/data` is absent):",
                  "", "```bash", "python benchmarks/gpu_cifar10.py --tiny    # the whole flow in seconds, first",
                  "python benchmarks/gpu_cifar10.py", "```", ""]
    else:
        lines += [f"Command: `{cifar['command']}`. Machine: {machine_line(cifar['machine'])}. Date: {cifar['date']}. "
                  f"{cifar['epochs']} epochs, seed {cifar['seed']}. Model-only ceiling: "
                  f"{cifar['model_only_images_per_second']:,.0f} images/s.", "",
                  freshness_text(cifar, "gpu", cifar["command"]), "",
                  "| run | student kNN top-1 | teacher kNN top-1 | training images/s | / ceiling |",
                  "|---|---:|---:|---:|---:|"]
        for name, run in cifar["runs"].items():
            ratio = cifar["train_over_model_only"].get(name)
            lines.append(f"| {name} | {run['knn_top1_student']:.1f} | {run['knn_top1_teacher']:.1f} "
                         f"| {run['train_images_per_second'] or 0:,.0f} | "
                         f"{'-' if ratio is None else f'{ratio:.2f}'} |")
        lines.append("")
        if not cifar.get("complete", True):
            lines += [f"Incomplete: the script stopped after {len(cifar['runs'])} run(s).", ""]
    return lines


# --- quickstart ------------------------------------------------------------------------------
def quickstart_section(quick: dict | None) -> list[str]:
    lines = ["## Quickstart", ""]
    if quick is None:
        return lines + ["Not measured yet: `python benchmarks/quickstart.py`.", ""]
    settings = quick.get("settings", {"epochs": 10, "batch_size": 128})
    lines += [
        f"`{quick['command']}` with no arguments (MoCo v3 + ResMo, `resnet_small` width 8, "
        f"{settings['epochs']} epochs of batch {settings['batch_size']} on 4,000 generated 32 px textures, "
        f"seed {quick['seed']}). Measured by `python benchmarks/quickstart.py`. "
        f"Machine: {machine_line(quick['machine'])}, {quick['machine']['torch_threads']} threads, load average "
        f"{quick['machine']['load_average_1min']} before / {quick['load_average_1min_after']} after. "
        f"Date: {quick['date']}.", "", freshness_text(quick, "quickstart", "python benchmarks/quickstart.py"), "",
        "| wall time (s) | student kNN top-1 | teacher kNN top-1 | random-init kNN top-1 | margin (points) |",
        "|---:|---:|---:|---:|---:|",
        f"| {quick['wall_seconds_total']:.1f} | {quick['knn_top1_student']:.1f} | {quick['knn_top1_teacher']:.1f} "
        f"| {quick['knn_top1_random_init']:.1f} | {quick['margin_points']:+.1f} |", "",
        f"Targets: at most {quick['targets']['wall_seconds_total_max']} s and a margin of at least "
        f"{quick['targets']['margin_points_min']} points.", ""]
    plain = quick.get("plain")
    if plain:
        lines += [
            "ResMo against the plain method at the same settings (one seed: a pointer, not a "
            "measured effect; the quality protocol above has seeds and intervals):", "",
            "| run | student kNN top-1 | teacher kNN top-1 | intra gap, output | intra gap, projection |",
            "|---|---:|---:|---:|---:|",
            f"| `{quick['command']}` (ResMo weight {settings.get('resmo_weight', 1):g}) | "
            f"{quick['knn_top1_student']:.1f} | {quick['knn_top1_teacher']:.1f} | "
            f"{quick['intra_gap']['output']:.3f} | {quick['intra_gap']['projection']:.3f} |",
            f"| `{plain['command']}` | {plain['knn_top1_student']:.1f} | {plain['knn_top1_teacher']:.1f} | "
            f"{plain['intra_gap']['output']:.3f} | {plain['intra_gap']['projection']:.3f} |", ""]
    return lines


# --- loop overhead ----------------------------------------------------------------------------
def loop_section(loop: dict | None) -> list[str]:
    lines = ["## Training-loop overhead", ""]
    if loop is None:
        return lines + ["Not measured yet: `python benchmarks/loop_overhead.py`.", ""]
    machine = loop["machine"]
    return lines + [
        "`resmo pretrain`'s own images/s (the whole loop: non-finite check, logging, signal check, "
        "...) against a hand-written forward-backward-optimizer-EMA step on the same loader, views, "
        "method, optimizer and threads (MoCo v3 + ResMo, quickstart model, batch 64, batched "
        f"views). Measured by `{loop['command']}`, {loop['rounds']} rounds taking turns, first epoch "
        f"of each run dropped. Machine: {machine_line(machine)}, {machine['torch_threads']} threads, "
        f"load average {machine['load_average_1min']} before / {loop['load_average_1min_after']} after. "
        f"Date: {loop['date']}.", "", freshness_text(loop, "loop", loop["command"]), "",
        "| loop images/s (median) | bare step images/s (median) | loop / bare | target |",
        "|---:|---:|---:|---:|",
        f"| {loop['loop_median']:.1f} | {loop['bare_median']:.1f} | {loop['ratio']:.3f} | "
        f">= {loop['target_ratio']} |", ""]


def long_section(curves: dict | None) -> list[str]:
    lines = ["## ResMo over the course of training (long protocol)", ""]
    if curves is None:
        return lines + ["Not measured yet: `python benchmarks/quality_cifar10.py --protocol long`, then "
                        "`python benchmarks/long_curves.py`.", ""]
    made = sum(len(arm["seeds"]) for arm in curves["arms"])  # runs of the arms (random init aside)
    total = made + len(curves["missing_runs"])
    lines += [
        "MoCo v3 and BYOL with and without ResMo on 10,000 class-balanced CIFAR-10 training images for 30 epochs "
        "(width-8 ResNet, the short protocol's recipe otherwise); online kNN (k=20) of student and teacher on all "
        "10,000 test images every 3 epochs, intra gap every epoch. Runs: `python benchmarks/quality_cifar10.py "
        f"--protocol long`; curves and effects: `{curves['command']}` ({curves['date']}).", "",
        quality_freshness(curves, "python benchmarks/quality_cifar10.py --protocol long"), ""]
    if curves["missing_runs"]:
        lines += [f"**In progress**: {made} of {total} runs made; not yet made: "
                  f"{', '.join(curves['missing_runs'])}. Start the same command again to continue.", ""]
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
    lines += ["", "Paired ResMo effect on kNN top-1 (ResMo arm minus the plain arm of the same seed), mean and "
              "95 % t interval over seeds, by epoch:", "",
              "| effect | encoder | " + " | ".join(f"epoch {e}" for e in _effect_epochs(curves)) + " |",
              "|---|---|" + "---:|" * len(_effect_epochs(curves))]
    for effect in curves["effects"]:
        by_epoch = {row["epoch"]: row for row in effect["by_epoch"]}
        if not by_epoch:
            continue
        cells = [_effect_cell(by_epoch.get(epoch)) for epoch in _effect_epochs(curves)]
        lines.append(f"| {effect['label']} | {effect['encoder']} | " + " | ".join(cells) + " |")
    lines += ["", "What the runs so far say (read off the intervals above: *helps* / *hurts* when the 95 % "
              "interval is above / below 0, *not told apart from noise* when it contains 0, *one seed* when "
              "there is no interval yet):", ""]
    lines += [f"- {sentence}" for sentence in long_reading(curves)]
    lines += ["", "![kNN over training](figures/long_knn.png)", "",
              "![intra gap over training](figures/long_gap.png)", "",
              "![teacher minus student](figures/long_teacher_minus_student.png)", ""]
    return lines


def long_reading(curves: dict) -> list[str]:
    """One sentence per ResMo arm and encoder: its effect at the first, middle and last kNN
    epochs, and the sign of teacher - student of the plain arm there."""
    epochs = _effect_epochs(curves)
    plain = {arm["method"]: arm for arm in curves["arms"] if arm["weight"] == 0}
    sentences = []
    for effect in curves["effects"]:
        by_epoch = {row["epoch"]: row for row in effect["by_epoch"]}
        if not by_epoch:
            continue
        verdicts = [f"epoch {epoch}: {_verdict(by_epoch[epoch])}" for epoch in epochs if epoch in by_epoch]
        arm = next(a for a in curves["arms"] if a["key"] == effect["arm"])
        lead = {p["epoch"]: p["mean"] for p in plain[arm["method"]]["curves"]["teacher_minus_student"]}
        signs = [f"{epoch}: {lead[epoch]:+.1f}" for epoch in epochs if epoch in lead]
        sentences.append(f"{effect['label']}, {effect['encoder']} kNN: {'; '.join(verdicts)} "
                         f"(teacher - student of the plain method at epochs {', '.join(signs)}).")
    return sentences


def _verdict(row: dict) -> str:
    if row["ci95"] is None:
        return f"{row['mean']:+.2f}, one seed"
    low, high = row["ci95"]
    word = "helps" if low > 0 else "hurts" if high < 0 else "not told apart from noise"
    return f"{word} ({row['mean']:+.2f} [{low:+.2f}, {high:+.2f}])"


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
    lines = ["## The training loop against an earlier commit", ""]
    if compared is None:
        return lines + ["Not measured yet: `python benchmarks/loop_before_after.py --before COMMIT`.", ""]
    machine, commits, medians = compared["machine"], compared["commits"], compared["medians"]
    rounds = len(compared["runs"]["after"])
    same = "identical" if compared["same_results"] else "different"
    return lines + [
        f"`resmo pretrain` (the quickstart) from a worktree of each commit, {rounds} rounds taking turns: "
        f"`{commits['before'][:7]}` against `{commits['after'][:7]}`. Measured by `{compared['command']}`. "
        f"Machine: {machine_line(machine)}, load average {machine['load_average_1min']} before / "
        f"{compared['load_average_1min_after']} after. Date: {compared['date']}. kNN and intra gaps of "
        f"the two sides: {same}.", "", freshness_text(compared, "before_after", compared["command"]), "",
        "| commit | wall time (median) | training images/s (median) |",
        "|---|---:|---:|",
        *(f"| `{commits[side][:7]}` ({side}) | {medians[side]['wall_seconds']:.1f} s | "
          f"{medians[side]['images_per_second']:.1f} |" for side in ("before", "after")),
        "", f"After / before, images/s: {compared['ratio_images_per_second']:.3f}.", ""]


# --- detection transfer -----------------------------------------------------------------------
def paired_ap_line(arm: dict, base: dict) -> str:
    """One bullet: ``arm``'s AP minus ``base``'s, seed by seed, and their mean."""
    diffs = [a - b for a, b in zip(arm["AP"]["per_seed"], base["AP"]["per_seed"], strict=True)]
    return (f"- {arm['label']} against {base['label']}, paired by seed: AP {statistics.fmean(diffs):+.2f} "
            f"(per seed: {', '.join(f'{d:+.2f}' for d in diffs)}).")


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
    commits = ", ".join(f"`{c[:7]}`" for c in stems["steps_code_commits"]) or "no recorded commit"
    measured = (stems.get("code") or {}).get("commit")
    at = f" at `{measured[:7]}`" if measured else ""
    lines = [f"Stems of the students above (`{stems['command']}`{at}, {stems['date']}, runs made at {commits}): "
             f"‖conv1.weight‖ and mean(bn1.running_var) per seed; a ResNet-18 at init has "
             f"{init['conv1_norm']:.2f} and {init['bn1_running_var']:.1f}.", ""]
    for arm in stems["arms"].values():
        norms = ", ".join(f"{v:.2f}" for v in arm["conv1_norm"])
        variances = ", ".join(f"{v:.1f}" for v in arm["bn1_running_var"])
        lines.append(f"- {arm['label']}: ‖conv1.weight‖ {norms}; bn1 running variance {variances}.")
    return lines + [""]


SMOKE_TEST_NOTE = (
    "**A smoke test of the detection path, not evidence about ResMo.** This table shows that pretraining, export, "
    "fine-tuning and AP run end to end on real images; at this CPU budget it does not tell pretraining from random "
    "init, so ResMo's differences here say nothing about ResMo. The protocol differs from MoCo's VOC one setting "
    "by setting (docs/detection.md, which also says what the paper's VOC claim needs: a GPU run of MoCo's "
    "detectron2 protocol on `resmo export --format detectron2` weights). The CPU-scale dense measure is the dense "
    "probe below.")


def detection_section(summary: dict | None, stems: dict | None = None) -> list[str]:
    lines = ["## Detection transfer on CIFAR-10 scenes (a smoke test)", "", SMOKE_TEST_NOTE, ""]
    if summary is None:
        return lines + ["Not measured yet: `python benchmarks/detection_scenes.py` (`--smoke`: the same table on a few "
                        "dozen scenes).", ""]
    b, scenes = summary["budget"], summary["scenes"]
    seeds = ", ".join(map(str, b["seeds"]))
    lines += [
        f"Scenes: `{without_out_folder(scenes['command'])}` ({scenes['images']['train']} train and {scenes['images']['test']} test "
        f"scenes of {b['canvas']} px with {scenes['objects'][0]}-{scenes['objects'][1]} real CIFAR-10 images each; "
        f"{scenes['images']['unlabelled']} unlabelled scenes for pretraining). Each arm: `resmo pretrain` (ResNet-18, "
        f"{b['pretrain_epochs']} epochs of batch {b['batch_size']} at {b['pretrain_size']} px; both methods with "
        f"{b['pretrain_optimizer'].upper()} at lr {b['pretrain_lr_per_256']:g} per 256 images, weight decay "
        f"{b['pretrain_weight_decay']:g} and teacher momentum {b['teacher_momentum']:g} cosine to 1; the method's "
        f"defaults otherwise), then `resmo transfer detect` of its {b['encoder']} (Faster R-CNN + FPN, "
        f"{b['detect_epochs']:g} epochs of "
        f"batch {b['detect_batch_size']} on the train scenes, {b['rois_per_image']} RoIs per image and {b['proposals']} "
        "proposals, COCO-style AP on the test scenes); random init: the same "
        f"fine-tuning from a randomly initialised ResNet-18. Seeds {seeds}. Made by `{summary['command']}` on "
        f"{summary['date']} ({machine_line(summary['machine'])}).", "",
        freshness_text(summary, "detection", summary["command"]), "",
        "| arm | AP | AP50 | AP75 |", "|---|---:|---:|---:|"]
    arms = summary["arms"]
    for arm in arms.values():
        lines.append(f"| {arm['label']} | " + " | ".join(fmt(arm[m], 2) for m in ("AP", "AP50", "AP75")) + " |")
    lines.append("")
    pairs = [("densecl-w1", "densecl-w0"), ("mocov3-w1", "mocov3-w0"),
             *((key, "random-init") for key in arms if key != "random-init")]
    lines += [paired_ap_line(arms[arm], arms[base]) for arm, base in pairs]
    best = max((key for key in arms if key != "random-init"), key=lambda key: arms[key]["AP"]["mean"])
    ahead = arms[best]["AP"]["mean"] - arms["random-init"]["AP"]["mean"]
    lines += [f"- Best pretrained arm ({arms[best]['label']}) against random init: AP {ahead:+.2f} "
              f"({'ahead' if ahead > 0 else 'not ahead'} of random init at this budget).", ""]
    if stems is not None:
        lines += stems_lines(stems)
    lines += ["Pretraining command of each arm (the first seed):", "", "```bash",
              *summary["pretrain_commands"].values(), summary["detect_command"], "```", ""]
    return lines


# --- dense probe -------------------------------------------------------------------------------
def interval_text(interval: dict) -> str:
    """``+1.23 [low, high]`` (a paired mean and its 95 % t-interval; the mean alone for one seed)."""
    if interval["low"] is None:
        return f"{interval['mean']:+.2f}"
    return f"{interval['mean']:+.2f} [{interval['low']:+.2f}, {interval['high']:+.2f}]"


def dense_section(summary: dict | None) -> list[str]:
    """The dense probe on CIFAR-10 scenes (``dense_scenes.py``): mIoU per arm, paired intervals."""
    lines = ["## Dense probe on CIFAR-10 scenes", ""]
    if summary is None:
        return lines + ["Not measured yet: `python benchmarks/dense_scenes.py` (DenseCL and MoCo v3, each with and "
                        "without ResMo, against random init, 5 seeds, paired intervals; `--smoke`: one seed on a "
                        "few dozen scenes). See docs/detection.md for the probe.", ""]
    b = summary["budget"]
    lines += [f"`resmo eval dense` of each arm's student (stages {b['stages']}, {b['image_size']} px, {b['epochs']} "
              f"epochs) trained on the train scenes and scored on the test scenes; random init: a ResNet-18 drawn "
              f"with the same seed, probed alike. Seeds {', '.join(map(str, b['seeds']))}. Made by "
              f"`{summary['command']}` on {summary['date']} ({machine_line(summary['machine'])}).", "",
              "| arm | mIoU | pixel accuracy |", "|---|---:|---:|"]
    for arm in summary["arms"].values():
        lines.append(f"| {arm['label']} | {fmt(arm['mIoU'], 2)} | {fmt(arm['pixel_accuracy'], 2)} |")
    lines += ["", "Paired by seed, mean difference of mIoU [95 % t-interval]:", ""]
    for arm, interval in summary["pretrained_minus_random_init"]["mIoU"].items():
        lines.append(f"- {summary['arms'][arm]['label']} minus random init: {interval_text(interval)}")
    for method, interval in summary["resmo_minus_plain"]["mIoU"].items():
        lines.append(f"- {summary['arms'][f'{method}-w0']['label']}: ResMo (λ=1) minus λ=0: {interval_text(interval)}")
    return lines + [""]


def render(results: Path = RESULTS) -> str:
    lines = ["# Benchmarks", "",
             "Generated by `python benchmarks/render_docs.py` from the JSON files in `benchmarks/results/`",
             "(each names its command, machine, date and seeds); do not edit by hand. On a 2-core machine any",
             "other busy process slows torch down a lot: timings were taken with nothing else running unless",
             "a load average above 1 says otherwise.", ""]
    lines += quality_section(load(results / "quality" / "full" / "summary.json"),
                             load(results / "quality" / "smoke" / "summary.json"))
    lines += long_section(load(results / "quality" / "long" / "curves.json"))
    lines += detection_section(load(results / "detection" / "full" / "summary.json"),
                               load(results / "detection" / "full" / "stems.json"))
    lines += dense_section(load(results / "dense" / "full" / "summary.json"))
    lines += speed_section(load(results / "speed_cpu.json"))
    lines += views_section(load(results / "view_generation.json"))
    lines += gpu_section(load(results / "gpu_throughput.json"), load(results / "gpu_cifar10.json"))
    lines += quickstart_section(load(results / "quickstart.json"))
    lines += loop_section(load(results / "loop_overhead.json"))
    lines += before_after_section(load(results / "loop_before_after.json"))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args(argv)
    args.out.write_text(render(args.results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
