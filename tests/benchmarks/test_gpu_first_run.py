"""The first-GPU-run script (benchmarks/gpu_first_run.sh) and its CUDA sync count, checked on a CPU."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from resmo.methods import method_names
from tests.benchmarks.test_benchmark_scripts import load

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_first_run.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def dry_run(out: Path) -> str:
    result = subprocess.run(["bash", str(SCRIPT), "--dry"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "OUT": str(out)}, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_script_parses_and_its_steps_fit_in_eight_minutes(tmp_path):
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    shown = dry_run(tmp_path / "results")
    steps = dict(re.findall(r"^== (\S+) \(limit (\d+)s\)", shown, flags=re.M))
    assert set(steps) == {"env", "tests", "lars_ops", "sync_debug", "fp16_mocov3", "throughput",
                          *(f"bf16_{method}" for method in method_names())}
    assert sum(int(limit) for limit in steps.values()) <= 8 * 60
    assert str(tmp_path / "results") in shown  # everything goes under $OUT
    assert not (tmp_path / "results").exists()  # a dry run writes nothing
    tests = re.search(r"^== tests .*$", shown, flags=re.M).group(0)
    named = re.findall(r"(tests/\S+\.py)", tests)
    assert named and all((ROOT / path).is_file() for path in named)
    modules = re.findall(r" -m benchmarks\.(\w+)", shown)  # the benchmarks run as modules of the package
    assert sorted(modules) == ["cuda_sync_debug", "gpu_throughput", "lars_ops"]
    assert all((ROOT / "benchmarks" / f"{module}.py").is_file() for module in modules)


def test_the_sync_count_runs_through_on_a_cpu(tmp_path):
    out = tmp_path / "syncs.json"
    result = load("cuda_sync_debug").main(["--device", "cpu", "--methods", "mocov3", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved == result and saved["sync_debug_mode"] is None and saved["meets_target"] is None
    assert saved["methods"][0]["steps_counted"] == 5 and saved["methods"][0]["max_per_step"] == 0
    assert saved["code"]["commit"] is None or len(saved["code"]["commit"]) == 40
