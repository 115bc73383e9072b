"""`resmo pretrain` end to end on a tiny synthetic run: run folder, summary, exports, resume."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from resmo.backbone_files import load_backbone
from resmo.config import load_config
from resmo.losses.default_weight import default_weight
from resmo.train.pretrain import execute_run, prepare_run
from tests.pretrain_helpers import ON_CPU, tiny_overrides

SUMMARY_KEYS = {
    "method", "backbone", "data", "epochs", "resmo_weight", "knn_top1_student",
    "knn_top1_teacher", "knn_top1_random_init", "intra_gap", "images_per_second", "wall_seconds",
}


def run(overrides, resume=None, hooks=()):
    prepared = prepare_run(load_config(None, [*overrides, *ON_CPU]), resume=resume)
    prepared.loop.hooks.extend(hooks)
    return prepared, execute_run(prepared)


def test_run_folder_summary_and_exports(tmp_path):
    out = tmp_path / "run"
    prepared, summary = run(tiny_overrides(out, epochs=1))
    for name in ("config.yaml", "metrics.csv", "summary.json", "student_backbone.pt",
                 "teacher_backbone.pt", "checkpoints/last.ckpt"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(saved)
    assert saved["epochs"] == 1 and saved["method"] == "mocov3" and saved["resmo_weight"] == default_weight("mocov3", "synthetic")
    for key in ("knn_top1_student", "knn_top1_teacher", "knn_top1_random_init"):
        assert 0.0 <= saved[key] <= 100.0
    assert set(saved["intra_gap"]) == {"features", "projection", "output"}
    assert saved["images_per_second"] > 0 and saved["ranks_consistent"] is True
    assert prepared.loop.throughput.images == 192  # every image of the last epoch counted
    # the saved config is the resolved one and loads back as a recipe
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["train"]["epochs"] == 1 and resolved["method_options"]["mocov3"]["hidden_dim"] == 64
    assert load_config(out / "config.yaml").train.batch_size == 32
    # exported backbones load strictly into the plain backbone and match the trained ones
    method = prepared.method
    images = torch.randn(2, 3, 32, 32)
    for name, trained in (("student", method.backbone), ("teacher", method.teacher.module.backbone)):
        plain = load_backbone(out / f"{name}_backbone.pt").eval()
        assert torch.equal(plain(images), trained.eval()(images))
    # metrics.csv has every loss term, the gaps, lr and momentum
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("train/ssl_step", "train/resmo_step", "gap/output_step", "gap/features_step",
                   "train/lr", "train/momentum", "knn/student_top1", "knn/teacher_top1"):
        assert column in header, column


class StopAfterFirstEpoch:
    def on_epoch_end(self, loop):
        if loop.epoch == 1:  # epochs done
            loop.should_stop = True


# slow: four epochs of training; the fast lane resumes runs in test_interrupt.py (mid-epoch, end of epoch)
@pytest.mark.slow
@pytest.mark.parametrize("method", ["mocov2", "dino"])
def test_resume_matches_uninterrupted_run(tmp_path, method):
    """Stop after epoch 1, resume, and reach the same epoch-2 state as a straight run."""
    straight, straight_summary = run(tiny_overrides(tmp_path / "straight", method=method))
    interrupted_out = tmp_path / "interrupted"
    run(tiny_overrides(interrupted_out, method=method), hooks=[StopAfterFirstEpoch()])
    checkpoint = interrupted_out / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=False)["global_step"] == 192 // 32  # one epoch
    resumed, resumed_summary = run(tiny_overrides(interrupted_out, method=method), resume=str(checkpoint))
    assert resumed.loop.step == straight.loop.step
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    assert a.keys() == b.keys()
    for key in a:  # student, teacher, queue / centre
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)
    for key in ("knn_top1_student", "knn_top1_teacher", "knn_top1_random_init"):
        assert resumed_summary[key] == pytest.approx(straight_summary[key], abs=1.1), key
    assert resumed_summary["final_loss"] == pytest.approx(straight_summary["final_loss"], rel=1e-3)


@pytest.mark.slow  # ~7 s: two DINO epochs
def test_dino_run_freezes_the_prototypes_in_the_first_epoch_and_schedules_weight_decay(tmp_path):
    """The loop calls the method's gradient edits and weight-decay schedule (DINO)."""
    overrides = [o for o in tiny_overrides(tmp_path / "run", method="dino") if not o.startswith("method_options")]
    overrides += ["method_options.dino={hidden_dim: 64, bottleneck_dim: 32, num_prototypes: 64, "
                  "freeze_last_layer_epochs: 1, weight_decay_start: 0.04, weight_decay_end: 0.4}",
                  "optimizer.name=adamw", "monitor.knn_every_epochs=0"]
    run = prepare_run(load_config(None, overrides))
    seen = {}

    class Watch:
        def on_epoch_end(self, loop):
            layer = [p.detach().clone() for p in loop.method.last_layer_parameters()]
            decay = [g["weight_decay"] for g in loop.raw_optimizer.param_groups]
            seen[loop.epoch - 1] = (layer, decay)

        def on_start(self, loop):
            seen["start"] = ([p.detach().clone() for p in loop.method.last_layer_parameters()], None)

    run.loop.hooks.append(Watch())
    execute_run(run)
    start, after_first, after_second = seen["start"][0], seen[0][0], seen[1][0]
    assert all(torch.equal(a, b) for a, b in zip(start, after_first, strict=True))  # frozen
    assert not all(torch.equal(a, b) for a, b in zip(after_first, after_second, strict=True))
    decays = seen[1][1]
    assert 0.04 < max(decays) <= 0.4 and min(decays) == 0.0  # scheduled weights, undecayed norms


@pytest.mark.parametrize("pipeline", ["torchvision", "batched"])
def test_bf16_mixed_runs_the_forward_pass_under_cpu_autocast(tmp_path, pipeline):
    """``train.precision=bf16-mixed`` on a CPU: convolutions run in bfloat16 (Fabric's autocast
    around the method's forward), the weights, loss and teacher stay float32 and finite."""
    overrides = [*tiny_overrides(tmp_path / "run", epochs=1, samples=64), "train.precision=bf16-mixed",
                 f"data.pipeline={pipeline}", "monitor.knn_every_epochs=0"]
    prepared = prepare_run(load_config(None, overrides))
    seen = set()
    first_conv = next(m for m in prepared.method.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(  # training steps only (the kNN monitor runs in eval mode, in float32)
        lambda module, inputs, output: seen.add(output.dtype) if module.training else None)
    summary = execute_run(prepared)
    assert seen == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in prepared.method.parameters())
    assert summary["final_loss"] is not None and summary["final_loss"] == summary["final_loss"]
