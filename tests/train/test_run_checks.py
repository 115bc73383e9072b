"""Inputs the fuzzing (tests/config/test_fuzz_cli.py) found to fail late or with a traceback:
each now ends before any work with one line naming the key, and exit code 2."""

from __future__ import annotations

import pytest
import torch

from resmo.cli import main
from tests.commands.test_cli import run_main
from tests.eval_helpers import assert_one_line_error

TINY = ["data.synthetic.num_samples=64", "data.synthetic.val_num_samples=32", "train.batch_size=16"]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["backbone_options.vit_small={x: &a [*a]}"], ["backbone_options.vit_small.x.0", "refers to itself"]),
        (["method_options.mocov3.hidden_dim=abc"], ["'method_options.mocov3.hidden_dim' expects an integer, got 'abc'"]),
        (["method_options.mocov3.hidden_dim=0"], ["hidden_dim=0"]),
        (["optimizer.name=adam"], ["optimizer.name='adam'", "adamw"]),
        (["optimizer.lr=nan"], ["optimizer.lr=nan", ">= 0"]),
        (["optimizer.betas=[2, 0.9]"], ["optimizer.betas[0]=2.0", "[0, 1)"]),
        (["optimizer.momentum=1.5"], ["optimizer.momentum=1.5", "[0, 1]"]),
        (["monitor.knn_k=0"], ["monitor.knn_k=0"]),
        (["monitor.knn_temperature=-1"], ["monitor.knn_temperature=-1.0", "> 0"]),
        (["seed=-1"], ["seed=-1", "4294967295"]),
        (["resmo.warmup_epochs=nan"], ["resmo.warmup_epochs=nan"]),
        (["train.max_bad_steps=-1"], ["train.max_bad_steps=-1", "integer >= 0"]),
        (["train.precision=bf16-true"], ["train.precision='bf16-true'", "teacher", "bf16-mixed"]),
        (["train.devices=2", "train.accelerator=cpu", "train.sync_batchnorm=true"],
         ["train.sync_batchnorm=true", "CPU processes"]),
        (["train.log_every_n_steps=0"], ["train.log_every_n_steps=0"]),
        (["train.strategy=fsdp_magic"], ["train.strategy='fsdp_magic'", "allowed values: auto, ddp"]),
        (["train.strategy=fsdp"], ["train.strategy='fsdp'", "allowed values: auto, ddp"]),
        (["train.nope\nx=1"], ["unknown key 'train.nope\\nx'"]),
    ],
)
def test_bad_settings_fail_early_with_one_line(args, fragments, tmp_path, capsys):
    code, err = run_main(["pretrain", "--out", str(tmp_path / "run"), *TINY, *args], capsys)
    assert_one_line_error(code, err, *fragments)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_accelerator_the_machine_lacks(tmp_path, capsys):
    code, err = run_main(["pretrain", "--out", str(tmp_path / "run"), *TINY, "train.accelerator=gpu"], capsys)
    assert_one_line_error(code, err, "train.accelerator='gpu'", "cannot be used here")


@pytest.mark.parametrize("content", [b"\xff\xfe\x00m\x00e", b"method: [\n"])
def test_unreadable_recipe_files(tmp_path, capsys, content):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(content)
    code, err = run_main(["pretrain", "--config", str(recipe)], capsys)
    assert_one_line_error(code, err, "recipe.yaml")


def test_recipe_path_that_is_a_folder(tmp_path, capsys):
    code, err = run_main(["pretrain", "--config", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "is a folder")


def test_resume_auto_without_a_checkpoint_starts_with_a_note(tmp_path, capsys, monkeypatch):
    import resmo.train.pretrain as pretrain

    monkeypatch.setattr(pretrain, "execute_run", lambda run: {
        "wall_seconds": 0.0, "knn_top1_student": None, "knn_top1_teacher": None,
        "knn_top1_random_init": None})
    assert main(["pretrain", "--out", str(tmp_path / "run"), "--resume", "auto", *TINY]) == 0
    out = capsys.readouterr().out
    assert "# note: --resume auto: no checkpoint in" in out and "starting from scratch" in out


@pytest.mark.parametrize("typo, fragment", [
    ("method_options.mocov3.hiden_dim=8",
     r"^unknown key 'method_options.mocov3.hiden_dim' \(did you mean method_options.mocov3.hidden_dim\?\)"),
    ("method_options.mocov3.hidden_dim=abc", r"^'method_options.mocov3.hidden_dim' expects an integer, got 'abc'$"),
    ("method_options.mocov3.temperature=true", r"^'method_options.mocov3.temperature' expects a number, got True$"),
    ("backbone_options.resnet_small.widht=4", r"^unknown key 'backbone_options.resnet_small.widht' \(did you mean backbone_options.resnet_small.width\?\)"),
])
def test_an_option_typo_stops_before_any_process_is_launched(tmp_path, monkeypatch, typo, fragment):
    from resmo.config import load_config
    from resmo.train import pretrain

    def no_launch(config):
        raise AssertionError("processes launched before the options were checked")

    monkeypatch.setattr(pretrain, "build_fabric", no_launch)
    out = tmp_path / "run"
    config = load_config(None, [*TINY, "train.devices=2", "train.accelerator=cpu", typo, f"out={out}"])
    with pytest.raises(ValueError, match=fragment):
        pretrain.prepare_run(config)
    assert not out.exists()
