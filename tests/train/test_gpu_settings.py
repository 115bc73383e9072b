"""Settings that matter on GPUs and under DDP, checked where they are made."""

from __future__ import annotations

import time

import pytest
import torch
from lightning.fabric.strategies import DDPStrategy

from resmo.config import load_config
from resmo.launch import strategy_for
from resmo.train.gpu_settings import apply_tf32
from resmo.train.pretrain import prepare_run
from resmo.train.run_folder import RUN_FOLDER_VARIABLE, default_out_dir
from tests.pretrain_helpers import tiny_overrides


def test_cudnn_autotuning_is_on_unless_turned_off(tmp_path):
    prepare_run(load_config(None, tiny_overrides(tmp_path / "a")))
    assert torch.backends.cudnn.benchmark is True
    prepare_run(load_config(None, [*tiny_overrides(tmp_path / "b"), "train.cudnn_benchmark=false"]))
    assert torch.backends.cudnn.benchmark is False


def tf32_flags() -> tuple:
    """The TF32 switches as both of torch's APIs read them (they must agree)."""
    return (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.fp32_precision,
            torch.backends.cudnn.conv.fp32_precision)


def test_tf32_leaves_the_cpu_matmuls_alone():
    cpu = torch.backends.mkldnn.matmul.fp32_precision
    for enabled in (True, False, True):
        apply_tf32(enabled)
        assert torch.backends.mkldnn.matmul.fp32_precision == cpu


def test_tf32_is_on_unless_turned_off(tmp_path):
    prepare_run(load_config(None, [*tiny_overrides(tmp_path / "a"), "train.tf32=false"]))
    assert tf32_flags() == ("highest", False, False, "ieee", "none")
    prepare_run(load_config(None, tiny_overrides(tmp_path / "b")))  # the default
    assert tf32_flags() == ("high", True, True, "tf32", "tf32")
    prepare_run(load_config(None, [*tiny_overrides(tmp_path / "c"), "train.tf32=false"]))
    assert tf32_flags() == ("highest", False, False, "ieee", "none")
    apply_tf32(True)  # later tests see the default again
    assert tf32_flags() == ("high", True, True, "tf32", "tf32")


def test_a_tf32_value_that_is_not_a_flag_is_refused_naming_the_key():
    with pytest.raises(ValueError, match="train.tf32"):
        load_config(None, ["train.tf32=sometimes"])


def test_ddp_does_not_rebroadcast_buffers_before_every_forward():
    for overrides in (["train.strategy=ddp"], ["train.devices=2", "train.accelerator=cpu"]):
        strategy = strategy_for(load_config(None, overrides))
        assert isinstance(strategy, DDPStrategy)
        assert strategy._ddp_kwargs["broadcast_buffers"] is False
    assert strategy_for(load_config(None, [])) == "auto"  # one process: Lightning's choice


def test_every_process_of_a_launch_names_the_same_default_run_folder(monkeypatch):
    config = load_config(None, [])
    monkeypatch.delenv(RUN_FOLDER_VARIABLE, raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    first = default_out_dir(config)
    monkeypatch.setattr(time, "strftime", lambda *args: "20991231-235959")  # a later second
    monkeypatch.setenv("LOCAL_RANK", "1")  # a process started by Lightning's launcher
    assert default_out_dir(config) == first
    monkeypatch.delenv("LOCAL_RANK")  # a new run in the first process: a new folder
    assert default_out_dir(config) != first
    monkeypatch.delenv(RUN_FOLDER_VARIABLE)
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job42")  # torchrun: every process on its own
    assert default_out_dir(config).name == "mocov3-synthetic-job42"
