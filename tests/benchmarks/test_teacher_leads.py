"""The teacher-leads search builds valid ``resmo pretrain`` commands for every schedule."""

from __future__ import annotations

import pytest

from benchmarks.teacher_leads import SCHEDULES, pretrain_arguments
from resmo.cli import _flag_settings, build_parser
from resmo.config.loader import load_config
from resmo.train.plan import plan_run


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_plans_a_plain_run_on_the_held_out_split(name, tmp_path):
    data = tmp_path / "cifar"
    for split in ("train",):
        for label in ("a", "b"):
            (data / split / label).mkdir(parents=True)
    args = build_parser().parse_args(pretrain_arguments(SCHEDULES[name], 3, data, tmp_path / "run"))
    config = load_config(args.config, list(args.overrides), settings=_flag_settings(args))
    plan = plan_run(config)
    schedule = SCHEDULES[name]
    assert plan.config.resmo.weight == 0 and plan.config.seed == 3
    assert plan.config.data.val_fraction == 0.1
    assert plan.config.monitor.knn_every_epochs == schedule.knn_every_epochs
    assert (plan.config.train.epochs, plan.config.train.batch_size) == (schedule.epochs, schedule.batch_size)
    options = plan.config.method_options["mocov3"]
    assert (options["momentum"], options["final_momentum"]) == (schedule.momentum, schedule.final_momentum)
    assert (plan.config.optimizer.min_lr == plan.config.optimizer.lr) == schedule.constant_lr


def test_the_docs_section_pairs_teacher_and_student_within_runs():
    from benchmarks.render_docs import teacher_leads_section

    def record(seed, student, teacher):
        return {"schedule": "s", "seed": seed, "train_images": 2700, "date": "2026-12-07",
                "settings": {"constant_lr": True, "momentum": 0.99, "epochs": 40, "batch_size": 128},
                "knn_history": [{"epoch": 40, "student": student, "teacher": teacher}],
                "teacher_minus_student": teacher - student, "best_teacher_minus_student": teacher - student,
                "code": {"commit": "abcdef0123"}}

    lines = teacher_leads_section([record(0, 40.0, 42.0), record(1, 41.0, 42.0), record(2, 40.0, 43.0)])
    assert "| s | 1 | 2700 | 40 | 128 | yes | 0.99 | 41.0 | 42.0 | +1.0 | +1.0 | 2026-12-07, `abcdef0` |" in lines
    # differences 2, 1, 3: mean 2, sd 1, t(0.975, 2) = 4.3027 -> 2 +- 4.3027 / sqrt(3)
    assert ("- s, the manipulation check: teacher minus student at the end, paired within each run, over seeds "
            "0, 1, 2: +2.00 points [-0.48, +4.48] (95 % t-interval), not told apart from 0.") in lines
    assert teacher_leads_section([])[-2].startswith("Not measured yet: `python -m benchmarks.teacher_leads`")
