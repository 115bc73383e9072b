"""`resmo export`: weights that load with strict=True into plain torchvision / timm models and
give the same features as the in-library backbone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from torch import nn

from resmo.backbone_files import load_backbone
from resmo.backbones import create_backbone
from resmo.plain_weights import build_plain_model, plain_state_dict
from tests.eval_helpers import make_run, run_cli

SMALL = ("data.image_size=16", "data.synthetic.val_num_samples=16", "monitor.knn_every_epochs=0")
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One-epoch runs (32 images of 16 px) with a ResNet-18, a ViT-Tiny and the small ResNet."""
    root = tmp_path_factory.mktemp("export")
    return {
        backbone: make_run(root / backbone, f"backbone={backbone}", *SMALL, epochs=1, samples=32)
        for backbone in ("resnet18", "vit_tiny", "resnet_small")
    }


def export(run: Path, encoder: str, capsys) -> tuple[dict, dict]:
    code, out, err = run_cli(["export", run, "--encoder", encoder], capsys)
    assert code == 0, err
    path = next(run.glob(f"export/{encoder}-*.pt"))
    assert str(path) in out
    return torch.load(path, weights_only=True), json.loads(path.with_suffix(".json").read_text())


def images(size: int = 16) -> torch.Tensor:
    return torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def in_library(run: Path, encoder: str) -> torch.Tensor:
    """Features of the backbone ``resmo pretrain`` exported (resmo's own format)."""
    return load_backbone(run / f"{encoder}_backbone.pt").eval()(images())


@pytest.mark.parametrize("encoder", ["student", "teacher"])
def test_resnet18_cifar_stem_loads_into_plain_torchvision(runs, encoder, capsys):
    weights, meta = export(runs["resnet18"], encoder, capsys)
    assert meta["build"]["cifar_stem"] is True and not any(k.startswith(("net.", "fc.")) for k in weights)
    model = torchvision.models.resnet18()
    model.fc = nn.Identity()
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    model.load_state_dict(weights, strict=True)
    with torch.no_grad():
        features = model.eval()(images())
    assert features.shape == (4, 512)
    torch.testing.assert_close(features, in_library(runs["resnet18"], encoder), rtol=0, atol=1e-6)


@pytest.mark.parametrize("encoder", ["student", "teacher"])
def test_vit_loads_into_plain_timm(runs, encoder, capsys):
    weights, meta = export(runs["vit_tiny"], encoder, capsys)
    assert meta["build"] == {"format": "timm", "model": "vit_tiny_patch16_224",
                             "kwargs": {"num_classes": 0, "img_size": 16, "patch_size": 4}}
    model = timm.create_model("vit_tiny_patch16_224", num_classes=0, img_size=16, patch_size=4)
    model.load_state_dict(weights, strict=True)
    with torch.no_grad():
        features = model.eval()(images())
    torch.testing.assert_close(features, in_library(runs["vit_tiny"], encoder), rtol=0, atol=1e-6)


def test_student_and_teacher_exports_differ(runs, capsys):
    student, _ = export(runs["resnet18"], "student", capsys)
    teacher, _ = export(runs["resnet18"], "teacher", capsys)
    assert student.keys() == teacher.keys()
    assert not torch.equal(student["layer1.0.conv1.weight"], teacher["layer1.0.conv1.weight"])


def test_resnet_small_exports_resmo_weights_with_a_note(runs, capsys):
    weights, meta = export(runs["resnet_small"], "teacher", capsys)
    assert meta["build"]["format"] == "resmo" and "no torchvision/timm twin" in meta["build"]["note"]
    model = create_backbone("resnet_small", **meta["build"]["kwargs"])
    model.load_state_dict(weights, strict=True)
    with torch.no_grad():
        features = model.eval()(images())
    assert torch.equal(features, in_library(runs["resnet_small"], "teacher"))


@pytest.mark.parametrize("cifar_stem", [False, True])
def test_resnet50_state_dict_matches_torchvision(cifar_stem):
    torch.manual_seed(0)
    backbone = create_backbone("resnet50", cifar_stem=cifar_stem).eval()
    weights, build = plain_state_dict(backbone, "resnet50", {"cifar_stem": cifar_stem})
    model = torchvision.models.resnet50()
    model.fc = nn.Identity()
    if cifar_stem:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.load_state_dict(weights, strict=True)
    x = images(32)
    plain = build_plain_model(build)  # the same model, built from the export's record
    plain.load_state_dict(weights, strict=True)
    with torch.no_grad():
        expected = backbone(x)
        torch.testing.assert_close(model.eval()(x), expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(plain.eval()(x), expected, rtol=0, atol=1e-6)


def test_readme_snippet_runs_on_an_export(runs, capsys):
    """The ResNet snippet of README's 'Using the pretrained encoder', run on a real export."""
    section = README.read_text().split("## Using the pretrained encoder", 1)[1]
    snippet = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    export(runs["resnet18"], "teacher", capsys)
    path = runs["resnet18"] / "export" / "teacher-resnet18.pt"
    code = snippet.replace("runs/mocov3-cifar10/export/teacher-resnet18.pt", str(path))
    code = code.replace("torch.randn(8, 3, 32, 32)", "torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    torch.testing.assert_close(namespace["features"], in_library(runs["resnet18"], "teacher"), rtol=0, atol=1e-6)
