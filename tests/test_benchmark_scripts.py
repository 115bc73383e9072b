"""The benchmark scripts run end to end (tiny settings, CPU) and write their JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_throughput_tiny(tmp_path):
    out = tmp_path / "gpu.json"
    result = load("gpu_throughput").main(["--tiny", "--device", "cpu", "--torchvision-workers", "1",
                                          "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == result
    rates = saved["images_per_second"]
    assert set(rates) == {"model_only", "batched", "torchvision"} and all(r > 0 for r in rates.values())
    assert saved["batched_over_model_only"] > 0 and saved["precision"] == "32"
    assert saved["command"].startswith("python ") and "--tiny" in saved["command"]


def test_view_generation_tiny(tmp_path):
    out = tmp_path / "views.json"
    result = load("view_generation").main(["--tiny", "--threads", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == result
    medians = saved["images_per_second_median"]
    assert set(medians) == {"torchvision", "batched_threads1"} and all(v > 0 for v in medians.values())
    assert saved["speedup_batched_vs_torchvision"] > 0 and saved["machine"]["cpu_count"] >= 1
