"""What ``resmo pretrain`` says, made from what it does: help texts from the registries, the
closing lines from the measured numbers, the start-up recipe cut to the chosen method and
backbone."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from resmo.backbones import backbone_names
from resmo.cli import _gap_line, _learnt_line, _next_line, build_parser
from resmo.config import dump_config, load_config
from resmo.config.loader import dump_chosen_config
from resmo.config.schema import PRECISIONS
from resmo.methods import method_names


def pretrain_help(capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["pretrain", "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_help_names_every_registered_method_backbone_and_precision(capsys):
    text = pretrain_help(capsys)
    methods, backbones = method_names(), backbone_names()
    assert "densecl" in methods
    assert f"--method METHOD {', '.join(methods[:-1])} or {methods[-1]} (recipe key: method)" in text
    assert f"--backbone BACKBONE {', '.join(backbones[:-1])} or {backbones[-1]} (key: backbone)" in text
    assert f"--precision PRECISION {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]} (key: train.precision)" in text


def test_top_level_help_does_not_import_torch():
    code = ("import sys\nfrom resmo.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pretrain" in shown.stdout and shown.stderr.strip() == "False", shown.stderr


@pytest.mark.parametrize("student, random_init, expected", [
    (30.14, 25.3, "student 4.8 points above random init in kNN top-1: what pretraining learnt"),
    (25.3, 25.3, "student level with random init in kNN top-1 (25.3% vs 25.3%): nothing learnt that "
                 "the kNN sees, at this budget"),
    (25.26, 25.3, "student level with random init in kNN top-1 (25.3% vs 25.3%): nothing learnt that "
                  "the kNN sees, at this budget"),  # equal as the done line prints them
    (24.0, 25.3, "student below random init in kNN top-1 (24.0% vs 25.3%): nothing learnt that "
                 "the kNN sees, at this budget"),
    (None, None, None),
    (30.0, None, None),
])
def test_the_student_against_random_init_line_follows_the_numbers(student, random_init, expected):
    summary = {"knn_top1_student": student, "knn_top1_random_init": random_init}
    assert _learnt_line(summary) == expected


def test_the_gap_line_says_nothing_of_random_init():
    line = _gap_line({"intra_gap": {"output": 0.1234}, "resmo_weight": 1.0})
    assert line == ("intra gap (1 - cos of student and teacher on the same view, 0 = equal): 0.123 at "
                    "the output, last epoch; ResMo (weight 1) trains it down; the plain method is "
                    "--resmo-weight 0")


@pytest.mark.parametrize("method, data, recipe", [
    ("mocov3", "synthetic", "cifar10/mocov3"),
    ("byol", "synthetic", "cifar10/byol"),
    ("densecl", "synthetic", "cifar10/mocov3"),  # no CIFAR-10 recipe of DenseCL
    ("mocov3", "cifar10", None),  # on real data already
])
def test_the_last_line_says_what_to_run_next(method, data, recipe):
    line = _next_line("runs/my run", SimpleNamespace(method=method, data=SimpleNamespace(name=data)))
    expected = "next: resmo eval knn 'runs/my run'; resmo report 'runs/my run'"
    if recipe:
        expected += f"; on real data, a recipe: resmo pretrain --config {recipe}"
    assert line == expected + ". ResMo against the plain method, measured: docs/benchmarks.md"


def test_the_printed_recipe_keeps_the_chosen_method_and_backbone_only():
    config = load_config(None, ["method=dino", "backbone=resnet18"])
    full, shown = yaml.safe_load(dump_config(config)), yaml.safe_load(dump_chosen_config(config))
    assert set(full["method_options"]) == set(method_names())
    assert shown["method_options"] == {"dino": full["method_options"]["dino"]}
    assert shown["backbone_options"] == ({"resnet18": full["backbone_options"]["resnet18"]}
                                         if "resnet18" in full["backbone_options"] else {})
    assert {key: value for key, value in shown.items() if not key.endswith("_options")} == \
        {key: value for key, value in full.items() if not key.endswith("_options")}
    assert len(dump_chosen_config(config).splitlines()) < len(dump_config(config).splitlines()) - 12
