"""``--resume`` refuses settings that differ from the run's ``config.yaml`` (resmo.train.same_run)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch
import yaml

from resmo.cli import main
from resmo.config.loader import config_to_dict, load_config
from resmo.train.same_run import CHANGEABLE_ON_RESUME, check_recorded_settings, check_same_run
from tests.pretrain_helpers import ON_CPU, tiny_overrides

RECORDED = {
    "method": "mocov3",
    "seed": 0,
    "method_options": {"mocov3": {"hidden_dim": 64, "out_dim": 32}},
    "data": {"name": "synthetic", "image_size": 32, "num_workers": 2, "views": {}, "pipeline": "batched"},
    "optimizer": {"name": "adamw", "lr": 0.02, "betas": [0.9, 0.999]},
    "train": {"epochs": 1, "batch_size": 32, "devices": 1, "max_bad_steps": 0},
}
TAIL = "resume with the run's settings or start a new run with --out NEW"


def changed(**settings):
    """A copy of :data:`RECORDED` with ``{"optimizer.lr": 0.05}``-style settings applied."""
    new = copy.deepcopy(RECORDED)
    for key, value in settings.items():
        *parents, name = key.split("__")
        node = new
        for parent in parents:
            node = node[parent]
        node[name] = value
    return new


def refusal(new, recorded=RECORDED) -> str:
    with pytest.raises(ValueError) as error:
        check_same_run(recorded, new, source="RUN/config.yaml")
    return str(error.value)


def test_the_message_names_the_key_and_both_values():
    assert refusal(changed(optimizer__lr=0.05)) == (
        "--resume: RUN/config.yaml has optimizer.lr=0.02, this command has optimizer.lr=0.05; " + TAIL)


def test_the_first_difference_in_the_recipe_order_is_named():
    new = changed(train__batch_size=64, optimizer__betas=[0.9, 0.99], seed=1)
    assert refusal(new).startswith("--resume: RUN/config.yaml has seed=0, this command has seed=1;")
    new["seed"] = 0
    assert "has optimizer.betas=[0.9, 0.999], this command has optimizer.betas=[0.9, 0.99];" in refusal(new)
    del new["seed"]  # a key one side lacks differs; the keys only the recorded side has come last
    assert "has optimizer.betas=[0.9, 0.999]," in refusal(new)
    new["optimizer"]["betas"] = [0.9, 0.999]
    assert "has train.batch_size=32, this command has train.batch_size=64;" in refusal(new)
    new["train"]["batch_size"] = 32
    assert "has seed=0, this command has no seed;" in refusal(new)


def test_a_nested_option_is_named_by_its_dotted_key():
    message = refusal(changed(method_options__mocov3__hidden_dim=128))
    assert ("has method_options.mocov3.hidden_dim=64, this command has method_options.mocov3.hidden_dim=128;"
            in message)
    message = refusal(changed(data__views={"min_scale": 0.2}))
    assert "has no data.views.min_scale, this command has data.views.min_scale=0.2;" in message
    message = refusal(changed(method_options={"mocov3": {"hidden_dim": 64, "out_dim": 32}, "byol": {"out_dim": 8}}))
    assert "has no method_options.byol, this command has method_options.byol={out_dim: 8};" in message


def test_values_compare_as_recipe_values():
    check_same_run(RECORDED, changed(method_options__mocov3__hidden_dim=64.0))  # 64 == 64.0
    assert "has seed=0, this command has seed=false;" in refusal(changed(seed=False))  # a flag is not 0
    check_same_run(changed(optimizer__lr=float("nan")), changed(optimizer__lr=float("nan")))


def test_the_changeable_keys_may_differ():
    new = changed(train__epochs=3, train__devices="auto", train__max_bad_steps=5, data__num_workers=0)
    new["out"] = "runs/elsewhere"  # a key only this command has, but a changeable one
    check_same_run(RECORDED, new)


def test_every_changeable_key_is_a_recipe_key_and_the_rest_are_refused():
    recorded = config_to_dict(load_config(None))
    flat = {}

    def walk(node, prefix=""):
        for name, value in node.items():
            key = f"{prefix}{name}"
            if isinstance(value, dict) and value:
                walk(value, f"{key}.")
            else:
                flat[key] = value

    walk(recorded)
    assert set(CHANGEABLE_ON_RESUME) <= set(flat)
    for key in flat:
        new = copy.deepcopy(recorded)
        *parents, name = key.split(".")
        node = new
        for parent in parents:
            node = node[parent]
        node[name] = "another value"
        if key in CHANGEABLE_ON_RESUME:
            check_same_run(recorded, new)
        else:
            assert f" this command has {key}=another value;" in refusal(new, recorded), key


def test_undecided_image_size_and_pipeline_agree_with_the_recorded_decision():
    check_same_run(RECORDED, changed(data__image_size=None, data__pipeline="auto"))
    check_same_run(RECORDED, changed(data__image_size=32, data__pipeline="batched"))
    assert "has data.image_size=32, this command has data.image_size=64;" in refusal(changed(data__image_size=64))
    assert ("has data.pipeline=batched, this command has data.pipeline=torchvision;"
            in refusal(changed(data__pipeline="torchvision")))
    undecided = changed(data__image_size=None)  # recorded undecided (an older run): a number differs
    assert "has data.image_size=null, this command has data.image_size=32;" in refusal(RECORDED, undecided)


def test_a_folder_without_config_yaml_resumes_with_a_note_and_a_broken_one_is_refused(tmp_path):
    (note,) = check_recorded_settings(tmp_path, RECORDED)
    assert note == (f"--resume: {tmp_path / 'config.yaml'} is missing, so this command's settings cannot be "
                    "compared with the run's; continuing with them")
    (tmp_path / "config.yaml").write_text("method: [\n")
    with pytest.raises(ValueError, match=r"config.yaml cannot be read \(.*\); restore it, or delete it") as error:
        check_recorded_settings(tmp_path, RECORDED)
    assert "\n" not in str(error.value)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(RECORDED))
    assert check_recorded_settings(tmp_path, RECORDED) == []


def folder_bytes(out):
    return {path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}


@pytest.mark.slow
def test_resume_with_another_lr_is_refused_and_more_epochs_continue(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["pretrain", *tiny_overrides(out, epochs=1, samples=64), "monitor.knn_every_epochs=0", *ON_CPU]
    assert main(args) == 0
    capsys.readouterr()
    before = folder_bytes(out)
    assert {"checkpoints/last.ckpt", "metrics.csv", "config.yaml"} <= set(before)

    refused = subprocess.run([sys.executable, "-m", "resmo.cli", *args, "optimizer.lr=0.05", "--resume", "auto"],
                             capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                             cwd=tmp_path, timeout=300)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr.splitlines() == [
        f"resmo pretrain: error: --resume: {out / 'config.yaml'} has optimizer.lr=0.02, this command has "
        f"optimizer.lr=0.05; {TAIL}"]
    assert folder_bytes(out) == before  # nothing written, nothing removed

    assert main([*args, "train.epochs=2", "--resume", "auto"]) == 0
    assert "continuing from" in capsys.readouterr().out
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 4  # 2 epochs of 2 steps
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["epochs"] == 2


def test_a_key_added_after_the_run_was_recorded_agrees_at_its_default(tmp_path):
    """A run recorded before ``data.val_fraction`` existed resumes with it left at its default
    (null: the old behaviour), and is refused when the command sets it."""
    new = config_to_dict(load_config(None, []))
    recorded = copy.deepcopy(new)
    del recorded["data"]["val_fraction"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(recorded))
    assert check_recorded_settings(tmp_path, new) == []
    changed = config_to_dict(load_config(None, ["data.val_fraction=0.1"]))
    with pytest.raises(ValueError, match=r"has no data.val_fraction, this command has data.val_fraction=0.1;"):
        check_recorded_settings(tmp_path, changed)
