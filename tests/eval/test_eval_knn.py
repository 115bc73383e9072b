"""Weighted kNN: known answers, and `resmo eval knn` on student and teacher of one checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from resmo.eval import features as features_module
from resmo.eval.knn import weighted_knn
from tests.eval_helpers import reference_features, run_cli


def blobs(per_class: int, num_classes: int, dim: int, *, seed: int, spread: float = 0.3):
    """Class ``c`` around ``5 * e_c`` (orthogonal directions): separable by cosine."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    centres = 5.0 * torch.eye(dim)[:num_classes]
    return centres[labels] + spread * torch.randn(len(labels), dim, generator=generator), labels


@pytest.mark.parametrize("k", [20, 200])
def test_separable_features_give_100_percent(k):
    train, train_labels = blobs(250, 4, 16, seed=0)
    val, val_labels = blobs(100, 4, 16, seed=1)
    result = weighted_knn(train, train_labels, val, val_labels, k=k, temperature=0.07)
    assert result.top1 == 100.0 and result.top5 == 100.0 and result.k == k


@pytest.mark.parametrize("k", [20, 200])
def test_shuffled_labels_give_about_chance(k):
    train, train_labels = blobs(500, 8, 16, seed=0)
    val, val_labels = blobs(250, 8, 16, seed=1)
    shuffled = train_labels[torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(2))]
    result = weighted_knn(train, shuffled, val, val_labels, k=k, temperature=0.07)
    assert abs(result.top1 - 100 / 8) < 5.0, result
    assert abs(result.top5 - 500 / 8) < 8.0, result  # top-5 of 8 classes: chance 62.5 %


def test_votes_are_weighted_by_exp_cos_over_t():
    """Two neighbours of class 0 far away lose to one very close neighbour of class 1."""
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.05, 1.0]])
    labels = torch.tensor([1, 0, 0])
    query = torch.tensor([[1.0, 0.02]])
    assert weighted_knn(bank, labels, query, torch.tensor([1]), k=3, temperature=0.07).top1 == 100.0
    # with a very high temperature the votes are nearly equal: the majority (class 0) wins
    assert weighted_knn(bank, labels, query, torch.tensor([1]), k=3, temperature=1e3).top1 == 0.0


@pytest.fixture(scope="module")
def run_folder(tiny_run_copy):
    return tiny_run_copy


@pytest.fixture(scope="module")
def knn_both(run_folder):
    """`resmo eval knn RUN --encoder both`, stdout and the saved JSON."""
    from resmo.cli import main

    assert main(["eval", "knn", str(run_folder), "--encoder", "both", "--device", "cpu"]) == 0
    (path,) = (run_folder / "eval").glob("knn-*.json")
    return json.loads(path.read_text())


def test_student_and_teacher_get_their_own_numbers(run_folder, knn_both):
    assert knn_both["k"] == [20, 200] and knn_both["temperature"] == 0.07
    assert set(knn_both["results"]) == {"student", "teacher"}
    for encoder in ("student", "teacher"):
        bank, bank_labels = reference_features(run_folder, encoder, "train")
        queries, query_labels = reference_features(run_folder, encoder, "val")
        for k in (20, 200):
            expected = weighted_knn(bank, bank_labels, queries, query_labels, k=k, temperature=0.07, num_classes=10)
            saved = knn_both["results"][encoder][f"k{k}"]
            assert saved["top1"] == pytest.approx(expected.top1) and saved["top5"] == pytest.approx(expected.top5)
    for k in (20, 200):
        gap = knn_both["teacher_minus_student"][f"k{k}"]["top1"]
        assert gap == pytest.approx(knn_both["results"]["teacher"][f"k{k}"]["top1"] - knn_both["results"]["student"][f"k{k}"]["top1"])


def test_cached_features_come_from_different_weights(run_folder, knn_both):
    cache = run_folder / "eval" / "cache"
    student = torch.load(next(cache.glob("*-student-*-val.pt")), weights_only=True)["features"]
    teacher = torch.load(next(cache.glob("*-teacher-*-val.pt")), weights_only=True)["features"]
    assert student.shape == teacher.shape == (96, 64)
    assert not torch.allclose(student, teacher)
    expected, _ = reference_features(run_folder, "teacher", "val")
    torch.testing.assert_close(teacher, expected, rtol=0, atol=1e-6)


def test_features_are_cached_and_reused(run_folder, knn_both, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise AssertionError("features were extracted again instead of read from the cache")

    monkeypatch.setattr(features_module, "extract_features", fail)
    code, out, _ = run_cli(["eval", "knn", run_folder, "--encoder", "teacher", "--k", "20"], capsys)
    assert code == 0
    assert "teacher" in out and "student" not in out.split("\n", 2)[-1]
    # another subset of the data is another cache key: extraction is needed (and fails here)
    with pytest.raises(AssertionError, match="extracted again"):
        run_cli(["eval", "knn", run_folder, "--encoder", "teacher", "--max-val", "50"], capsys)


def test_eval_output_shows_both_encoders(run_folder, knn_both, capsys):
    code, out, _ = run_cli(["eval", "knn", run_folder], capsys)
    assert code == 0
    rows = {tuple(line.split()[:2]) for line in out.splitlines()}
    assert {("student", "20"), ("student", "200"), ("teacher", "20"), ("teacher", "200")} <= rows
    assert "teacher - student top-1" in out and "saved" in out
