"""``resmo transfer detect``'s fine-tuning options, resolved once (resmo.transfer.settings), and
the job as the result file records it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from resmo.data.workers import available_cpus
from resmo.transfer.detect import DetectJob
from resmo.transfer.settings import TrainingRequest, resolve_settings

CPU = {"device": "cpu"}


def test_twelve_epochs_and_the_linearly_scaled_lr_by_default():
    settings = resolve_settings(TrainingRequest(**CPU), num_train=100)
    assert settings.iterations == 150  # ceil(12 x 100 / 8)
    assert settings.lr == 0.01 and settings.log_every == 15  # 0.02 x 8 / 16; a tenth of the iterations
    assert (settings.batch_size, settings.min_size, settings.max_size, settings.rois_per_image) == (8, 800, 1333, 512)
    assert (settings.train_sizes, settings.proposals, settings.norm, settings.workers) == (None, None, "batch", 0)


@pytest.mark.parametrize("request_, num_train, iterations", [
    (TrainingRequest(epochs=1.5, batch_size=4, **CPU), 7, 3),  # ceil(1.5 x 7 / 4) = ceil(2.625)
    (TrainingRequest(epochs=0.01, batch_size=4, **CPU), 1, 1),  # at least one iteration
    (TrainingRequest(iterations=5, batch_size=4, **CPU), 1000, 5),  # asked: kept
])
def test_iterations_come_from_the_epochs_unless_asked(request_, num_train, iterations):
    settings = resolve_settings(request_, num_train)
    assert settings.iterations == iterations and settings.log_every == 1
    assert settings.lr == pytest.approx(0.005)  # 0.02 x 4 / 16


def test_asked_values_are_kept_and_the_settings_are_frozen():
    asked = TrainingRequest(batch_size=2, lr=0.3, min_size=64, max_size=107, train_sizes=(48, 64), rois_per_image=64,
                            proposals=200, norm="frozen", head="fpn", iterations=40, **CPU)
    settings = resolve_settings(asked, num_train=6)
    assert settings.to_dict() == {
        "iterations": 40, "batch_size": 2, "lr": 0.3, "min_size": 64, "max_size": 107, "train_sizes": (48, 64),
        "rois_per_image": 64, "proposals": 200, "norm": "frozen", "head": "fpn", "workers": 0, "device": "cpu", "log_every": 4}
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.lr = 1.0  # type: ignore[misc]


def test_auto_device_and_too_many_workers_are_resolved_with_a_note():
    notes: list[str] = []
    cores = available_cpus()
    settings = resolve_settings(TrainingRequest(workers=cores + 5), num_train=8, log=notes.append)
    assert settings.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert settings.workers == cores
    assert notes == [f"# note: --workers={cores + 5} capped to the {cores} CPU {'core' if cores == 1 else 'cores'} "
                     "of this machine"]


def test_a_device_the_machine_lacks_is_a_one_line_value_error():
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(ValueError, match=r"^--device cuda:7: this machine has .*; use --device auto or cpu$"):
        resolve_settings(TrainingRequest(device="cuda:7"), num_train=8)
    with pytest.raises(ValueError, match=r"^--device meta: only cpu and cuda\[:N\] are supported$"):
        resolve_settings(TrainingRequest(device="meta"), num_train=8)


def test_the_recorded_job_is_flat_with_the_training_options_in_place():
    job = DetectJob(run="RUN", data="VOC", seeds=(0, 1), training=TrainingRequest(epochs=2.0, train_sizes=(48, 64)))
    recorded = job.to_dict()
    assert list(recorded) == [
        "run", "data", "encoder", "random_init", "seeds", "train_split", "eval_split", "classes", "iterations",
        "epochs", "batch_size", "lr", "min_size", "max_size", "train_sizes", "rois_per_image", "proposals", "norm",
        "head", "workers", "device", "out", "config"]
    assert recorded == {
        "run": "RUN", "data": "VOC", "encoder": "student", "random_init": False, "seeds": (0, 1),
        "train_split": "train", "eval_split": None, "classes": None, "iterations": None, "epochs": 2.0,
        "batch_size": 8, "lr": None, "min_size": 800, "max_size": 1333, "train_sizes": (48, 64),
        "rois_per_image": 512, "proposals": None, "norm": "batch", "head": "c4", "workers": 0, "device": "auto", "out": None,
        "config": None}
