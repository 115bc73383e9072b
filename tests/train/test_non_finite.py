"""Non-finite loss terms and gradients: never applied; stop with a checkpoint, or skip a few."""

from __future__ import annotations

import shlex

import pytest
import torch
from torch import nn

import resmo.train.pretrain as pretrain
from resmo.cli import main
from resmo.config import load_config
from resmo.train.non_finite import (
    BatchNormSnapshot,
    NonFiniteStep,
    first_non_finite_gradient,
    first_non_finite_term,
)
from resmo.train.pretrain import execute_run, prepare_run
from resmo.train.stopping import RunStopped
from tests.pretrain_helpers import tiny_overrides

NAN = float("nan")


def inject(run, steps, *, where="loss"):
    """Make the steps in ``steps`` non-finite: the ``ssl`` term, or the input images."""
    method = run.method
    forward = method.forward

    def patched(views, step):
        if step in steps and where == "images":
            views = [view * NAN for view in views]
        result = forward(views, step=step)
        if step in steps and where == "loss":
            result.terms["ssl"] = result.terms["ssl"] * NAN
            result.loss = result.loss * NAN
        return result

    method.forward = patched
    return run


def all_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def test_first_non_finite_term_names_the_component_not_the_total():
    finite = {"loss": torch.tensor(1.0), "ssl": torch.tensor(0.5), "resmo": torch.tensor(0.5)}
    assert first_non_finite_term(finite) is None
    bad = {"loss": torch.tensor(NAN), "ssl": torch.tensor(float("-inf")), "resmo": torch.tensor(0.1)}
    assert first_non_finite_term(bad) == ("ssl", float("-inf"))
    assert first_non_finite_term({"loss": torch.tensor(NAN), "ssl": torch.tensor(1.0)})[0] == "loss"


def test_first_non_finite_gradient_names_the_parameter():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model(torch.ones(1, 2)).sum().backward()
    assert first_non_finite_gradient(model.named_parameters()) is None
    model[1].weight.grad[0, 1] = float("inf")
    assert first_non_finite_gradient(model.named_parameters()) == ("1.weight", float("inf"))


def test_batch_norm_snapshot_undoes_a_forward_pass():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)).train()
    model(torch.randn(4, 3, 5, 5))
    snapshot = BatchNormSnapshot(model)
    snapshot.take()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(torch.full((4, 3, 5, 5), NAN))
    assert not all_finite(model.state_dict())
    snapshot.restore()
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_describe_names_step_and_term():
    step = NonFiniteStep(step=12, epoch=1, batch=4, term="resmo", value=NAN)
    assert step.describe() == "loss term 'resmo' is nan at step 12 (epoch 2, batch 5)"
    grad = NonFiniteStep(12, 1, 4, "gradient", float("inf"), detail="student.head.weight")
    assert "gradient of 'student.head.weight' is inf at step 12" in grad.describe()


def test_nan_loss_stops_with_a_message_and_a_finite_checkpoint(tmp_path):
    out = tmp_path / "run"
    run = inject(prepare_run(load_config(None, tiny_overrides(out))), {8})
    with pytest.raises(RunStopped) as stopped:
        execute_run(run)
    stop = stopped.value
    assert stop.exit_code == 1 and stop.reason == "non-finite" and stop.step == 8
    assert "loss term 'ssl' is nan at step 8 (epoch 2, batch 3)" in stop.message
    assert "train.max_bad_steps" in stop.message and "\n" not in stop.message
    saved = torch.load(stop.checkpoint, weights_only=False)
    assert stop.checkpoint == out / "checkpoints" / "last.ckpt"
    assert saved["global_step"] == 9  # the bad step counts as taken, but changed nothing
    assert all_finite(saved["state_dict"])
    assert all_finite(run.method.state_dict())
    assert saved["loop"]["non_finite"]["bad_steps"][0]["term"] == "ssl"
    # the run continues from there (the bad batch stays skipped) and finishes
    resumed = prepare_run(load_config(None, tiny_overrides(out)), resume="auto")
    summary = execute_run(resumed)
    assert resumed.loop.step == 12 and summary["knn_top1_student"] is not None
    assert [bad["step"] for bad in summary["skipped_steps"]] == [8]


def test_nan_images_are_skipped_within_the_budget(tmp_path):
    out = tmp_path / "run"
    run = prepare_run(load_config(None, [*tiny_overrides(out), "train.max_bad_steps=2"]))
    inject(run, {3, 4}, where="images")  # NaN inputs also poison BatchNorm statistics
    with pytest.warns(UserWarning, match="skipped a step: loss term"):
        summary = execute_run(run)
    assert [bad["step"] for bad in summary["skipped_steps"]] == [3, 4]
    assert run.loop.step == 12
    assert all_finite(run.method.state_dict())  # BatchNorm statistics restored
    assert summary["final_loss"] is not None and summary["final_loss"] == summary["final_loss"]


def test_a_bad_step_beyond_the_budget_stops(tmp_path):
    run = prepare_run(load_config(None, [*tiny_overrides(tmp_path / "run"), "train.max_bad_steps=1"]))
    inject(run, {2, 7})
    with pytest.raises(RunStopped, match="more than train.max_bad_steps=1 bad steps") as stopped:
        with pytest.warns(UserWarning, match="at step 2"):
            execute_run(run)
    assert "at step 7" in stopped.value.message


def test_infinite_gradient_stops_naming_the_parameter(tmp_path):
    run = prepare_run(load_config(None, tiny_overrides(tmp_path / "run")))
    name, parameter = next(iter(run.method.named_parameters()))
    before = {}

    class Snapshot:
        def on_batch_start(self, loop):
            if loop.step == 4:
                before.update({k: v.clone() for k, v in loop.method.state_dict().items()})

    parameter.register_hook(lambda grad: grad * float("inf") if run.loop.step == 4 else grad)
    run.loop.hooks.append(Snapshot())
    with pytest.raises(RunStopped) as stopped:
        execute_run(run)
    assert f"the gradient of '{name}' is" in stopped.value.message and "at step 4" in stopped.value.message
    after = run.method.state_dict()
    for key, value in before.items():  # the step changed nothing: weights, teacher, queue
        assert torch.equal(after[key], value), key


def test_command_line_exit_code_and_one_line_message(tmp_path, capsys, monkeypatch):
    original = pretrain.prepare_run
    monkeypatch.setattr(pretrain, "prepare_run", lambda *a, **k: inject(original(*a, **k), {3}))
    out = tmp_path / "run"
    code = main(["pretrain", *tiny_overrides(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("resmo pretrain:")]
    assert code == 1 and len(lines) == 1, err
    assert "loss term 'ssl' is nan at step 3" in lines[0]
    hint = shlex.split(lines[0].split("continue with: ", 1)[1])
    assert hint == ["resmo", "pretrain", *tiny_overrides(out)[1:], "--out", str(out), "--resume", "auto"]
