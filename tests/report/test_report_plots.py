"""Report plots and tables that read right at a glance, on hand-made runs (no training).

- few kNN evaluations are markers, not a line that reads as a trend;
- compared runs with identical numbers stay distinguishable (style, offset, legend);
- gap histograms span the data, not [-1, 1], with exact legend numbers;
- repeated seeds are not counted as independent samples;
- legends show full run names with the differing settings on separate lines, and no title or
  legend text reaches outside the saved PNG (long names, long data paths).
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from resmo.eval.gap_diagnostics import cosine_histogram
from resmo.report.curves import draw_intra_gap, draw_knn, draw_losses, draw_schedules
from resmo.report.histogram import draw_cosine_histograms
from resmo.report.numbers import cosine_text
from resmo.report.plotting import save_png
from resmo.report.run_data import RunData, Series, assign_labels, described, legend_text
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


LONG_NAMES = [f"mocov3-newcomer-small-folder-run-{index}-with-a-name-longer-than-a-panel" for index in range(3)]


def long_named_runs(tmp_path) -> list[RunData]:
    """Three runs with long folder names whose recipes differ in three keys, labelled as
    ``resmo report`` labels them."""
    runs = [fake_run(tmp_path, name, evaluations=2) for name in LONG_NAMES]
    for index, run in enumerate(runs):
        run.config |= {"data": {"name": f"/home/someone/projects/newcomer/data/small-{index}",
                                "pipeline": ("torchvision", "batched", "auto")[index]},
                       "train": {"epochs": 2 + index}}
    assign_labels(runs)
    return runs


def titles_and_legends(figure) -> list:
    """Every title (axes titles, suptitle) and legend text of ``figure`` that has text."""
    texts = [title for ax in figure.axes for title in (ax.title, ax._left_title, ax._right_title)]
    texts += [text for legend in [*figure.legends, *(ax.get_legend() for ax in figure.axes)] if legend
              for text in legend.get_texts()]
    if figure._suptitle is not None:
        texts.append(figure._suptitle)
    return [text for text in texts if text.get_text().strip()]


def assert_inside_saved_png(figure, path):
    """Every title and legend text lies inside the figure, and the PNG is that figure."""
    with Image.open(path) as image:
        width, height = image.size
    assert abs(width - figure.bbox.width) < 1 and abs(height - figure.bbox.height) < 1  # whole pixels
    renderer = figure.canvas.get_renderer()
    texts = titles_and_legends(figure)
    assert texts
    for text in texts:
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height, (text.get_text(), box)


@pytest.mark.parametrize("draw", [draw_knn, draw_losses, draw_intra_gap, draw_schedules])
def test_comparison_legends_show_full_names_and_fit_the_saved_figure(tmp_path, draw):
    runs = long_named_runs(tmp_path)
    figure = draw(runs)
    path = save_png(figure, tmp_path / "plot.png")
    entries = [text.get_text() for text in figure.legends[0].get_texts()]
    assert entries[:3] == [f"{name}\ndata.name=/home/someone/projects/newcomer/data/small-{index}\n"
                           f"data.pipeline={('torchvision', 'batched', 'auto')[index]}\ntrain.epochs={2 + index}"
                           for index, name in enumerate(LONG_NAMES)]
    assert_inside_saved_png(figure, path)


def test_many_differing_settings_are_counted_in_one_more_line(tmp_path):
    runs = [fake_run(tmp_path, name) for name in ("a", "b")]
    for index, run in enumerate(runs):
        run.config |= {f"key{k}": index for k in range(6)}
    assign_labels(runs)
    assert legend_text(runs[1]).splitlines() == [
        "b", "key0=1", "key1=1", "key2=1", "key3=1", "+2 more differing settings (see the table)"]
    assert described(runs[0]) == "a (key0=0, key1=0, key2=0, key3=0, key4=0, key5=0)"


def test_histogram_title_with_a_long_data_path_fits(tmp_path):
    histogram = cosine_histogram(1 - torch.rand(200, generator=torch.Generator().manual_seed(0)) * 0.1)
    title = "/home/someone/projects/newcomer/data/a-folder-with-a-long-name val (200 images), checkpoint step 12345"
    figure = draw_cosine_histograms({"output": histogram}, title=title)
    path = save_png(figure, tmp_path / "hist.png")
    assert figure._suptitle.get_text() == title
    assert_inside_saved_png(figure, path)
