"""`resmo` command line: help, and bad input -> one line on stderr, exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from resmo.cli import FLAG_KEYS, build_parser, main
from tests.eval_helpers import assert_one_line_error


def run_main(args, capsys):
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.err


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["pretrain", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for flag in FLAG_KEYS:
        assert "--" + flag.replace("_", "-") in text
    assert "--config" in text and "--resume" in text and "key.sub=value" in text


def test_missing_folder(tmp_path, capsys):
    code, err = run_main(["pretrain", "--data", str(tmp_path / "nope")], capsys)
    assert_one_line_error(code, err, "does not exist", "nope")


def test_folder_without_images(tmp_path, capsys):
    (tmp_path / "empty" / "train" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "a" / "notes.txt").write_text("no images here")
    code, err = run_main(["pretrain", "--data", str(tmp_path / "empty")], capsys)
    assert_one_line_error(code, err, "no images")


def test_unknown_config_key(tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train:\n  epoch: 3\n")
    code, err = run_main(["pretrain", "--config", str(recipe)], capsys)
    assert_one_line_error(code, err, "recipe.yaml", "train.epoch", "epochs")


def test_unknown_override_key(capsys):
    code, err = run_main(["pretrain", "optimizer.learning_rate=0.1"], capsys)
    assert_one_line_error(code, err, "optimizer.learning_rate", "lr")


def test_wrong_type_flag(capsys):
    code, err = run_main(["pretrain", "--epochs", "abc"], capsys)
    assert_one_line_error(code, err, "--epochs", "abc")


def test_wrong_type_override(capsys):
    code, err = run_main(["pretrain", "train.batch_size=big"], capsys)
    assert_one_line_error(code, err, "train.batch_size", "integer", "big")


def test_batch_larger_than_dataset(tmp_path, capsys):
    root = tmp_path / "tiny" / "train" / "cat"
    root.mkdir(parents=True)
    for index in range(4):
        Image.new("RGB", (8, 8), (index * 40, 0, 0)).save(root / f"{index}.png")
    code, err = run_main(["pretrain", "--data", str(tmp_path / "tiny"), "--batch-size", "8"], capsys)
    assert_one_line_error(code, err, "batch_size=8", "4 training images")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--method", "simclr"], ["method='simclr'", "mocov3"]),
        (["--backbone", "vgg"], ["backbone='vgg'", "resnet18"]),
        (["--resmo-weight", "-1"], ["resmo.weight=-1.0", ">= 0"]),
        (["resmo.level=logits"], ["resmo.level='logits'", "projection"]),
        (["resmo.distance=l1"], ["resmo.distance='l1'", "cosine"]),
        (["method_options.mocov3.momentum=1.5"], ["momentum=1.5", "[0, 1]"]),
        (["method_options.mocov3.temperature=0"], ["temperature=0", "> 0"]),
        (["--precision", "8-bit"], ["train.precision='8-bit'", "bf16-mixed"]),
        (["--resume", "missing.ckpt"], ["missing.ckpt", "auto"]),
    ],
)
def test_invalid_settings(args, fragments, tmp_path, capsys):
    code, err = run_main(["pretrain", "--out", str(tmp_path / "run"), *args], capsys)
    assert_one_line_error(code, err, *fragments)


@pytest.mark.slow  # a fresh process; the fast lane ends `python -m resmo.cli` with exit 2 in test_data_faults.py
def test_console_script_error_is_one_line(tmp_path):
    """The installed entry point itself: exit code 2, one line, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "resmo.cli", "pretrain", "--data", str(tmp_path / "absent")],
        capture_output=True, text=True, timeout=120,
    )
    assert_one_line_error(result.returncode, result.stderr, "does not exist")
