"""The stems of the detection benchmark's students, beside a ResNet-18 at init.

    python -m benchmarks.detection_stems            # after detection_scenes.py, from its work folder

For every pretrained step of ``detection_scenes.py`` (its run folders in the same work folder):
the Frobenius norm of the student's stem convolution ``‖conv1.weight‖`` and the mean of its
BatchNorm's running variance ``mean(bn1.running_var)``, with the same two numbers for a
torchvision ResNet-18 at init (seed 0; BatchNorm starts at variance 1). A stem far from its init
scale is what a fine-tuning that starts from it has to undo. Written to
``benchmarks/results/detection/<protocol>/stems.json`` with the steps' commits (from
``summary.json``) and this script's; ``render_docs.py`` prints it under the detection table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torchvision

from benchmarks import detection_scenes
from benchmarks.results_io import code_provenance, machine_info, save_json

HERE = Path(__file__).resolve().parent


def stem(state_dict: dict[str, torch.Tensor], prefix: str = "") -> dict[str, float]:
    """``‖conv1.weight‖`` and ``mean(bn1.running_var)`` of a ResNet state dict (keys under ``prefix``)."""
    return {"conv1_norm": round(state_dict[f"{prefix}conv1.weight"].norm().item(), 4),
            "bn1_running_var": round(state_dict[f"{prefix}bn1.running_var"].mean().item(), 4)}


def init_stem() -> dict[str, float]:
    """The stem of a torchvision ResNet-18 at init (seed 0)."""
    torch.manual_seed(0)
    return stem(torchvision.models.resnet18().state_dict())


def measure(budget: detection_scenes.Budget, work: Path, results: Path) -> dict:
    """The stem of every pretrained step's student, per arm in seed order."""
    arms: dict[str, dict] = {}
    for key in detection_scenes.keys(budget):
        arm, _ = detection_scenes.parse_key(key)
        if arm == detection_scenes.RANDOM:
            continue
        run = detection_scenes.run_folder(budget, key, work)
        backbone = run / "student_backbone.pt"
        if not backbone.is_file():
            raise SystemExit(f"detection_stems: error: {backbone} is missing; run python -m benchmarks.detection_scenes first")
        values = stem(torch.load(backbone, map_location="cpu", weights_only=True)["state_dict"], "net.")
        row = arms.setdefault(arm, {"label": detection_scenes.ARMS[arm][0], "conv1_norm": [], "bn1_running_var": []})
        for name, value in values.items():
            row[name].append(value)
    summary = results / "summary.json"  # its code_commits: those of the steps it summarises
    commits = json.loads(summary.read_text())["code_commits"] if summary.is_file() else []
    return {"init": init_stem(), "arms": arms, "steps_code_commits": commits}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection_stems", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the smoke protocol's runs")
    parser.add_argument("--results-dir", type=Path, default=detection_scenes.RESULTS)
    parser.add_argument("--work-dir", type=Path, help="detection_scenes.py's work folder (default ~/.cache/resmo/benchmarks/detection)")
    args = parser.parse_args(argv)
    protocol = "smoke" if args.smoke else "full"
    work = (args.work_dir or Path.home() / ".cache" / "resmo" / "benchmarks" / "detection") / protocol
    results = args.results_dir / protocol
    record = {"command": "python -m benchmarks.detection_stems" + (" --smoke" if args.smoke else ""),
              "protocol": protocol, "date": time.strftime("%Y-%m-%d"), "machine": machine_info(),
              "code": code_provenance(), **measure(detection_scenes.PROTOCOLS[protocol], work, results)}
    save_json(results / "stems.json", record)
    print(json.dumps({"init": record["init"], "arms": record["arms"]}, indent=2))
    return record


if __name__ == "__main__":
    main()
