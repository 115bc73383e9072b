"""Report plots and tables that read right at a glance, on hand-made runs (no training).

- few kNN evaluations are markers, not a line that reads as a trend;
- compared runs with identical numbers stay distinguishable (style, offset, legend);
- gap histograms span the data, not [-1, 1], with exact legend numbers;
- repeated seeds are not counted as independent samples.
"""

from __future__ import annotations

import pytest
import torch

from resmo.eval.gap_diagnostics import cosine_histogram
from resmo.report.curves import draw_knn, draw_losses
from resmo.report.histogram import draw_cosine_histograms
from resmo.report.numbers import cosine_text
from resmo.report.run_data import RunData, Series
from resmo.report.tables import final_table, repeated_seeds


def fake_run(tmp_path, name: str, *, seed: int = 0, evaluations: int = 1, student: float = 44.2,
             steps: int = 10) -> RunData:
    """A run with ``evaluations`` kNN monitor points (plus the random init at epoch 0)."""
    epochs = [float(e) for e in range(evaluations)]
    knn = {f"knn/{encoder}_top1": Series([10.0 * (e + 1) for e in epochs], epochs,
                                         [student + offset + e for e in epochs])
           for encoder, offset in (("student", 0.0), ("teacher", 1.0))}
    loss = {"train/loss_step": Series([float(s) for s in range(steps)], [0.0] * steps,
                                      [5.0 - 0.1 * s for s in range(steps)])}
    return RunData(tmp_path / name, {"seed": seed, "method": "mocov3", "out": str(tmp_path / name)},
                   knn | loss, {"knn_top1_random_init": 10.0}, {}, name)


def data_lines(ax):
    """The lines drawn in data coordinates (not a reference line such as ``axhline``)."""
    return [line for line in ax.get_lines() if line.get_transform() == ax.transData]


def test_knn_with_two_points_draws_markers_without_a_line(tmp_path):
    figure = draw_knn([fake_run(tmp_path, "a", evaluations=1)])  # epoch 0 (init) and epoch 1
    top1, gap = figure.axes[:2]
    lines = data_lines(top1) + data_lines(gap)
    assert len(lines) == 3  # student, teacher, teacher - student
    for line in lines:
        assert len(line.get_xdata()) == 2
        assert line.get_linestyle() == "None" and line.get_marker() not in (None, "None", "")


def test_knn_with_many_points_draws_line_and_markers(tmp_path):
    figure = draw_knn([fake_run(tmp_path, "a", evaluations=5)])
    student, teacher = data_lines(figure.axes[0])
    assert student.get_linestyle() == "-" and teacher.get_linestyle() == "--"
    assert student.get_marker() not in (None, "None", "") and teacher.get_marker() == student.get_marker()
    assert teacher.get_markerfacecolor() == "none" != student.get_markerfacecolor()  # teacher open


def test_identical_runs_stay_distinguishable(tmp_path):
    runs = [fake_run(tmp_path, "a"), fake_run(tmp_path, "b")]
    runs[0].label, runs[1].label = "a (seed=0)", "b (seed=0)"
    knn = draw_knn(runs)
    student_a, _, student_b, _ = data_lines(knn.axes[0])
    assert student_a.get_ydata().tolist() == student_b.get_ydata().tolist()
    assert student_a.get_marker() != student_b.get_marker()
    shift = [b - a for a, b in zip(student_a.get_xdata(), student_b.get_xdata(), strict=True)]
    assert all(0 < s <= 0.1 for s in shift)  # side by side, a small fraction of an epoch
    losses = draw_losses(runs)
    line_a, line_b = data_lines(losses.axes[0])
    assert line_a.get_ydata().tolist() == line_b.get_ydata().tolist()
    assert line_a.get_linestyle() != line_b.get_linestyle() and line_a.get_marker() != line_b.get_marker()
    assert line_a.get_markersize() != line_b.get_markersize()  # open markers nest
    for figure in (knn, losses):
        labels = [text.get_text() for text in figure.legends[0].get_texts()]
        assert {"a (seed=0)", "b (seed=0)"} <= set(labels)


def test_histogram_range_fits_data_and_legend_shows_printed_numbers():
    cosines = 1 - torch.rand(1000, generator=torch.Generator().manual_seed(0)) * 0.15  # 0.85 .. 1
    histogram = cosine_histogram(cosines)
    assert sum(histogram["counts"]) == 1000
    assert 0.83 < histogram["edges"][0] < 0.86 and 0.99 < histogram["edges"][-1] <= 1.0
    assert sum(count > 0 for count in histogram["counts"]) >= 20  # not one or two bars at the edge
    mean = float(cosines.mean())
    figure = draw_cosine_histograms({"output": histogram}, gaps={"output": 1 - mean}, means={"output": mean})
    ax = figure.axes[0]
    low, high = ax.get_xlim()
    span = float(cosines.max() - cosines.min())
    assert float(cosines.min()) - 0.1 * span <= low <= float(cosines.min())
    assert float(cosines.max()) <= high <= float(cosines.max()) + 0.1 * span
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"mean {cosine_text(mean)}"]
    assert ax.get_title() == f"output: intra gap {cosine_text(1 - mean)}"


def test_old_full_range_histograms_are_zoomed_to_their_bars():
    histogram = cosine_histogram(torch.full((50,), 0.9879), bins=50, value_range=(-1.0, 1.0))
    ax = draw_cosine_histograms({"output": histogram}, means={"output": 0.9879}).axes[0]
    low, high = ax.get_xlim()
    assert 0.9 < low < 0.98 and 0.98 < high < 1.03
    assert ax.get_legend().get_texts()[0].get_text() == "mean 0.9879"  # not "~0.980"


def test_repeated_seed_counts_once_and_shows_no_std(tmp_path):
    runs = [fake_run(tmp_path, "a", seed=0), fake_run(tmp_path, "b", seed=0)]
    table = final_table(runs)
    assert table.columns[1] == "same recipe: 1 seed (a, b; seed 0)"
    row = dict((r[0], r[1]) for r in table.rows)
    assert row["kNN top-1 student (monitor)"] == "44.20"  # not "44.20 ± 0.00 (n=2)"
    assert repeated_seeds(runs) == ["runs a and b repeat seed 0: counted once"]


@pytest.mark.parametrize("repeat", [False, True])
def test_distinct_seeds_give_mean_and_std(tmp_path, repeat):
    runs = [fake_run(tmp_path, "a", seed=0), fake_run(tmp_path, "b", seed=1, student=45.0)]
    if repeat:  # a third run repeating seed 1 does not change n or the std
        runs.append(fake_run(tmp_path, "c", seed=1, student=45.0))
    table = final_table(runs)
    row = dict((r[0], r[1]) for r in table.rows)
    assert row["kNN top-1 student (monitor)"] == "44.60 ± 0.57 (n=2)"
    assert table.columns[1].startswith("same recipe: 2 seeds (")
    assert repeated_seeds(runs) == (["runs b and c repeat seed 1: counted once"] if repeat else [])
