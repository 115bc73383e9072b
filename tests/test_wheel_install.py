"""The built wheel, installed into a fresh virtual environment, runs a shipped recipe by name
from a folder outside the checkout (recipes are package data, not files of the repository).

The checkout is copied to a temporary folder and built there, so setuptools' ``build/`` and
``*.egg-info`` never land in it. The environment reuses the dependencies of the interpreter
running the tests, wherever they live (a virtual environment, a conda environment, the system or
the user site): a ``.pth`` file in its site-packages lists that interpreter's ``sys.path``
folders (those of the checkout left out). Those folders come after the environment's own
site-packages, and their ``.pth`` files are not run, so the wheel, installed with ``--no-deps
--force-reinstall``, shadows the editable install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from resmo.recipes import recipe_names

PROJECT = Path(__file__).resolve().parents[1]
TINY = [
    "--data", "synthetic", "--epochs", "1", "--batch-size", "16", "--precision", "32-true",
    "backbone=resnet_small", "backbone_options.resnet_small={width: 8}",
    "method_options.mocov3={hidden_dim: 32, out_dim: 16, predictor_hidden_dim: 32}",
    "data.image_size=16", "data.num_workers=0", "data.synthetic.num_samples=64",
    "data.synthetic.val_num_samples=32", "train.progress_bar=false",
    "monitor.knn_every_epochs=1", "monitor.knn_max_train=64",
]


def run(command: list, *, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONNOUSERSITE": "1", "PIP_NO_INDEX": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}: exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def build_wheel(tmp: Path) -> Path:
    """Copy the sources to ``tmp/source`` and build the wheel from there into ``tmp/wheel``."""
    source = tmp / "source"
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", "*.pyc", "build", "dist")
    shutil.copytree(PROJECT / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", tmp / "wheel", source], cwd=tmp, timeout=300)
    wheels = sorted((tmp / "wheel").glob("resmo-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def inherited_paths() -> list[str]:
    """The folders of this interpreter's ``sys.path`` outside the checkout: where its packages
    (torch, pip, ...) are found."""
    return [entry for entry in dict.fromkeys(os.path.abspath(p) for p in sys.path if p)
            if Path(entry).is_dir() and not Path(entry).resolve().is_relative_to(PROJECT)]


def environment_sharing_these_packages(venv: Path, cwd: Path) -> Path:
    """A virtual environment at ``venv`` that sees this interpreter's packages; its python."""
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=cwd)
    python = venv / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  cwd=cwd).stdout.strip()
    (Path(purelib) / "_resmo_test_inherited.pth").write_text("\n".join(inherited_paths()) + "\n")
    return python


@pytest.mark.slow
def test_wheel_runs_a_shipped_recipe_outside_the_checkout(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        shipped = [name for name in archive.namelist()  # resmo/recipes/<dataset>/<method>.yaml
                   if name.startswith("resmo/recipes/") and name.endswith(".yaml") and name.count("/") == 3]
    assert len(shipped) == len(recipe_names()) == 17, shipped

    venv = tmp_path / "venv"
    python = environment_sharing_these_packages(venv, tmp_path)
    resmo = venv / "bin" / "resmo"
    # pip comes from this interpreter's packages; it installs into the environment running it
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel],
        cwd=tmp_path, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    where = run([python, "-c", "import resmo; print(resmo.__file__)"], cwd=elsewhere).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()), where
    assert not Path(where).resolve().is_relative_to(PROJECT), where
    # the environment's torch is the one of the interpreter running the tests
    shared = run([python, "-c", "import torch; print(torch.__file__)"], cwd=elsewhere).stdout.strip()
    assert Path(shared).resolve() == Path(torch.__file__).resolve(), (shared, torch.__file__)

    listed = run([resmo, "recipes"], cwd=elsewhere).stdout.strip().splitlines()
    assert len(listed) == 1 + len(shipped) and listed[1].startswith("cifar10/byol ")
    version = run([resmo, "--version"], cwd=elsewhere).stdout.strip()
    assert version.startswith("resmo ") and version.split()[1] in wheel.name

    out = elsewhere / "run"
    run([resmo, "pretrain", "--config", "cifar10/mocov3", "--out", "run", *TINY], cwd=elsewhere, timeout=240)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 1
    recorded = yaml.safe_load((out / "config.yaml").read_text())
    assert recorded["optimizer"]["name"] == "lars" and recorded["optimizer"]["lr"] == 0.3
    assert recorded["method_options"]["mocov3"]["temperature"] == 0.2  # kept from the recipe
    assert recorded["method"] == "mocov3" and recorded["data"]["name"] == "synthetic"
