"""Exports for detection: detectron2's ResNet key names, and torchvision detection backbones."""

from __future__ import annotations

import ast
import json
import pickle

import numpy as np
import pytest
import torch
import yaml
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

from eval_helpers import make_run, run_cli
from resmo.backbones import create_backbone
from resmo.data import IMAGENET_MEAN, IMAGENET_STD
from resmo.detectron2_export import (
    detectron2_config,
    detectron2_key,
    detectron2_opts,
    detectron2_weights,
)
from resmo.plain_weights import plain_state_dict

# detectron2.modeling.backbone.resnet, written down: BasicStem holds `conv1` (a Conv2d with
# `norm`); stages res2..res5; in every block conv1..conv3 (bottleneck) or conv1..conv2
# (basic), each with `.norm`, and in the first block of each stage a `shortcut` with `.norm`
# (res2 of ResNet-18/34 has none: its input already has 64 channels and stride 1).
NORM = ("weight", "bias", "running_mean", "running_var")


def detectron2_resnet_keys(blocks: tuple[int, ...], convs_per_block: int, res2_shortcut: bool) -> set[str]:
    def conv(prefix: str) -> set[str]:
        return {f"{prefix}.weight", *(f"{prefix}.norm.{name}" for name in NORM)}

    keys = conv("stem.conv1")
    for stage, count in zip(range(2, 6), blocks, strict=True):
        for block in range(count):
            for index in range(1, convs_per_block + 1):
                keys |= conv(f"res{stage}.{block}.conv{index}")
        if stage > 2 or res2_shortcut:
            keys |= conv(f"res{stage}.0.shortcut")
    return keys


R50_KEYS = detectron2_resnet_keys((3, 4, 6, 3), 3, res2_shortcut=True)
R18_KEYS = detectron2_resnet_keys((2, 2, 2, 2), 2, res2_shortcut=False)


def test_the_written_down_r50_layout_has_detectron2s_key_count_and_names():
    assert len(R50_KEYS) == 53 * 5  # 53 convolutions, each with weight + 4 norm tensors
    assert {"stem.conv1.weight", "stem.conv1.norm.running_var", "res2.0.shortcut.norm.bias",
            "res4.5.conv2.weight", "res5.2.conv3.norm.running_mean"} <= R50_KEYS


@pytest.mark.parametrize("name, expected", [("resnet50", R50_KEYS), ("resnet18", R18_KEYS)])
def test_resnet_exports_carry_exactly_detectron2s_keys_and_values(name, expected):
    backbone = create_backbone(name)
    state, build = plain_state_dict(backbone, name, {})
    weights = detectron2_weights(state, backbone=name, cifar_stem=build["cifar_stem"])
    assert set(weights) == expected
    assert all(isinstance(value, np.ndarray) for value in weights.values())
    assert np.array_equal(weights["stem.conv1.weight"], state["conv1.weight"].numpy())
    assert np.array_equal(weights[detectron2_key("layer3.0.downsample.1.running_var")],
                          state["layer3.0.downsample.1.running_var"].numpy())


def test_the_renaming_of_single_keys():
    assert detectron2_key("bn1.weight") == "stem.conv1.norm.weight"
    assert detectron2_key("layer1.0.bn3.running_mean") == "res2.0.conv3.norm.running_mean"
    assert detectron2_key("layer4.1.downsample.0.weight") == "res5.1.shortcut.weight"
    assert detectron2_key("layer2.0.downsample.1.bias") == "res3.0.shortcut.norm.bias"


def test_backbones_detectron2_cannot_hold_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="needs a ResNet backbone .*'vit_tiny'"):
        detectron2_weights({}, backbone="vit_tiny", cifar_stem=False)
    with pytest.raises(ValueError, match="CIFAR stem .* 96 px or more"):
        detectron2_weights({}, backbone="resnet18", cifar_stem=True)


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory):
    """A one-epoch ResNet-18 run with the ImageNet stem (what a detector needs)."""
    root = tmp_path_factory.mktemp("detection")
    return make_run(root / "run", "backbone=resnet18", "backbone_options.resnet18={cifar_stem: false}",
                    "data.image_size=32", "data.synthetic.val_num_samples=16", "monitor.knn_every_epochs=0",
                    epochs=1, samples=32)


