"""Linear probe: known answers on features, the augmented variant, `resmo eval linear`."""

from __future__ import annotations

import json

import pytest
import torch

from resmo.eval.linear import fit_linear_probe, linear_probe, topk_accuracy
from resmo.eval.linear_augmented import fit_linear_probe_on_views
from resmo.eval.runs import load_run
from tests.eval_helpers import reference_features, run_cli


def separable(n: int, *, classes: int = 5, dim: int = 20, margin: float = 1.0, seed: int = 0):
    """Labels ``argmax(W x + b)`` of a fixed random linear map, kept where the best logit
    beats the second by ``margin``: linearly separable by construction."""
    generator = torch.Generator().manual_seed(123)
    weight, bias = torch.randn(classes, dim, generator=generator), torch.randn(classes, generator=generator)
    x = torch.randn(4 * n, dim, generator=torch.Generator().manual_seed(seed))
    logits = x @ weight.T + bias
    top2 = logits.topk(2, dim=1).values
    keep = (top2[:, 0] - top2[:, 1]) > margin
    return x[keep][:n], logits[keep][:n].argmax(dim=1)


def test_linearly_separable_features_give_100_percent():
    train_x, train_y = separable(1500, seed=0)
    val_x, val_y = separable(500, seed=1)
    # an affine distortion per dimension must not matter: the probe standardises features
    scale, shift = torch.logspace(-3, 3, 20), torch.linspace(-100, 100, 20)
    result = linear_probe(train_x * scale + shift, train_y, val_x * scale + shift, val_y, num_classes=5)
    assert result.train_top1 == 100.0 and result.top1 == 100.0 and result.top5 == 100.0


def test_shuffled_labels_give_about_chance():
    train_x, train_y = separable(1500, seed=0)
    val_x, val_y = separable(1000, seed=1)
    shuffled = train_y[torch.randperm(len(train_y), generator=torch.Generator().manual_seed(3))]
    result = linear_probe(train_x, shuffled, val_x, val_y, num_classes=5)
    assert abs(result.top1 - 20.0) < 6.0, result


def test_probe_is_deterministic_and_handles_constant_dimensions():
    x, y = separable(300, seed=4)
    x = torch.cat([x, torch.full((len(x), 1), 7.0)], dim=1)  # a dead feature: std 0
    a = fit_linear_probe(x, y, num_classes=5, steps=50)
    b = fit_linear_probe(x, y, num_classes=5, steps=50)
    assert torch.isfinite(a.linear.weight).all()
    assert torch.equal(a.linear.weight, b.linear.weight) and torch.equal(a.linear.bias, b.linear.bias)


def test_topk_accuracy_counts_by_hand():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 2])
    top1, top5 = topk_accuracy(logits, labels)  # 3 classes: top-5 = top-3 = always right
    assert top1 == pytest.approx(200 / 3) and top5 == 100.0


@pytest.fixture(scope="module")
def run_folder(tiny_run_copy):
    return tiny_run_copy


def test_eval_linear_cli_student_and_teacher(run_folder, capsys):
    code, out, _ = run_cli(["eval", "linear", run_folder, "--encoder", "both", "--device", "cpu"], capsys)
    assert code == 0, out
    rows = [line.split() for line in out.splitlines()]
    lines = {row[0]: row[1:] for row in rows if len(row) == 4 and row[0] in ("student", "teacher")}
    assert "student" in lines and "teacher" in lines
    (path,) = (run_folder / "eval").glob("linear-*.json")
    saved = json.loads(path.read_text())
    assert saved["settings"] == {"weight_decay": 1e-4, "lbfgs_steps": 200}
    for encoder in ("student", "teacher"):
        train_x, train_y = reference_features(run_folder, encoder, "train")
        val_x, val_y = reference_features(run_folder, encoder, "val")
        expected = linear_probe(train_x, train_y, val_x, val_y, num_classes=10)
        assert saved["results"][encoder]["top1"] == pytest.approx(expected.top1, abs=1.1)
        assert float(lines[encoder][0]) == pytest.approx(saved["results"][encoder]["top1"], abs=0.01)
    teacher, student = saved["results"]["teacher"], saved["results"]["student"]
    assert saved["teacher_minus_student"]["top1"] == pytest.approx(teacher["top1"] - student["top1"])


def test_augmented_probe_is_seeded_and_leaves_global_rng_alone(run_folder):
    run = load_run(run_folder)
    from resmo.eval.features import build_eval_data

    data = build_eval_data(run, max_train=64)
    mean, std = torch.zeros(64), torch.ones(64)
    state = torch.get_rng_state()

    def fit(seed):
        return fit_linear_probe_on_views(
            run.encoder("teacher"), data.train, image_size=32, num_classes=10, mean=mean, std=std,
            epochs=1, batch_size=32, seed=seed,
        ).linear.weight

    first, again, other = fit(0), fit(0), fit(1)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(torch.get_rng_state(), state)
    assert not run.encoder("teacher").training  # left in eval mode


def test_eval_linear_augmented_cli(run_folder, capsys):
    args = ["eval", "linear", run_folder, "--augment", "--epochs", "1", "--max-train", "64", "--encoder", "student"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "augmented images" in out
    (path,) = (run_folder / "eval").glob("linear_augmented-*.json")
    saved = json.loads(path.read_text())
    assert set(saved["results"]) == {"student"} and saved["teacher_minus_student"] is None
    assert saved["num_train"] == 64 and saved["settings"]["epochs"] == 1
    assert 0.0 <= saved["results"]["student"]["top1"] <= 100.0
