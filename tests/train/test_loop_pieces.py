"""The training loop's pieces on hand-checked cases: the learning-rate schedule, epoch
means, images per second, the non-finite budget and metrics.csv across a resume."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from resmo.optim.optimizers import build_lr_scheduler, warmup_cosine_factor
from resmo.train.epoch_stats import EpochMeans, Throughput
from resmo.train.metrics_log import MetricsLog
from resmo.train.non_finite import NonFiniteBudget, NonFiniteStep
from resmo.train.step_check import StepCheck, scaler_skips, step_flags


def test_warmup_then_cosine_to_the_minimum():
    # 10 steps, 2 of warm-up: (s + 1) / 2, then min + (1 - min) (1 + cos(pi (s - 2) / 8)) / 2
    factors = [warmup_cosine_factor(s, total_steps=10, warmup_steps=2, min_ratio=0.1) for s in range(11)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[6] == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert factors[4] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert factors[10] == pytest.approx(0.1) and min(factors) == pytest.approx(0.1)


def test_the_scheduler_sets_the_learning_rate_of_every_step():
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([weight], lr=0.4)
    scheduler = build_lr_scheduler(optimizer, total_steps=4, warmup_steps=1, lr=0.4, min_lr=0.0)
    seen = []
    for _ in range(4):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.4, 0.4, 0.4 * (1 + math.cos(math.pi / 3)) / 2, 0.4 * (1 + math.cos(2 * math.pi / 3)) / 2])


def test_epoch_means_survive_a_state_round_trip_mid_epoch():
    straight, resumed = EpochMeans(), EpochMeans()
    steps = [{"train/loss": torch.tensor(1.0), "gap/output": torch.tensor(0.5)},
             {"train/loss": torch.tensor(3.0), "gap/output": torch.tensor(0.25)},
             {"train/loss": torch.tensor(8.0), "gap/output": torch.tensor(0.0)}]
    for values in steps:
        straight.add(values)
    resumed.add(steps[0])
    state = resumed.state_dict()
    resumed = EpochMeans()
    resumed.load_state_dict(state)
    for values in steps[1:]:
        resumed.add(values)
    assert straight.end_epoch() == resumed.end_epoch() == {"train/loss": 4.0, "gap/output": 0.25}
    straight.reset()
    assert straight.means() == {} and straight.last_epoch == {"train/loss": 4.0, "gap/output": 0.25}


def test_throughput_counts_images_per_second_and_skips_an_empty_epoch():
    throughput = Throughput()
    throughput.start()
    throughput.add(64)
    rate = throughput.end_epoch()
    assert rate is not None and rate > 0 and throughput.per_epoch == [rate]
    throughput.start()
    assert throughput.end_epoch() is None and len(throughput.per_epoch) == 1
    throughput.start()
    throughput.add(32)
    resumed = Throughput()  # a checkpoint mid-epoch: its images count in the epoch's rate
    resumed.load_state_dict(throughput.state_dict())
    resumed.start(resumed=True)
    assert resumed.images == 32 and resumed.end_epoch() is not None and len(resumed.per_epoch) == 2


def test_the_budget_skips_within_it_and_stops_beyond_it():
    budget = NonFiniteBudget(max_bad_steps=1, max_scaler_skips_in_a_row=2)
    bad = NonFiniteStep(3, 0, 3, "ssl", float("nan"))
    with pytest.warns(UserWarning, match="skipped a step: loss term 'ssl' is nan at step 3"):
        assert budget.after_step(bad, False, warn=True) is False
    assert budget.after_step(None, True, warn=True) is False
    assert budget.after_step(None, True, warn=True) is False
    assert budget.after_step(None, False, warn=True) is False  # an applied step ends the series
    assert budget.scaler_skips_in_a_row == 0 and budget.scaler_skipped_steps == 2
    assert [budget.after_step(None, True, warn=True) for _ in range(3)] == [False, False, True]
    assert "skipped 3 steps in a row" in budget.stop_message(None, 8, "kept")
    assert budget.after_step(NonFiniteStep(9, 1, 1, "ssl", float("inf")), False, warn=True) is True
    assert "more than train.max_bad_steps=1" in budget.stop_message(bad, 9, "kept")


def test_a_step_is_applied_unless_bad_or_skipped_by_the_scaler():
    assert StepCheck().applied and StepCheck(stop=True).applied
    assert not StepCheck(scaler_skipped=True).applied
    assert not StepCheck(bad=NonFiniteStep(0, 0, 0, "loss", float("nan"))).applied


def test_the_step_flags_and_who_skips_an_overflow():
    finite, overflowed = torch.tensor(True), [torch.ones(2), torch.tensor([1.0, float("inf")])]
    assert step_flags(finite, [torch.ones(2)], stop_requested=False).tolist() == [0.0, 0.0, 0.0]
    assert step_flags(finite, overflowed, stop_requested=True).tolist() == [0.0, 1.0, 1.0]
    assert step_flags(torch.tensor(False), [torch.ones(2)], stop_requested=False).tolist() == [1.0, 0.0, 0.0]
    # the fp16 scaler skips an overflow from finite terms; a term that is not finite is a bad step
    assert scaler_skips(False, True, "16-mixed") and scaler_skips(False, True, "16")
    assert not scaler_skips(True, True, "16-mixed") and not scaler_skips(False, False, "16-mixed")
    assert not scaler_skips(False, True, "bf16-mixed") and not scaler_skips(False, True, "32-true")


def rows(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_metrics_csv_gains_columns_and_keeps_earlier_steps_on_resume(tmp_path):
    log = MetricsLog(tmp_path)
    log.write({"train/loss_step": 2.0}, step=0, epoch=0)
    log.write({"train/loss_step": 1.5}, step=1, epoch=0)
    log.write({"train/loss_epoch": 1.75, "knn/student_top1": 12.5}, step=1, epoch=0)
    log.write({"train/loss_step": 1.0}, step=2, epoch=1)  # after the checkpoint at step 2
    log.close()
    written = rows(tmp_path / "metrics.csv")
    assert list(written[0]) == ["epoch", "step", "knn/student_top1", "train/loss_epoch", "train/loss_step"]
    assert [(r["step"], r["train/loss_step"], r["train/loss_epoch"]) for r in written] == [
        ("0", "2.0", ""), ("1", "1.5", ""), ("1", "", "1.75"), ("2", "1.0", "")]
    resumed = MetricsLog(tmp_path, keep_before_step=2)  # the resumed run logs step 2 again
    resumed.write({"train/loss_step": 0.5}, step=2, epoch=1)
    assert [(r["step"], r["train/loss_step"]) for r in rows(tmp_path / "metrics.csv")] == [
        ("0", "2.0"), ("1", "1.5"), ("1", ""), ("2", "0.5")]
    fresh = MetricsLog(tmp_path)  # a new run in the folder starts the file over
    fresh.write({"train/loss_step": 9.0}, step=0, epoch=0)
    assert [r["train/loss_step"] for r in rows(tmp_path / "metrics.csv")] == ["9.0"]
    MetricsLog(tmp_path / "other", enabled=False).write({"x": 1.0}, step=0, epoch=0)  # not rank 0
    assert not (tmp_path / "other").exists()
