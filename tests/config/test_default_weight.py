"""The method's default λ applies exactly when no source sets ``resmo.weight``."""

from __future__ import annotations

import pytest

from resmo.config.loader import load_config
from resmo.losses.default_weight import CHOSEN_ON_VALIDATION, PAPER_WEIGHT, default_weight
from resmo.losses.resmo import ResMoSettings


def test_methods_the_validation_protocol_did_not_run_keep_the_papers_weight():
    assert default_weight("mocov3") == CHOSEN_ON_VALIDATION["mocov3"] == 0.3
    assert default_weight("dino") == default_weight("mocov2") == default_weight("densecl") == PAPER_WEIGHT == 1.0


def test_the_quickstart_keeps_the_papers_weight_and_other_data_take_the_methods():
    assert load_config().resmo.weight == default_weight("mocov3", "synthetic") == PAPER_WEIGHT
    assert load_config(overrides=["data.name=cifar10"]).resmo.weight == default_weight("mocov3") == 0.3
    assert load_config(settings={"data.name": ("/my/images", "--data")}).resmo.weight == 0.3


def test_the_weight_follows_the_method_a_flag_or_a_recipe_chose(tmp_path):
    on_folder = {"data.name": ("/my/images", "--data")}
    assert load_config(settings={"method": ("dino", "--method"), **on_folder}).resmo.weight == 1.0
    assert load_config(settings={"method": ("byol", "--method"), **on_folder}).resmo.weight == default_weight("byol")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: dino\nresmo: {level: projection}\ndata: {name: cifar10}\n")
    config = load_config(recipe, overrides=["method=mocov3"])
    assert (config.resmo.weight, config.resmo.level) == (0.3, "projection")


@pytest.mark.parametrize(("recipe", "settings", "overrides"), [
    ("resmo: {weight: 0.7}\n", {}, []),
    ("", {"resmo.weight": (0.7, "--resmo-weight")}, []),
    ("", {}, ["resmo.weight=0.7"]),
    ("", {}, ["resmo={weight: 0.7, level: features}"]),
])
def test_a_weight_given_anywhere_wins_over_the_default(tmp_path, recipe, settings, overrides):
    path = tmp_path / "r.yaml"
    path.write_text("method: mocov3\ndata: {name: cifar10}\n" + recipe)
    assert load_config(path, overrides, settings=settings).resmo.weight == 0.7


def test_zero_from_the_command_line_is_the_plain_method():
    assert load_config(overrides=["resmo.weight=0"]).resmo.enabled is False


def test_create_method_without_a_weight_takes_the_methods_default(make_method):
    assert make_method("mocov3").resmo.weight == 0.3
    assert make_method("mocov3", resmo={"level": "projection"}).resmo.weight == 0.3
    assert make_method("dino").resmo.weight == 1.0
    assert make_method("mocov3", resmo=ResMoSettings(weight=0.5)).resmo.weight == 0.5
    assert make_method("mocov3", resmo={"weight": 0.0}).resmo.enabled is False