def test_resmo_export_format_detectron2_writes_the_pickle(detection_run, capsys):
    code, out, err = run_cli(["export", detection_run, "--encoder", "teacher", "--format", "detectron2"], capsys)
    assert code == 0, err
    path = detection_run / "export" / "teacher-resnet18-detectron2.pkl"
    assert str(path) in out
    with path.open("rb") as file:
        checkpoint = pickle.load(file)
    assert checkpoint["matching_heuristics"] is True and set(checkpoint["model"]) == R18_KEYS
    metadata = json.loads(path.with_suffix(".json").read_text())
    assert metadata["build"]["format"] == "detectron2"
    # the config fragment: what detectron2 needs to read torchvision-layout weights right
    fragment = yaml.safe_load(path.with_suffix(".yaml").read_text())
    assert metadata["build"]["config"] == str(path.with_suffix(".yaml"))
    assert fragment == {
        "MODEL": {"WEIGHTS": str(path.resolve()),
                  "RESNETS": {"DEPTH": 18, "STRIDE_IN_1X1": False, "RES2_OUT_CHANNELS": 64},
                  "PIXEL_MEAN": [123.675, 116.28, 103.53], "PIXEL_STD": [58.395, 57.12, 57.375]},  # MoCo's values
        "INPUT": {"FORMAT": "RGB"}}
    normalize = metadata["normalize"]  # how the run's images were normalised (0-1 scale)
    assert fragment["MODEL"]["PIXEL_MEAN"] == pytest.approx([255 * v for v in normalize["mean"]], abs=1e-9)
    assert fragment["MODEL"]["PIXEL_STD"] == pytest.approx([255 * v for v in normalize["std"]], abs=1e-9)
    assert "MODEL.RESNETS.STRIDE_IN_1X1 False" in out  # the note prints the detectron2 command line
    code, _, _ = run_cli(["export", detection_run, "--encoder", "teacher"], capsys)
    plain = torch.load(detection_run / "export" / "teacher-resnet18.pt", weights_only=True)
    assert np.array_equal(checkpoint["model"]["res5.1.conv2.weight"], plain["layer4.1.conv2.weight"].numpy())


def test_a_cifar_stem_run_is_refused_in_one_line(tmp_path, capsys):
    run = make_run(tmp_path / "cifar", "backbone=resnet18", "data.image_size=16",
                   "data.synthetic.val_num_samples=16", "monitor.knn_every_epochs=0", epochs=1, samples=32)
    capsys.readouterr()  # the training run's own lines
    code, _, err = run_cli(["export", run, "--encoder", "student", "--format", "detectron2"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "CIFAR stem" in err


def test_the_torchvision_export_loads_into_a_torchvision_detection_backbone(detection_run, capsys):
    code, _, err = run_cli(["export", detection_run, "--encoder", "student"], capsys)
    assert code == 0, err
    state = torch.load(detection_run / "export" / "student-resnet18.pt", weights_only=True)
    fpn = resnet_fpn_backbone(backbone_name="resnet18", weights=None, norm_layer=FrozenBatchNorm2d,
                              trainable_layers=5)
    body = fpn.body  # torchvision's ResNet up to layer4 (no avgpool, no fc)
    result = body.load_state_dict(state, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(body.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    assert torch.equal(body.bn1.running_var, state["bn1.running_var"])
    features = fpn(torch.randn(1, 3, 64, 64))
    assert set(features) == {"0", "1", "2", "3", "pool"}


def test_the_r50_fragment_and_its_command_line_pairs_read_back_as_detectron2_merges_them(tmp_path):
    config = detectron2_config(tmp_path / "w.pkl", backbone="resnet50", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert config["MODEL"]["RESNETS"] == {"DEPTH": 50, "STRIDE_IN_1X1": False}  # bottlenecks: no RES2_OUT_CHANNELS
    pairs = detectron2_opts(config)
    # detectron2's cfg.merge_from_list reads each value with ast.literal_eval (strings stay strings)
    read = {}
    for key, value in zip(pairs[::2], pairs[1::2], strict=True):
        try:
            read[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            read[key] = value
    assert read == {"MODEL.WEIGHTS": str((tmp_path / "w.pkl").resolve()), "MODEL.RESNETS.DEPTH": 50,
                    "MODEL.RESNETS.STRIDE_IN_1X1": False, "MODEL.PIXEL_MEAN": [123.675, 116.28, 103.53],
                    "MODEL.PIXEL_STD": [58.395, 57.12, 57.375], "INPUT.FORMAT": "RGB"}


def test_an_out_file_that_the_metadata_would_overwrite_is_refused(detection_run, tmp_path, capsys):
    code, _, err = run_cli(["export", detection_run, "--encoder", "student", "--format", "detectron2",
                            "--out", tmp_path / "w.yaml"], capsys)
    assert code == 2 and "need another suffix" in err and not (tmp_path / "w.yaml").exists()
