"""Flags and recipe keys are spelled out: no prefix matching (``--epoch`` is not ``--epochs``),
and a near miss gets one line with ``did you mean ...?`` and exit code 2."""

from __future__ import annotations

import sys

import pytest

from resmo.cli import build_parser
from resmo.commands.parser import OneLineParser
from resmo.config import ConfigError, load_config
from tests.commands.test_cli import run_main
from tests.eval_helpers import assert_one_line_error
from tests.train.test_run_checks import TINY


@pytest.fixture
def nothing_runs(monkeypatch):
    """Parsing only: a command that gets past the parser fails the test at once (instead of
    training, as ``--epoch 2`` did when argparse read it as ``--epochs 2``)."""
    import resmo.cli as cli

    def refuse(*args, **kwargs):
        pytest.fail("the command ran: the parser accepted the arguments")

    monkeypatch.setattr(cli, "run_pretrain_command", refuse)
    for module in cli.COMMANDS.values():
        monkeypatch.setattr(module, "run", refuse)


def all_parsers(parser: OneLineParser):
    yield parser
    for sub in parser.subparsers():
        yield from all_parsers(sub)


def test_every_parser_and_subparser_refuses_abbreviations():
    parsers = list(all_parsers(build_parser()))
    progs = {parser.prog for parser in parsers}
    assert {"resmo", "resmo pretrain", "resmo eval", "resmo eval knn", "resmo eval linear", "resmo gap",
            "resmo report", "resmo export", "resmo recipes"} <= progs, progs
    assert [parser.prog for parser in parsers if parser.allow_abbrev] == []


@pytest.mark.parametrize("args, prefix", [
    (["pretrain", "--epoch", "2"], "--epoch"),
    (["pretrain", "--epoch=2"], "--epoch"),
    (["pretrain", "--batch", "8"], "--batch"),
    (["pretrain", "--resmo", "0"], "--resmo"),
    (["eval", "knn", "runs/a", "--enc", "teacher"], "--enc"),
    (["gap", "runs/a", "--temp", "0.1"], "--temp"),
    (["report", "runs/a", "--o", "x"], "--o"),
    (["export", "runs/a", "--encoder", "student", "--o", "x"], "--o"),
])
def test_a_flag_prefix_is_an_error_not_the_flag(args, prefix, capsys, nothing_runs):
    code, err = run_main(args, capsys)
    assert_one_line_error(code, err, f"resmo {args[0]}", "unrecognized arguments", prefix)


def test_a_prefix_gets_the_full_flag_suggested(capsys, nothing_runs):
    code, err = run_main(["pretrain", "--epoch", "2"], capsys)
    assert_one_line_error(code, err, "--epoch", "did you mean --epochs?")


@pytest.mark.parametrize("args, flag, suggestion", [
    (["pretrain", "--epohcs", "2"], "--epohcs", "did you mean --epochs"),
    (["pretrain", "--epohcs=2"], "--epohcs", "did you mean --epochs"),
    (["pretrain", "--bach-size", "8"], "--bach-size", "did you mean --batch-size"),
    (["pretrain", "--resmo-wieght", "0"], "--resmo-wieght", "did you mean --resmo-weight"),
    (["eval", "knn", "runs/a", "--num-worker", "2"], "--num-worker", "did you mean --num-workers"),
    (["eval", "linear", "runs/a", "--wieght-decay", "0"], "--wieght-decay", "did you mean --weight-decay"),
    (["gap", "runs/a", "--tempreature", "1"], "--tempreature", "did you mean --temperature"),
    (["export", "runs/a", "--encoder", "student", "--ot", "x"], "--ot", "did you mean --out"),
    (["export", "runs/a", "--encodr", "student"], "--encodr: did you mean --encoder", "required: --encoder"),
])
def test_a_near_miss_flag_names_the_flag_it_resembles(args, flag, suggestion, capsys, nothing_runs):
    code, err = run_main(args, capsys)
    assert_one_line_error(code, err, f"resmo {args[0]}", flag, suggestion)


def test_several_near_misses_each_get_their_flag(capsys, nothing_runs):
    code, err = run_main(["pretrain", "--epohcs", "2", "--bach-size", "8"], capsys)
    assert_one_line_error(code, err, "--epohcs: did you mean --epochs?", "--bach-size: did you mean --batch-size?")


