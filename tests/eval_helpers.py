"""Helpers for the eval / report / export tests: tiny runs, CLI calls, reference features.

``reference_features`` recomputes features without resmo.eval (the backbone exported by
``resmo pretrain``, loaded by ``load_backbone``, on the run's data through
``eval_transform``), so the eval code is checked against an independent path.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from resmo.backbone_files import load_backbone
from resmo.cli import main
from resmo.config import load_config
from resmo.data import EvalDataset, build_datasets, eval_transform
from resmo.train.pretrain import execute_run, prepare_run
from tests.pretrain_helpers import tiny_overrides


def make_run(out: Path, *extra: str, epochs: int = 2, samples: int = 192, method: str = "mocov3") -> Path:
    """Train a tiny synthetic run into ``out`` (seconds) and return ``out``."""
    overrides = tiny_overrides(out, method=method, epochs=epochs, samples=samples) + list(extra)
    execute_run(prepare_run(load_config(None, overrides)))
    return out


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """``resmo ARGS`` in-process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@torch.no_grad()
def reference_features(run: Path, encoder: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of ``<run>/<encoder>_backbone.pt`` (eval mode) on the run's synthetic data."""
    config = load_config(run / "config.yaml")
    splits = build_datasets("synthetic", seed=config.seed, synthetic_options=config.data.synthetic,
                            image_size=config.data.image_size)
    dataset = {"train": splits.eval_train, "val": splits.val}[split]
    loader = DataLoader(EvalDataset(dataset, eval_transform(splits.image_size)), batch_size=64)
    backbone = load_backbone(run / f"{encoder}_backbone.pt").eval()
    features, labels = zip(*[(backbone(x), y) for x, y in loader], strict=True)
    return torch.cat(features), torch.cat(labels)
