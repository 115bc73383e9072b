"""The benchmark scripts run end to end (tiny settings, CPU) and write their JSON."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest


def load(name: str):
    """The benchmark module ``benchmarks.<name>`` (the repository root is on pytest's path)."""
    return importlib.import_module(f"benchmarks.{name}")


def test_gpu_throughput_tiny(tmp_path):
    out = tmp_path / "gpu.json"
    pytest.importorskip("lightly")
    result = load("gpu_throughput").main(["--tiny", "--device", "cpu", "--torchvision-workers", "1",
                                          "--lightly-workers", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == result
    rates = saved["images_per_second"]
    assert set(rates) == {"model_only", "batched", "torchvision", "lightly"} and all(r > 0 for r in rates.values())
    assert saved["batched_over_lightly"] == pytest.approx(rates["batched"] / rates["lightly"], rel=1e-2)
    assert saved["batched_over_model_only"] > 0 and saved["precision"] == "32"
    assert saved["command"].startswith("python ") and "--tiny" in saved["command"]
    assert saved["complete"] is True and saved["cudnn_benchmark"] is False  # autotuning is on CUDA only


def test_gpu_throughput_saves_each_mode_as_it_is_measured(tmp_path, monkeypatch):
    out = tmp_path / "gpu.json"
    throughput = load("gpu_throughput")

    def fail(*args, **kwargs):
        raise RuntimeError("lost the machine")

    monkeypatch.setattr(throughput, "lightly_seconds", fail)
    with pytest.raises(RuntimeError, match="lost the machine"):
        throughput.main(["--tiny", "--device", "cpu", "--lightly-workers", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["complete"] is False and set(saved["images_per_second"]) == {"model_only", "batched"}
    assert saved["batched_over_model_only"] > 0 and "batched_over_lightly" not in saved


def test_view_generation_tiny(tmp_path):
    out = tmp_path / "views.json"
    result = load("view_generation").main(["--tiny", "--threads", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == result
    medians = saved["images_per_second_median"]
    assert set(medians) == {"torchvision", "batched_threads1"} and all(v > 0 for v in medians.values())
    assert saved["speedup_batched_vs_torchvision"] > 0 and saved["machine"]["cpu_count"] >= 1


@pytest.mark.slow  # three fresh processes, each importing torch
def test_speed_cpu_measures_in_fresh_processes_and_computes_ratios(tmp_path):
    pytest.importorskip("lightly")
    speed = load("speed_cpu")
    out = tmp_path / "speed.json"
    result = speed.main(["--tiny", "--threads", "1", "--configs", "resmo-byol-w0", "resmo-byol-w1",
                         "views-batched", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert set(result["images_per_second_median"]) == {"resmo-byol-w0", "resmo-byol-w1", "views-batched"}
    rates = result["images_per_second_median"]
    assert result["ratios"]["byol_resmo_on_over_off"] == pytest.approx(
        rates["resmo-byol-w1"] / rates["resmo-byol-w0"], rel=1e-2)
    assert set(result["ratios"]) == {"byol_resmo_on_over_off"}  # only what was measured
    assert all(mib > 0 for mib in result["peak_rss_increase_mib"].values())  # each child built something
    median = {config: 10.0 for config in (*speed.STEP_CONFIGS, *speed.DATA_CONFIGS)}
    median |= {"resmo-mocov3-w1": 9.7, "lightly-byol": 20.0, "views-batched": 97.0}
    ratios = speed.ratios(median)
    assert ratios["mocov3_resmo_on_over_off"] == pytest.approx(0.97)
    assert ratios["byol_resmo_over_lightly"] == pytest.approx(0.5)
    assert ratios["views_batched_over_model_step"] == pytest.approx(10.0)


@pytest.fixture(scope="module")
def cifar10_jpeg(tmp_path_factory):
    """The real CIFAR-10 JPEG folder, extracted from ../shared/data (skips when absent)."""
    import os

    folder_module = load("cifar10_folder")
    cached = folder_module.cache_root() / "cifar10"
    if cached.is_dir():
        try:
            return folder_module.cifar10_folder()
        except folder_module.DataMissing:
            pass
    if not folder_module.ARCHIVE.is_file():
        pytest.skip(f"real CIFAR-10 archive not found at {folder_module.ARCHIVE}")
    os.environ.setdefault("RESMO_BENCHMARK_CACHE", str(tmp_path_factory.mktemp("bench-cache")))
    return folder_module.cifar10_folder(cache=Path(os.environ["RESMO_BENCHMARK_CACHE"]))


@pytest.mark.slow
def test_quality_protocol_caches_runs_and_resumes(cifar10_jpeg, tmp_path, capsys):
    pytest.importorskip("lightly")
    quality = load("quality_cifar10")
    runs = ["random-s0", "mocov3-w1-s0", "lightly-byol-s0"]
    argv = ["--smoke", "--data-folder", str(cifar10_jpeg), "--work-dir", str(tmp_path / "work"),
            "--results-dir", str(tmp_path / "results"), "--figure", str(tmp_path / "fig.png")]
    assert quality.main([*argv, "--only", *runs]) == 0
    folder = tmp_path / "results" / "smoke" / "runs"
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted(runs)
    resmo_run = json.loads((folder / "mocov3-w1-s0.json").read_text())
    assert resmo_run["command"].startswith("resmo pretrain --method mocov3") and "--resmo-weight 1.0" in resmo_run["command"]
    for record in (resmo_run, json.loads((folder / "lightly-byol-s0.json").read_text())):
        assert set(record["knn"]) == {"student", "teacher"} and set(record["linear"]) == {"student", "teacher"}
        assert 0 <= record["knn"]["student"]["k20"] <= 100 and 0 <= record["intra_gap"]["output"] <= 2
    summary = json.loads((tmp_path / "results" / "smoke" / "summary.json").read_text())
    assert summary["complete"] is False and "mocov3-w0-s0" in summary["missing_runs"]
    capsys.readouterr()
    assert quality.main([*argv, "--only", *runs]) == 0  # started again: everything is cached
    assert "3 of 3 runs cached, 0 to run" in capsys.readouterr().out


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory):
    """A CIFAR-10-shaped folder of random 32 px JPEG files: 10 classes, 8 train and 3 test images each."""
    from PIL import Image

    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 3)):
        for label in range(10):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{index:04d}.jpg")
    return root


def check_gpu_cifar10(result: dict, out: Path) -> None:
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["complete"] is True and set(result["runs"]) == {"resmo_weight_0", "resmo_weight_1"}
    for name, run in result["runs"].items():
        assert 0 <= run["knn_top1_student"] <= 100 and 0 <= run["knn_top1_teacher"] <= 100
        assert math.isfinite(run["train_images_per_second"]) and run["train_images_per_second"] > 0
        assert math.isfinite(result["train_over_model_only"][name]) and run["wall_seconds_eval"] >= 0
        assert "--num-workers" in run["eval_command"] and "CIFAR10_FOLDER" in run["command"]
    assert "--resmo-weight 1.0" in result["runs"]["resmo_weight_1"]["command"]
    assert result["model_only_images_per_second"] > 0 and result["machine"]["device"] == "cpu"


def test_gpu_cifar10_tiny_runs_the_whole_flow(jpeg_folder, tmp_path):
    out = tmp_path / "gpu.json"
    cifar = load("gpu_cifar10")
    result = cifar.main(["--tiny", "--data-folder", str(jpeg_folder), "--cache", str(tmp_path), "--out", str(out)])
    check_gpu_cifar10(result, out)


def test_gpu_cifar10_keeps_the_first_run_when_the_second_fails(jpeg_folder, tmp_path, monkeypatch):
    out = tmp_path / "gpu.json"
    cifar = load("gpu_cifar10")
    real_run = cifar.pretrain_run

    def run_or_fail(weight, *args):
        if weight == 1.0:
            raise RuntimeError("crashed in the second run")
        return real_run(weight, *args)

    monkeypatch.setattr(cifar, "pretrain_run", run_or_fail)
    with pytest.raises(RuntimeError, match="second run"):
        cifar.main(["--tiny", "--data-folder", str(jpeg_folder), "--cache", str(tmp_path), "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["complete"] is False and set(saved["runs"]) == {"resmo_weight_0"}
    assert saved["runs"]["resmo_weight_0"]["knn_top1_student"] >= 0 and saved["model_only_images_per_second"] > 0


def test_gpu_cifar10_missing_archive_fails_in_one_line_before_any_work(tmp_path, monkeypatch):
    cifar = load("gpu_cifar10")
    monkeypatch.setattr(cifar, "pretrain_run", lambda *args: pytest.fail("a run started"))
    archive = tmp_path / "nowhere" / "cifar10-jpeg.tar.gz"
    with pytest.raises(SystemExit) as exit_info:
        cifar.main(["--archive", str(archive), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "g.json")])
    message = str(exit_info.value)
    assert "\n" not in message and str(archive) in message and "--archive .cache/cifar10-jpeg.tar.gz" in message
    assert not (tmp_path / "g.json").exists()


@pytest.mark.slow
def test_gpu_cifar10_tiny_on_the_real_archive(cifar10_jpeg, tmp_path):
    out = tmp_path / "gpu.json"
    archive = load("cifar10_folder").ARCHIVE
    result = load("gpu_cifar10").main(["--tiny", "--archive", str(archive), "--cache", str(cifar10_jpeg.parent),
                                       "--out", str(out)])
    check_gpu_cifar10(result, out)


def test_the_readme_states_the_measured_quickstart_time_within_its_target():
    root = Path(__file__).resolve().parents[2]
    result = json.loads((root / "benchmarks" / "results" / "quickstart.json").read_text())
    readme = (root / "README.md").read_text()
    assert f"quickstart ({result['wall_seconds_total']:.0f} s measured on 2 idle CPU cores" in readme
    assert result["meets_targets"] and result["targets"]["wall_seconds_total_max"] <= 60


@pytest.mark.slow  # a fresh process (the fast lane does without it)
def test_loop_overhead_tiny(tmp_path):
    out = tmp_path / "loop.json"
    result = load("loop_overhead").main(["--tiny", "--rounds", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == result
    assert len(saved["loop_images_per_second"]) == len(saved["bare_images_per_second"]) == 1  # epoch 1 dropped
    assert saved["ratio"] == pytest.approx(saved["loop_median"] / saved["bare_median"], abs=2e-3)
    assert saved["meets_target"] == (saved["loop_median"] / saved["bare_median"] >= 0.9)
    assert saved["code"]["commit"] is None or len(saved["code"]["commit"]) == 40