def test_an_unknown_flag_far_from_every_flag_gets_no_guess(capsys, nothing_runs):
    code, err = run_main(["pretrain", "--zzzzzz"], capsys)
    assert_one_line_error(code, err, "unrecognized arguments: --zzzzzz")
    assert "did you mean" not in err


def test_spelled_out_flags_still_work():
    args = build_parser().parse_args(["pretrain", "--epochs", "2", "--batch-size=8", "train.seed=1"])
    assert (args.epochs, args.batch_size, args.overrides) == (2, 8, ["train.seed=1"])
    args = build_parser().parse_args(["eval", "knn", "runs/a", "--num-workers", "0", "--k", "5"])
    assert (args.num_workers, args.k) == (0, [5])


def test_overrides_between_flags_are_all_kept_in_order():
    args = build_parser().parse_args(
        ["pretrain", "optimizer.lr=0.02", "--resmo-weight", "0", "data.pipeline=batched", "seed=3"])
    assert args.resmo_weight == 0
    assert args.overrides == ["optimizer.lr=0.02", "data.pipeline=batched", "seed=3"]


def test_a_stray_value_after_the_overrides_is_still_refused(capsys, nothing_runs):
    code, err = run_main(["pretrain", "a.b=1", "--epochs", "2", "stray"], capsys)
    assert_one_line_error(code, err, "unrecognized arguments: stray")


def test_num_workers_must_not_be_negative(capsys, nothing_runs):
    code, err = run_main(["eval", "knn", "runs/a", "--num-workers", "-1"], capsys)
    assert_one_line_error(code, err, "--num-workers", ">= 0")


@pytest.mark.parametrize("override, unknown, suggestion", [
    ("trian.epochs=2", "unknown key 'trian'", "did you mean train.epochs?"),
    ("train.epoch=2", "unknown key 'train.epoch'", "did you mean train.epochs?"),
    ("trian.epoch=2", "unknown key 'trian'", "did you mean train.epochs?"),
    ("sed=1", "unknown key 'sed'", "did you mean seed?"),
    ("resmo.wieght=0", "unknown key 'resmo.wieght'", "did you mean resmo.weight?"),
    ("dat.num_worker=2", "unknown key 'dat'", "did you mean data.num_workers?"),
    ("data.view.flip_prob=0.5", "unknown key 'data.view'", "did you mean data.views.flip_prob?"),
    ("method_option.mocov3.hidden_dim=8", "unknown key 'method_option'",
     "did you mean method_options.mocov3.hidden_dim?"),
])
def test_a_near_miss_key_names_the_key_it_resembles(override, unknown, suggestion, tmp_path, capsys):
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    message = str(error.value)
    assert message.startswith(f"command line: {unknown} ({suggestion}); valid keys in "), message
    code, err = run_main(["pretrain", "--out", str(tmp_path / "run"), override], capsys)
    assert_one_line_error(code, err, unknown, suggestion)


def test_a_near_miss_key_in_a_recipe_file(tmp_path):
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("train:\n  epoch: 3\n  batch_size: 8\n")
    with pytest.raises(ConfigError, match=r"mine.yaml: unknown key 'train.epoch' \(did you mean train.epochs\?\)"):
        load_config(recipe)
    recipe.write_text("trian:\n  epochs: 3\n  batch_size: 8\n")  # several keys below: the section only
    with pytest.raises(ConfigError, match=r"unknown key 'trian' \(did you mean train\?\)"):
        load_config(recipe)


@pytest.mark.parametrize("override", ["train.nope=1", "zzzz=1", "train.zzzz.a=1", "1=2"])
def test_an_unknown_key_far_from_every_key_gets_no_guess(override):
    with pytest.raises(ConfigError, match="unknown key") as error:
        load_config(None, [override])
    assert "did you mean" not in str(error.value)


def test_a_backbone_whose_package_cannot_be_imported_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` raises ImportError
    code, err = run_main(["pretrain", "--out", str(tmp_path / "run"), "--backbone", "vit_tiny",
                          "data.image_size=16", *TINY], capsys)
    assert_one_line_error(code, err, "vit_tiny", "timm", "pip install")
    assert not (tmp_path / "run" / "checkpoints").exists()  # before any training
