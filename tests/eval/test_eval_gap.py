"""`resmo gap`: same-view cosines per level on held-out images, accuracy gap, histogram."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from resmo.eval.gap_diagnostics import cosine_histogram, same_view_cosines
from resmo.losses.gap import intra_gap
from tests.conftest import build_method
from tests.eval_helpers import reference_features, run_cli


def image_loader(count: int = 12, size: int = 16) -> DataLoader:
    images = torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(0))
    return DataLoader(TensorDataset(images, torch.zeros(count, dtype=torch.long)), batch_size=5)


@pytest.mark.parametrize("name", ["mocov2", "mocov3"])
def test_fresh_teacher_has_zero_gap_where_it_copies_the_student(name):
    """At initialisation the teacher is an exact copy: features and projections agree.
    The output level differs only through MoCo v3's predictor (student side only)."""
    cosines = same_view_cosines(build_method(name), image_loader())
    for level in ("features", "projection"):
        torch.testing.assert_close(cosines[level], torch.ones(12), rtol=0, atol=1e-5)
    if name == "mocov2":  # no predictor: output = projection
        torch.testing.assert_close(cosines["output"], torch.ones(12), rtol=0, atol=1e-5)
    else:
        assert cosines["output"].mean() < 0.99


def test_cosines_match_intra_gap_of_the_training_step():
    method = build_method("byol")
    with torch.no_grad():  # move the teacher away from the student
        for parameter in method.teacher.module.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    cosines = same_view_cosines(method, image_loader())
    images = torch.cat([x for x, _ in image_loader()])
    method.eval()
    with torch.no_grad():
        student, teacher = method.encode_student([images]), method.encode_teacher([images])
    for level in ("features", "projection", "output"):
        expected = intra_gap(student.level(level), teacher=teacher.level(level))
        assert 1 - cosines[level].mean() == pytest.approx(float(expected), abs=1e-6)
        assert cosines[level].min() < 0.9999  # the perturbation shows at every level


def test_cosine_histogram_counts_every_value():
    values = torch.tensor([-1.0, -0.99, 0.0, 0.5, 0.999, 1.0])
    histogram = cosine_histogram(values, bins=4, value_range=(-1.0, 1.0))
    assert histogram["edges"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert histogram["counts"] == [2, 0, 1, 3]


def test_cosine_histogram_fits_the_range_to_the_data():
    values = torch.cat([torch.linspace(0.9, 1.0, 199), torch.tensor([-0.5])])  # one outlier
    histogram = cosine_histogram(values)
    assert 0.88 < histogram["edges"][0] < 0.9 and histogram["edges"][-1] == 1.0
    assert sum(histogram["counts"]) == 200 and histogram["counts"][0] >= 1  # outlier in the first bin
    assert len(histogram["counts"]) == 14  # square-root choice: round(200 ** 0.5)
    same = cosine_histogram(torch.ones(10))
    assert same["edges"][0] < 1.0 == same["edges"][-1] and sum(same["counts"]) == 10


@pytest.fixture(scope="module")
def gap_result(tiny_run_copy):
    from resmo.cli import main

    run = tiny_run_copy
    assert main(["gap", str(run), "--device", "cpu"]) == 0
    (path,) = (run / "eval").glob("gap-*.json")
    return run, json.loads(path.read_text())


def test_gap_json_levels_histograms_and_accuracy_gap(gap_result):
    run, saved = gap_result
    assert set(saved["intra_gap"]) == {"features", "projection", "output"}
    for level, gap in saved["intra_gap"].items():
        assert 0.0 < gap < 2.0
        assert gap == pytest.approx(1 - saved["cosine_mean"][level])
        assert sum(saved["cosine_histogram"][level]["counts"]) == saved["num_val"] == 96
    knn = saved["knn"]
    assert knn["teacher_minus_student"]["top1"] == pytest.approx(knn["teacher"]["top1"] - knn["student"]["top1"])
    # the accuracy gap's kNN numbers are those of the student's and teacher's own features
    from resmo.eval.knn import weighted_knn

    for encoder in ("student", "teacher"):
        bank, bank_labels = reference_features(run, encoder, "train")
        queries, labels = reference_features(run, encoder, "val")
        expected = weighted_knn(bank, bank_labels, queries, labels, k=20, temperature=0.07, num_classes=10)
        assert knn[encoder]["top1"] == pytest.approx(expected.top1)


def test_gap_histogram_png_is_a_real_image(gap_result):
    _, saved = gap_result
    pixels = np.asarray(Image.open(saved["histogram_png"]).convert("RGB"), dtype=np.float64)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 300
    assert pixels.var() > 0 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10
    # the bars are drawn: enough pixels of the bar colour (#4c72b0)
    assert (np.abs(pixels - [0x4C, 0x72, 0xB0]).sum(axis=2) < 30).sum() > 200


def test_gap_cli_prints_levels(gap_result, capsys):
    run, _ = gap_result
    code, out, _ = run_cli(["gap", run, "--max-val", "40"], capsys)
    assert code == 0
    for level in ("features", "projection", "output"):
        assert any(line.startswith(level) for line in out.splitlines())
    assert "teacher - student" in out and "gap-synthetic-32px-192x40.json" in out


def test_histogram_numbers_are_the_printed_ones(gap_result, capsys, monkeypatch):
    """The legend and title of the PNG ``resmo gap`` draws read as the numbers it prints."""
    import resmo.report.histogram as histogram

    figures = []
    monkeypatch.setattr(histogram, "save_png", lambda figure, path: figures.append(figure) or path)
    run, _ = gap_result
    code, out, _ = run_cli(["gap", run, "--device", "cpu"], capsys)
    assert code == 0
    printed = {line.split()[0]: line.split()[1:3] for line in out.splitlines()
               if line.split() and line.split()[0] in ("features", "projection", "output")}
    (figure,) = figures
    for ax in figure.axes:
        level = ax.get_title().split(":")[0]
        gap, mean = printed[level]
        assert ax.get_title() == f"{level}: intra gap {gap}"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"mean {mean}"]
        low, high = ax.get_xlim()
        assert -1.0 < low < float(mean) < high <= 1.1 and high - low < 1.9  # fitted, not [-1, 1]
