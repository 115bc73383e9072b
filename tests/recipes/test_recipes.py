"""Shipped recipes: names, lookup by name or path, ``resmo recipes``, ``resmo --version``."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

import resmo
import resmo.config.loader as loader
from resmo.cli import main
from resmo.config import ConfigError, load_config
from resmo.fidelity.references import references
from resmo.recipes import (
    catalogue,
    compare_with_lines,
    find_recipe,
    read_recipe,
    recipe_names,
    reference_figure,
    reproduces,
    suggest_recipe,
)
from tests.commands.test_cli import run_main
from tests.eval_helpers import assert_one_line_error

PROJECT = Path(__file__).resolve().parents[2]
DATASETS = ("cifar10", "cifar100", "imagenet100", "stl10")
METHODS = ("byol", "dino", "mocov2", "mocov3")
#: Recipes beyond the dataset x method grid: DenseCL on COCO (ResNet-50, an image folder).
EXTRA = ("coco/densecl",)
NAMES = sorted([f"{dataset}/{method}" for dataset in DATASETS for method in METHODS] + list(EXTRA))
#: The data.name of recipes on image folders (a path the user replaces)
FOLDERS = {"imagenet100": "/path/to/imagenet100", "coco": "/path/to/coco/train2017"}
#: The backbone of every recipe: ResNet-18, DenseCL's ResNet-50 on COCO
BACKBONE = {"coco/densecl": "resnet50"}


def main_out(args, capsys) -> str:
    """stdout of ``resmo ARGS``, which must exit 0."""
    capsys.readouterr()
    assert main(args) == 0
    return capsys.readouterr().out


def test_one_recipe_per_dataset_and_method_and_densecl_on_coco():
    assert recipe_names() == NAMES and len(NAMES) == 17


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_loads_and_matches_its_name(name):
    config = load_config(name)
    dataset, method = name.split("/")
    assert config.method == method
    assert config.backbone == BACKBONE.get(name, "resnet18")
    assert config.data.name == FOLDERS.get(dataset, dataset)
    text = read_recipe(name)
    assert reproduces(text), f"{name}: no '# Compare with:' comment"
    run_lines = [line for line in text.splitlines() if line.startswith("# Run:")]
    assert len(run_lines) == 1 and f"--config {name}" in run_lines[0], run_lines


def test_name_with_suffix_or_other_case_is_the_same_recipe():
    assert find_recipe("cifar10/mocov3") == find_recipe(" CIFAR10/mocov3.yaml ") == "cifar10/mocov3"
    assert find_recipe("cifar10/simclr") is None and find_recipe("mocov3") is None
    plain, suffixed = load_config("cifar10/mocov3"), load_config("cifar10/mocov3.yaml")
    assert plain == suffixed
    assert plain.optimizer.name == "lars" and plain.optimizer.lr == 0.3 and plain.train.epochs == 1000


def test_an_existing_file_wins_over_a_recipe_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "mocov3.yaml").write_text("method: byol\n")
    assert load_config("cifar10/mocov3.yaml").method == "byol"  # the file
    assert load_config("cifar10/mocov3").method == "mocov3"  # no such file: the recipe


def test_errors_in_a_recipe_name_the_recipe(monkeypatch):
    with pytest.raises(ConfigError, match="^command line: 'train.epochs'"):
        load_config("cifar10/mocov3", ["train.epochs=abc"])
    monkeypatch.setattr(loader, "read_recipe", lambda name: "train: {epoch: 3}\n")
    with pytest.raises(ConfigError, match="^recipe cifar10/mocov3: unknown key 'train.epoch'"):
        load_config("cifar10/mocov3")


def test_unknown_recipe_is_one_line_listing_the_recipes(capsys):
    code, err = run_main(["pretrain", "--config", "cifar10/simclr"], capsys)
    assert_one_line_error(code, err, "'cifar10/simclr'", "neither a file nor a recipe name",
                          ", ".join(NAMES))


def test_old_configs_path_suggests_the_recipe_name(capsys):
    assert suggest_recipe("configs/stl10/byol.yaml") == "stl10/byol"
    assert suggest_recipe("stl10/byol.yaml") is None and suggest_recipe("x/y/z.yaml") is None
    code, err = run_main(["pretrain", "--config", "configs/cifar10/mocov3.yaml"], capsys)
    assert_one_line_error(code, err, "'configs/cifar10/mocov3.yaml'", "--config cifar10/mocov3")


def test_reproduces_joins_the_compare_with_paragraph():
    text = (
        "# MoCo v3 on X\n"
        "# Compare with: a reference (batch 256,\n"
        "#   1000 epochs),  top-1 93.10 %.\n"
        "#   Another figure: 0.910.\n"
        "# ResMo paper: not part of it.\n"
        "method: mocov3\n"
    )
    assert reproduces(text) == "a reference (batch 256, 1000 epochs), top-1 93.10 %. Another figure: 0.910."
    assert reproduces("method: mocov3\n") == ""


def test_catalogue_fields():
    infos = {info.name: info for info in catalogue()}
    assert list(infos) == NAMES
    cifar = infos["cifar10/mocov3"]
    assert (cifar.method, cifar.backbone, cifar.dataset) == ("mocov3", "resnet18", "cifar10")
    assert cifar.reproduces == ("solo-learn MoCo V3, ResNet18, 1000 epochs, no DALI: CIFAR-10 Acc@1 93.10, "
                                "Acc@5 99.80 (vturrisi/solo-learn README.md; README does not say online or offline)")
    assert infos["stl10/dino"].reproduces.startswith("no STL-10 figure (solo-learn has no STL-10 recipe or figure)")


#: Acc@1 online / offline of solo-learn's README (S26) ImageNet-100 table, ResNet18, per method:
#: the figure each imagenet100 recipe must quote (not another method's)
IMAGENET100_ACC1 = {"byol": "80.16 online / 80.32 offline", "dino": "74.84 online / 74.92 offline",
                    "mocov2": "78.20 online / 79.28 offline", "mocov3": "80.36 online / 80.36 offline"}
SOLO_LEARN_NAMES = {"byol": "BYOL", "dino": "DINO", "mocov2": "MoCo V2+", "mocov3": "MoCo V3"}


@pytest.mark.parametrize("name", NAMES)
def test_compare_with_comment_is_the_reference_table_figure(name):
    text = read_recipe(name)
    figure = references()["recipes"][name]["figure"]
    assert reference_figure(name) and reproduces(text) == reference_figure(name), (
        f"{name}: the '# Compare with:' comment must be the figure of references.yaml; write:\n"
        + "\n".join(compare_with_lines(name)))
    assert [line for line in text.splitlines() if line.startswith("# Compare with:")] == compare_with_lines(name)[:1]
    dataset, method = name.split("/")
    if dataset in ("imagenet100", "stl10"):  # the ImageNet-100 row of the recipe's own method
        assert f"ImageNet-100 {SOLO_LEARN_NAMES[method]} (S" in figure and IMAGENET100_ACC1[method] in figure
        others = [acc for other, acc in IMAGENET100_ACC1.items() if other != method]
        assert not any(acc in figure for acc in others), figure


def test_reference_figure_writes_source_ids_out():
    figure = reference_figure("imagenet100/dino")
    assert figure == ("solo-learn ImageNet-100 DINO (vturrisi/solo-learn scripts/pretrain/imagenet-100/dino.yaml), "
                      "ResNet18, 400 epochs, DALI: Acc@1 74.84 online / 74.92 offline, Acc@5 92.92 / 92.78 "
                      "(vturrisi/solo-learn README.md)")
    assert reference_figure("cifar10/simclr") == ""


def test_recipes_command_lists_one_line_per_recipe(capsys):
    lines = main_out(["recipes"], capsys).splitlines()
    assert lines[0].split() == ["recipe", "method", "backbone", "dataset", "reproduces"]
    assert len(lines) == 1 + len(NAMES)
    for name, line in zip(NAMES, lines[1:], strict=True):
        dataset, method = name.split("/")
        assert line.split()[:4] == [name, method, BACKBONE.get(name, "resnet18"), dataset], line
        assert reproduces(read_recipe(name)) in line


def test_recipes_command_prints_one_recipe(capsys):
    assert main_out(["recipes", "cifar10/mocov3"], capsys) == read_recipe("cifar10/mocov3")
    code, err = run_main(["recipes", "cifar10/simclr"], capsys)
    assert_one_line_error(code, err, "'cifar10/simclr'", "cifar10/mocov3")


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"resmo {resmo.__version__}"
    assert resmo.__version__ == importlib.metadata.version("resmo")
    pyproject = (PROJECT / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1) == resmo.__version__


def test_docs_name_no_configs_folder():
    # reference files of other repositories may live in their configs/ (DenseCL's recipe)
    cited = {source["path"] for source in references()["sources"].values()}
    for path in [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for other in cited:
            text = text.replace(other, "")
        # and MoCo's detectron2 configs, which `resmo export --format detectron2` is used with
        text = text.replace("detection/configs/", "").replace("--config-file configs/", "")
        assert "configs/" not in text, path
        for value in re.findall(r"--config (\S+)", text):
            value = value.rstrip("`).,;")
            assert find_recipe(value) or value.endswith(".yaml"), (path, value)
