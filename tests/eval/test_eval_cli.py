"""Loading runs for eval / gap / export: run folders, bare checkpoints, bad input -> exit 2."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from resmo.eval.runs import load_run, locate_run
from tests.eval_helpers import assert_one_line_error, make_run, run_cli


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("cli") / "run", epochs=1)


def test_load_run_restores_checkpoint_weights_in_eval_mode(run_folder):
    run = load_run(run_folder)
    saved = torch.load(run_folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for key, value in run.method.state_dict().items():
        assert torch.equal(value, saved[f"method.{key}"]), key
    assert not run.method.training and run.image_size == 32
    assert run.results_dir == run_folder / "eval" and len(run.checkpoint_sha256) == 64


def test_bare_checkpoint_finds_config_one_folder_up(run_folder, tmp_path, capsys):
    checkpoint = run_folder / "checkpoints" / "last.ckpt"
    assert locate_run(checkpoint)[1:] == (run_folder / "config.yaml", run_folder)
    # a copy elsewhere needs --config, and then writes next to the checkpoint
    alone = tmp_path / "alone.ckpt"
    shutil.copy(checkpoint, alone)
    code, _, err = run_cli(["eval", "knn", alone], capsys)
    assert_one_line_error(code, err, "no config.yaml", "--config")
    code, out, _ = run_cli(["eval", "knn", alone, "--config", run_folder / "config.yaml", "--k", "20"], capsys)
    assert code == 0, out
    (path,) = (tmp_path / "eval").glob("knn-*.json")
    from_checkpoint = json.loads(path.read_text())["results"]
    code, _, _ = run_cli(["eval", "knn", run_folder, "--k", "20"], capsys)
    (path,) = (run_folder / "eval").glob("knn-*.json")
    assert json.loads(path.read_text())["results"] == from_checkpoint


@pytest.mark.parametrize("command", [["eval", "knn"], ["eval", "linear"], ["gap"], ["export", "--encoder", "student"]])
def test_missing_run_folder(command, tmp_path, capsys):
    code, _, err = run_cli([*command, tmp_path / "nope"], capsys)
    assert_one_line_error(code, err, "nope", "does not exist")


def test_folder_without_checkpoint(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("method: mocov3\n")
    code, _, err = run_cli(["eval", "knn", tmp_path], capsys)
    assert_one_line_error(code, err, "last.ckpt", "does not exist")


@pytest.mark.parametrize("command", [["eval", "knn"], ["eval", "linear"], ["export"]])
def test_unknown_encoder(command, run_folder, capsys):
    code, _, err = run_cli([*command, run_folder, "--encoder", "momentum"], capsys)
    assert_one_line_error(code, err, "--encoder", "momentum")


def test_export_needs_an_encoder(run_folder, capsys):
    code, _, err = run_cli(["export", run_folder], capsys)
    assert_one_line_error(code, err, "--encoder")


def test_corrupt_checkpoint(run_folder, tmp_path, capsys):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    code, _, err = run_cli(["gap", broken, "--config", run_folder / "config.yaml"], capsys)
    assert_one_line_error(code, err, "cannot read checkpoint", "broken.ckpt")


def test_checkpoint_of_another_recipe(run_folder, tmp_path, capsys):
    other = tmp_path / "other.yaml"
    other.write_text((run_folder / "config.yaml").read_text().replace("width: 8", "width: 16"))
    code, _, err = run_cli(["eval", "knn", run_folder, "--config", other], capsys)
    assert_one_line_error(code, err, "does not match the recipe", "other.yaml")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--device", "tpu9"], ["device='tpu9'"]),
        (["--k", "0"], ["--k", "'0'"]),
        (["--data", "/definitely/missing/folder"], ["does not exist"]),
    ],
)
def test_bad_eval_options(args, fragments, run_folder, capsys):
    code, _, err = run_cli(["eval", "knn", run_folder, *args], capsys)
    assert_one_line_error(code, err, *fragments)


def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, _, err = run_cli(["report", tmp_path], capsys)
    assert_one_line_error(code, err, "not a run folder", "config.yaml")


def test_eval_help_lists_both_probes(capsys):
    code, out, _ = run_cli(["eval", "--help"], capsys)
    assert code == 0 and "knn" in out and "linear" in out
