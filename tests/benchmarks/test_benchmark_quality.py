"""The quality protocol's pieces: settings and cache keys, aggregation, docs, data helpers."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import cifar10_folder, protocol, quality_summary, render_docs
from benchmarks.folder_subset import subset_folder
from benchmarks.quality_effect_tests import effect_tests

FULL = protocol.PROTOCOLS["full"]


def test_full_protocol_has_the_required_arms():
    arms = {arm.key: arm for arm in FULL.arms}
    assert len(arms["mocov3-w0"].seeds) >= 3 and arms["mocov3-w0"].seeds == arms["mocov3-w1"].seeds
    assert (arms["mocov3-w0"].weight, arms["mocov3-w1"].weight) == (0.0, 1.0)
    assert {arms["byol-w0"].weight, arms["byol-w1"].weight} == {0.0, 1.0}
    sweep = {a.weight for a in FULL.arms if a.method == "mocov3" and a.impl == "resmo" and a.distance == "cosine"}
    assert len(sweep) >= 4
    assert arms["mocov3-w1-kd"].distance == "kd"
    assert {a.method for a in FULL.arms if a.impl == "lightly"} == {"mocov3", "byol"}
    keys = [protocol.run_key(arm, seed) for arm, seed in FULL.runs()]
    assert len(keys) == len(set(keys))


def test_random_init_results_expire_with_the_settings_they_depend_on():
    key = "random-s1"
    base = FULL.expected_fingerprint(key)
    assert FULL.parse(key) == (None, 1) and base != FULL.expected_fingerprint("random-s0")
    for change in ({"width": FULL.budget.width * 2}, {"knn_k": (10,)}, {"test_per_class": 10}):
        assert replace(FULL, budget=replace(FULL.budget, **change)).expected_fingerprint(key) != base
    # training settings do not touch an untrained encoder's evaluation
    assert replace(FULL, budget=replace(FULL.budget, lr=1.0)).expected_fingerprint(key) == base


def test_fingerprint_changes_with_every_setting_that_matters():
    arm = FULL.arm("mocov3-w1")
    base = protocol.fingerprint(FULL.budget, arm, 0)
    assert protocol.fingerprint(FULL.budget, arm, 0) == base
    assert protocol.fingerprint(FULL.budget, arm, 1) != base
    assert protocol.fingerprint(replace(FULL.budget, epochs=FULL.budget.epochs + 1), arm, 0) != base
    assert protocol.fingerprint(FULL.budget, replace(arm, weight=0.5), 0) != base
    assert protocol.fingerprint(FULL.budget, replace(arm, distance="kd"), 0) != base
    # the seed list of an arm is not a setting of one run: adding seeds keeps cached runs
    assert protocol.fingerprint(FULL.budget, replace(arm, seeds=(0, 1, 2, 3)), 0) == base


def test_pretrain_arguments_are_a_valid_resmo_command():
    from resmo.cli import _flag_settings, build_parser
    from resmo.config import load_config

    arm = FULL.arm("mocov3-w1-kd")
    argv = protocol.pretrain_arguments(FULL.budget, arm, 2, "some/folder", "out/run")
    args = build_parser().parse_args(argv)
    config = load_config(None, list(args.overrides), settings=_flag_settings(args))
    assert (config.method, config.seed, config.resmo.weight, config.resmo.distance) == ("mocov3", 2, 1.0, "kd")
    assert config.backbone_options["resnet_small"]["width"] == FULL.budget.width
    assert config.train.epochs == FULL.budget.epochs and config.optimizer.lr == FULL.budget.lr
    assert config.data.image_size == 32 and config.data.pipeline == "batched"
    assert config.method_options["mocov3"]["momentum"] == FULL.budget.momentum


def test_long_protocol_follows_both_methods_with_and_without_resmo_over_training():
    long = protocol.PROTOCOLS["long"]
    arms = {arm.key: arm for arm in long.arms}
    assert {(a.method, a.weight) for a in long.arms} == {
        ("mocov3", 0.0), ("mocov3", 1.0), ("mocov3", 0.3), ("byol", 0.0), ("byol", 1.0)}
    assert all(len(arm.seeds) >= 3 and arm.seeds == arms["mocov3-w0"].seeds for arm in long.arms)
    budget = long.budget
    assert budget.epochs >= 30 and budget.train_per_class == 1000 and budget.test_per_class is None
    assert budget.knn_every_epochs and budget.epochs % budget.knn_every_epochs == 0
    assert budget.knn_max_train >= 10 * budget.train_per_class and budget.knn_max_val >= 10000  # all test images
    argv = protocol.pretrain_arguments(budget, arms["byol-w1"], 1, "some/folder", "out/run")
    assert "monitor.knn_every_epochs=3" in argv and "monitor.knn_max_val=10000" in argv
    # fields added for it keep the earlier protocols' cache keys (their runs stay valid)
    arm = FULL.arm("mocov3-w1")
    assert protocol.fingerprint(FULL.budget, arm, 0) != protocol.fingerprint(
        replace(FULL.budget, knn_every_epochs=3), arm, 0)
    assert not any("knn_every_epochs" in a for a in protocol.pretrain_arguments(FULL.budget, arm, 0, "f", "o"))


def test_training_curves_read_the_online_knn_and_the_epoch_gaps(tmp_path):
    from benchmarks import quality_cifar10

    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,gap/output_epoch,gap/features_epoch,gap/output_step,step\n"
                       "0,,,0.9,1\n0,0.8,0.1,,2\n1,0.5,0.05,,4\n")
    summary = {"knn_history": [{"epoch": 2, "knn_top1_student": 30.0, "knn_top1_teacher": 31.5}]}
    curves = quality_cifar10.training_curves(summary, metrics)
    assert curves["knn"] == [{"epoch": 2, "student": 30.0, "teacher": 31.5}]
    assert curves["intra_gap"] == {"output": [{"epoch": 1, "value": 0.8}, {"epoch": 2, "value": 0.5}],
                                   "features": [{"epoch": 1, "value": 0.1}, {"epoch": 2, "value": 0.05}]}


def _record(key: str, seed: int, knn: float, teacher: float, gap: float) -> dict:
    return {"key": key, "seed": seed, "machine": {"cpu_count": 2}, "knn": {"student": {"k20": knn},
            "teacher": {"k20": teacher}}, "linear": {"student": knn + 5, "teacher": teacher + 5},
            "intra_gap": {"output": gap, "features": gap / 10}, "train_seconds": 100.0, "eval_seconds": 10.0}


@pytest.fixture
def small_protocol():
    arms = (protocol.Arm("mocov3-w0", "MoCo v3", "core", "mocov3", 0.0, seeds=(0, 1, 2)),
            protocol.Arm("mocov3-w1", "MoCo v3 + ResMo", "core", "mocov3", 1.0, seeds=(0, 1, 2)),
            protocol.Arm("mocov3-w3", "MoCo v3 + ResMo (λ=3)", "sweep", "mocov3", 3.0),
            protocol.Arm("lightly-mocov3", "MoCo v3 (LightlySSL)", "peer", "mocov3", impl="lightly"))
    return protocol.Protocol("unit", replace(FULL.budget, knn_k=(20,)), arms, random_init_seeds=(0, 1))


def _write_runs(results: Path, proto: protocol.Protocol, records: dict[str, dict]) -> None:
    """Cached results as the runner writes them: with the fingerprint of the current settings."""
    folder = results / proto.name / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    for key, record in records.items():
        (folder / f"{key}.json").write_text(json.dumps({"fingerprint": proto.expected_fingerprint(key), **record}))


def test_summary_means_stds_and_checks(tmp_path, small_protocol):
    records = {
        "random-s0": {"seed": 0, "machine": {}, "knn": {"random": {"k20": 20.0}}, "linear": {"random": 30.0},
                      "eval_seconds": 5.0},
        "random-s1": {"seed": 1, "machine": {}, "knn": {"random": {"k20": 22.0}}, "linear": {"random": 32.0},
                      "eval_seconds": 5.0},
        "mocov3-w0-s0": _record("mocov3-w0-s0", 0, 40.0, 38.0, 0.5),
        "mocov3-w0-s1": _record("mocov3-w0-s1", 1, 42.0, 39.0, 0.7),
        "mocov3-w0-s2": _record("mocov3-w0-s2", 2, 44.0, 40.0, 0.6),
        "mocov3-w1-s0": _record("mocov3-w1-s0", 0, 41.0, 38.0, 0.2),
        "mocov3-w1-s1": _record("mocov3-w1-s1", 1, 41.0, 38.5, 0.3),
        "mocov3-w1-s2": _record("mocov3-w1-s2", 2, 47.0, 42.0, 0.1),
        "mocov3-w3-s0": _record("mocov3-w3-s0", 0, 30.0, 31.0, 0.05),
        "lightly-mocov3-s0": _record("lightly-mocov3-s0", 0, 47.0, 45.0, 0.6),
    }
    _write_runs(tmp_path, small_protocol, records)
    path = quality_summary.summarise(small_protocol, tmp_path, command="cmd", figure=tmp_path / "fig.png", jobs=2)
    summary = json.loads(path.read_text())
    arms = {arm["key"]: arm for arm in summary["arms"]}
    plain = arms["mocov3-w0"]["metrics"]["knn_student"]
    assert plain["values"] == [40.0, 42.0, 44.0] and plain["mean"] == 42.0 and plain["std"] == 2.0
    assert arms["lightly-mocov3"]["metrics"]["knn_student"]["std"] is None
    assert summary["random_init"]["knn"]["mean"] == 21.0 and summary["complete"] is True
    checks = summary["checks"]
    assert checks["margin_over_random_init"] == {"points": 21.0, "target": 15.0, "met": True}
    assert list(checks["resmo_effects"]) == ["mocov3-w1"]  # ResMo arms with several seeds only
    assert checks["resmo_effects"]["mocov3-w1"]["control"] == "mocov3-w0"
    effect = checks["resmo_effects"]["mocov3-w1"]["metrics"]["knn_student"]
    assert effect["per_seed"] == [1.0, -1.0, 3.0] and effect["mean"] == 1.0 and effect["std"] == 2.0
    assert math.isclose(effect["standard_error"], 2.0 / math.sqrt(3))
    half = 4.303 * 2.0 / math.sqrt(3)  # Student's t, 2 degrees of freedom
    assert all(math.isclose(a, b) for a, b in zip(effect["ci95"], [1.0 - half, 1.0 + half], strict=True))
    assert render_docs.paired_verdict(effect) == "95 % interval [-4.0, +6.0] includes 0"
    assert render_docs.paired_verdict({**effect, "ci95": [0.2, 1.8]}) == "95 % interval [+0.2, +1.8] excludes 0"
    # paired t on 2 degrees of freedom: two-sided p = 1 - |t| / sqrt(2 + t^2); student differences 1, -1, 3
    # (t^2 = 3/4), teacher 0, -0.5, 2 (t^2 = 3/7); linear = kNN + 5 gives the same differences
    tests = effect_tests(summary)
    assert list(tests) == [("mocov3-w1", m) for m in ("knn_student", "knn_teacher", "linear_student", "linear_teacher")]
    assert tests[("mocov3-w1", "knn_student")]["p"] == pytest.approx(1 - math.sqrt(3 / 11))
    assert tests[("mocov3-w1", "linear_teacher")]["p"] == pytest.approx(1 - math.sqrt(3 / 17))
    # Holm over 4: the smallest p (0.478) times 4 is above 1, so every adjusted p is 1
    assert all(t["p_holm"] == 1.0 and t["family"] == 4 for t in tests.values())
    arms_by_key = {arm["key"]: arm for arm in summary["arms"]}
    assert render_docs.peer_lines(summary, arms_by_key) == [
        "- MoCo v3 against the same method from LightlySSL blocks, student kNN top-1 (k20): resmo, seeds 0, 1, 2: "
        "40.0, 42.0, 44.0 (mean 42.0); LightlySSL blocks, seed 0: 47.0, above every resmo seed."]
    # 42 vs 47 is 5 points below with a seed spread of 2: beyond noise
    parity = checks["peer_parity"]["mocov3"]
    assert parity["resmo_minus_lightly"] == -5.0 and parity["at_least_as_accurate_within_noise"] is False
    assert parity["noise_std"] == 2.0 and parity["noise_source"] == "resmo mocov3 seeds"
    assert summary["jobs"] == 2 and summary["run_dates"] == []
    assert math.isclose(summary["cpu_seconds_runs"], 8 * 110.0 + 2 * 5.0)
    import numpy as np
    from PIL import Image

    with Image.open(tmp_path / "fig.png") as image:
        assert len(np.unique(np.asarray(image.convert("L")))) > 10


def test_summary_reports_missing_runs_and_ignores_stale_ones(tmp_path, small_protocol):
    _write_runs(tmp_path, small_protocol, {"mocov3-w0-s0": _record("mocov3-w0-s0", 0, 40.0, 38.0, 0.5),
                                           "mocov3-w1-s0": _record("mocov3-w1-s0", 0, 45.0, 38.0, 0.5)})
    stale = tmp_path / "unit" / "runs" / "mocov3-w0-s1.json"  # made with other settings
    stale.write_text(json.dumps({**_record("mocov3-w0-s1", 1, 90.0, 90.0, 0.5), "fingerprint": "0" * 16}))
    summary = json.loads(quality_summary.summarise(small_protocol, tmp_path, command="c",
                                                   figure=tmp_path / "f.png").read_text())
    assert summary["complete"] is False and "mocov3-w1-s2" in summary["missing_runs"]
    assert {"mocov3-w0-s1", "random-s0"} <= set(summary["missing_runs"])
    plain = next(a for a in summary["arms"] if a["key"] == "mocov3-w0")
    assert plain["metrics"]["knn_student"]["values"] == [40.0]
    # paired over the seeds both arms have: seed 0 only, no noise estimate
    effect = summary["checks"]["resmo_effects"]["mocov3-w1"]["metrics"]["knn_student"]
    assert effect["per_seed"] == [5.0] and effect["std"] is None and effect["standard_error"] is None
    assert effect["ci95"] is None and render_docs.paired_verdict(effect) == "one seed: no noise estimate"
    docs = render_docs.quality_section(summary, None)
    assert any("Incomplete" in line and "mocov3-w1-s2" in line for line in docs)


def test_rendered_docs_take_every_number_from_the_json(tmp_path, small_protocol):
    records = {f"random-s{s}": {"seed": s, "machine": {"cpu_count": 2, "processor": "x", "torch": "t"},
                                "knn": {"random": {"k20": 21.25}}, "linear": {"random": 30.0}, "eval_seconds": 1.0}
               for s in (0, 1)}
    records |= {f"mocov3-w{w}-s{s}": _record("", s, 40.0 + s + 3 * w, 39.0, 0.5 - 0.1 * w)
                for w in (0, 1) for s in (0, 1, 2)}
    full = replace(small_protocol, name="full")
    _write_runs(tmp_path / "quality", full, records)
    quality_summary.summarise(full, tmp_path / "quality", command="python x.py", figure=tmp_path / "f.png", jobs=2)
    text = render_docs.render(tmp_path)
    assert "| MoCo v3 | 0, 1, 2 | 41.0 ± 1.0 |" in text
    assert "| MoCo v3 + ResMo | 0, 1, 2 | 44.0 ± 1.0 |" in text
    assert "| random init (no training) | 2 seeds | 21.2 ± 0.0 |" in text
    assert ("student kNN top-1: +3.0 points (per seed: +3.0, +3.0, +3.0); 95 % interval [+3.0, +3.0] excludes 0; "
            "p < 0.001, Holm-adjusted over the 4 comparisons p = 0.00: exploratory (choices made on this test split, "
            "from these runs; no held-out split).") in text
    # teacher differences are all 0 (p = 1), student and linear ones all +3 (p = 0)
    assert ("Of the 4 intervals, 2 exclude 0 (raw p < 0.001 to < 0.001); 2 survive Holm's correction over the 4 "
            "comparisons (smallest adjusted p 0.00).") in text
    assert "from 0.500 without ResMo to 0.400 with it" in text
    assert "Not measured yet: `python -m benchmarks.speed_cpu`" in text
    assert "python -m benchmarks.gpu_cifar10" in text


def test_the_peer_is_placed_among_resmo_seeds():
    assert render_docs.peer_placement(48.0, [45.0, 47.5, 46.1]) == "above every resmo seed"
    assert render_docs.peer_placement(41.0, [41.4, 41.5, 40.2, 39.0, 39.3]) == "above 3 of the 5 resmo seeds"
    assert render_docs.peer_placement(38.0, [41.4, 39.0]) == "below every resmo seed"


def test_effect_tests_refuse_values_that_lost_their_seed():
    arm = {"key": "mocov3-w1", "seeds": [0, 1, 2], "metrics": {"knn_student": {"values": [1.0, 2.0]}}}
    summary = {"arms": [arm, {**arm, "key": "mocov3-w0"}], "checks": {"resmo_effects": {"mocov3-w1": {
        "control": "mocov3-w0", "metrics": {"knn_student": {"ci95": [0.0, 1.0], "per_seed": [0.0, 0.0]}}}}}}
    with pytest.raises(ValueError, match="arm 'mocov3-w1': 2 knn_student values for 3 seeds"):
        effect_tests(summary)


def test_subset_folder_links_the_first_images_of_each_class(tmp_path):
    for split, count in (("train", 5), ("test", 3)):
        for name in ("cat", "dog"):
            folder = tmp_path / "src" / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                (folder / f"{index:04d}.jpg").write_bytes(b"x")
    target = subset_folder(tmp_path / "src", tmp_path / "sub", {"train": 2, "test": 1})
    assert sorted(p.name for p in (target / "train" / "cat").iterdir()) == ["0000.jpg", "0001.jpg"]
    assert [p.name for p in (target / "test" / "dog").iterdir()] == ["0000.jpg"]
    assert (target / "train" / "cat" / "0000.jpg").resolve() == (tmp_path / "src/train/cat/0000.jpg").resolve()
    subset_folder(tmp_path / "src", tmp_path / "sub", {"train": 1, "test": 1})
    assert [p.name for p in (target / "train" / "cat").iterdir()] == ["0000.jpg"]
    (tmp_path / "src").rename(tmp_path / "moved")  # the same subset made from another source folder
    subset_folder(tmp_path / "moved", tmp_path / "sub", {"train": 1, "test": 1})
    assert (target / "train" / "cat" / "0000.jpg").resolve() == (tmp_path / "moved/train/cat/0000.jpg").resolve()


def test_missing_archive_is_a_clear_error(tmp_path):
    with pytest.raises(cifar10_folder.DataMissing, match="cifar10-jpeg.tar.gz"):
        cifar10_folder.cifar10_folder(tmp_path / "cifar10-jpeg.tar.gz", cache=tmp_path / "cache")


def test_level_ablation_arms_change_the_fingerprint_and_the_command():
    projection = FULL.arm("mocov3-w1-projection")
    assert projection.level == "projection" and FULL.arm("mocov3-w1-features").level == "features"
    output = replace(projection, level="output")
    assert protocol.fingerprint(FULL.budget, projection, 0) != protocol.fingerprint(FULL.budget, output, 0)
    assert "resmo.level=projection" in protocol.pretrain_arguments(FULL.budget, projection, 0, "d", "o")


def test_committed_benchmark_docs_are_the_rendering_of_the_committed_json():
    """Every number in docs/benchmarks.md comes from benchmarks/results/: after a benchmark,
    `python -m benchmarks.render_docs` must be run and its output committed."""
    assert render_docs.DOC.read_text() == render_docs.render(render_docs.RESULTS)


@pytest.mark.parametrize("name", ["full", "smoke"])
def test_committed_summaries_are_the_aggregate_of_the_committed_runs(tmp_path, name):
    """Each committed ``summary.json`` is what ``quality_summary`` makes of the committed
    per-run JSON files (with the protocol's current settings): no table number lacks its run."""
    import shutil

    committed = render_docs.RESULTS / "quality"
    shutil.copytree(committed / name / "runs", tmp_path / name / "runs")
    fresh = json.loads(quality_summary.summarise(protocol.PROTOCOLS[name], tmp_path, command="c",
                                                 figure=tmp_path / "f.png").read_text())
    summary = json.loads((committed / name / "summary.json").read_text())
    assert fresh["complete"] and summary["complete"]
    for key in ("arms", "random_init", "checks", "budget", "cpu_seconds_runs", "run_dates"):
        assert fresh[key] == summary[key], key
    assert fresh["code_commits"] == summary.get("code_commits", [])  # older summaries: runs named none


def test_the_confirmatory_runs_table_appears_once_the_protocol_is_complete(tmp_path, small_protocol):
    records = {f"random-s{s}": {"seed": s, "machine": {"cpu_count": 2, "processor": "x", "torch": "t", "torch_threads": 1},
                                "knn": {"random": {"k20": 20.0}}, "linear": {"random": 30.0}, "eval_seconds": 1.0}
               for s in (0, 1)}
    records |= {f"mocov3-w{w}-s{s}": _record("", s, 40.0 + s + w, 39.0, 0.5) for w in (0, 1) for s in (0, 1, 2)}
    confirm = replace(small_protocol, name="confirm", budget=replace(small_protocol.budget, val_fraction=0.1),
                      arms=small_protocol.arms[:2])
    _write_runs(tmp_path / "quality", confirm, dict(list(records.items())[:-1]))
    quality_summary.summarise(confirm, tmp_path / "quality", command="python -m benchmarks.quality_cifar10 --protocol confirm",
                              figure=tmp_path / "f.png", jobs=2)
    assert "### The confirmatory runs, per arm" not in render_docs.render(tmp_path)  # one run missing
    _write_runs(tmp_path / "quality", confirm, records)
    quality_summary.summarise(confirm, tmp_path / "quality", command="python -m benchmarks.quality_cifar10 --protocol confirm",
                              figure=tmp_path / "f.png", jobs=2)
    text = render_docs.render(tmp_path)
    assert "### The confirmatory runs, per arm" in text
    assert "| MoCo v3 + ResMo | 0, 1, 2 | 42.0 ± 1.0 |" in text
    assert "(of them 10 % held out as the monitor's validation split)" in text
    assert "Made by `python -m benchmarks.quality_cifar10 --protocol confirm`" in text
