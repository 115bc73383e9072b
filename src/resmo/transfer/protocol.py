"""MoCo's VOC detection protocol beside what ``resmo transfer detect`` does, as data.

MoCo's side is ``detection/configs/pascal_voc_R_50_C4_24k_moco.yaml`` of facebookresearch/moco
(the last version, commit 132aea9da9bb995a411c915c0420be3db62052f3; with its bases ``pascal_voc_R_50_C4_24k.yaml`` and ``Base-RCNN-C4-BN.yaml``, its
``train_net.py`` and detectron2's defaults for what they leave unset). resmo's side is a text
with ``{placeholders}`` filled from ``values``: the facts tests/transfer/test_transfer_protocol.py
measures on the code (``DetectJob``'s defaults resolved by ``resolve_settings``, a detector that
``build_detector`` builds, the schedule constants), so a default that changes without its row
fails that test.

``render_table()`` gives the Markdown table of docs/detection.md; ``python -m
resmo.transfer.protocol docs/detection.md`` writes it between the file's two markers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

BEGIN, END = "<!-- protocol table: python -m resmo.transfer.protocol docs/detection.md -->", "<!-- end of protocol table -->"


@dataclass(frozen=True)
class Setting:
    name: str
    moco: str
    resmo: str  # with {placeholders} from values
    why: str  # empty where resmo does what MoCo does
    values: dict[str, str] = field(default_factory=dict)

    def resmo_text(self) -> str:
        return self.resmo.format(**self.values)


SETTINGS = (
    Setting("Detector", "Faster R-CNN R50-C4: RPN and RoI pooling (14x14 `ROIAlignV2`) on res4, the RoI head is "
            "res5 plus an extra BN (`Res5ROIHeadsExtraNorm`)",
            "`--head {head}`: R-C4 from torchvision's parts: `{detector}` on `{backbone}` (stem to res4), {pool} "
            "RoIAlign on res4 (aligned: {aligned}), box head `{box_head}` (res5, an extra norm layer, mean); "
            "`--head fpn`: torchvision's FPN",
            "the same architecture; torchvision's losses differ in detail (smooth L1 with beta 1/9 where "
            "detectron2's defaults use L1, beta 0)",
            {"head": "c4", "detector": "FasterRCNN", "backbone": "C4Trunk", "box_head": "Res5Head", "pool": "14x14",
             "aligned": "yes"}),
    Setting("Backbone", "ResNet-50, torchvision layout (`STRIDE_IN_1X1: False`)",
            "the run's {backbones} (ImageNet stem), torchvision layout",
            "resmo pretrains ResNet-18 at CPU scale; the paper's claim needs ResNet-50",
            {"backbones": "resnet18 or resnet50"}),
    Setting("Encoder", "the query encoder (`convert-pretrain-to-detectron2.py` keeps `encoder_q`)",
            "`--encoder {encoder}` (the query encoder)", "", {"encoder": "student"}),
    Setting("Normalisation layers", "BN synchronised over the GPUs in backbone and head (`RESNETS.NORM: "
            "naiveSyncBN`; `SyncBN` until Nov 2020: \"SyncBN seems to cause larger variance\"), trained; "
            "`TEST.PRECISE_BN` recomputes the statistics (200 iterations) before testing",
            "`--norm {norm}`: `{norm_layer}`, trained, running statistics (precise BN: {precise_bn}); "
            "`--norm frozen`: `FrozenBatchNorm2d`",
            "one device: BN sees the images of one batch (MoCo's: the 16 of all GPUs); precise BN not implemented",
            {"norm": "batch", "norm_layer": "BatchNorm2d", "precise_bn": "no"}),
    Setting("Frozen stages", "none (`BACKBONE.FREEZE_AT: 0`)", "{frozen} with `--norm batch` (stem and layer1 "
            "with `--norm frozen`)", "", {"frozen": "none"}),
    Setting("Input", "RGB (`INPUT.FORMAT`), `PIXEL_MEAN` [123.675, 116.28, 103.53], `PIXEL_STD` "
            "[58.395, 57.12, 57.375] on 0-255",
            "RGB on 0-1, mean {mean}, std {std}", "the same values on the 0-1 scale (resmo's pretraining "
            "normalisation)", {"mean": "[0.485, 0.456, 0.406]", "std": "[0.229, 0.224, 0.225]"}),
    Setting("Training scale", "shorter side drawn per image from 480, 512, ..., 800 (`MIN_SIZE_TRAIN`), "
            "longer side at most 1333", "shorter side {min_size}, longer at most {max_size} (`--image-size`): "
            "{scales}; `--train-sizes 480,512,...,800` draws per image as MoCo",
            "one scale by default, so that small images (`--image-size 128`) need no list of sizes",
            {"min_size": "800", "max_size": "1333", "scales": "one scale"}),
    Setting("Test scale", "shorter side 800, longer at most 1333", "shorter side {min_size}, longer at most "
            "{max_size}", "", {"min_size": "800", "max_size": "1333"}),
    Setting("Augmentation", "horizontal flip, p = 0.5", "horizontal flip, p = {p}", "", {"p": "0.5"}),
    Setting("Batch, learning rate", "16 images (8 GPUs x 2), `BASE_LR` 0.02",
            "`--batch-size` {batch} images, lr 0.02 x batch / 16 = {lr}",
            "one device; detectron2's linear scaling rule", {"batch": "8", "lr": "0.01"}),
    Setting("Schedule", "24,000 iterations; lr x 0.1 at 18,000 and 22,000 (75 %, 91.7 %); linear warm-up over "
            "100 iterations from 0.001 x lr", "{epochs} passes over the training split (`--epochs`, "
            "`--iterations`); lr x 0.1 at {steps}; linear warm-up over min({warmup}, iterations / 5) "
            "from {warmup_factor} x lr",
            "24k x 16 images is 23 passes over VOC07+12 trainval (16,551 images); counting passes suits any "
            "folder: `--iterations 48000 --batch-size 8` is MoCo's image count",
            {"epochs": "12", "steps": "75 %, 92 %", "warmup": "100", "warmup_factor": "0.001"}),
    Setting("Optimizer", "SGD, momentum 0.9, weight decay 1e-4, none on norm layers (`WEIGHT_DECAY_NORM: 0`)",
            "SGD, momentum {momentum}, weight decay {weight_decay} on every parameter",
            "norm layers' weight decay not split out", {"momentum": "0.9", "weight_decay": "0.0001"}),
    Setting("RPN", "on res4: anchors 32-512 x 3 ratios; 12,000 / 6,000 boxes before NMS (train / test), "
            "2,000 / 1,000 after; NMS 0.7; 256 anchors per image, half positive",
            "on {feature}: anchors {anchors} x {ratios} ratios; {pre_nms} before NMS, {post_nms} "
            "after (`--proposals`); NMS {nms}; {batch} anchors per image, {positive} positive",
            "", {"feature": "res4", "anchors": "32-512", "ratios": "3", "pre_nms": "12,000 / 6,000",
                 "post_nms": "2,000 / 1,000", "nms": "0.7", "batch": "256", "positive": "0.5"}),
    Setting("RoI sampling", "512 per image, 25 % positive", "{rois} per image (`--rois-per-image`), {positive} "
            "positive", "", {"rois": "512", "positive": "0.25"}),
    Setting("Test output", "score > 0.05, NMS 0.5, 100 boxes per image", "score > {score}, NMS {nms}, "
            "{detections} boxes per image", "", {"score": "0.05", "nms": "0.5", "detections": "100"}),
    Setting("Data", "train on VOC2007+2012 trainval (16,551 images), test on VOC2007 test (4,952)",
            "one VOC folder: `--train-split {train_split}`, tested on `test` if the folder has it, else `val`",
            "for 07+12, one folder holding both years' images and a split file listing both",
            {"train_split": "train"}),
    Setting("Metric", "VOC07 11-point AP (detectron2's `PascalVOCDetectionEvaluator`): AP (IoU .50:.05:.95), "
            "AP50, AP75", "COCO-style {coco} (torchmetrics, 101 points) and VOC07 11-point {voc}",
            "compare the VOC07_* numbers with MoCo's", {"coco": "AP, AP50, AP75",
                                                       "voc": "VOC07_AP, VOC07_AP50, VOC07_AP75"}),
    Setting("Trials", "5, the mean reported (std about 0.2 AP50 / AP, 0.4 AP75)",
            "`--seeds` (default {seeds}): each seed, mean and std", "pass `--seeds 0,1,2,3,4` for MoCo's 5",
            {"seeds": "0"}),
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table() -> str:
    """The Markdown table: setting, MoCo, resmo (defaults), why they differ."""
    lines = ["| Setting | MoCo VOC (`pascal_voc_R_50_C4_24k_moco.yaml`) | `resmo transfer detect` (defaults) | Why |",
             "|---|---|---|---|"]
    lines += [f"| {s.name} | {_cell(s.moco)} | {_cell(s.resmo_text())} | {_cell(s.why) or 'same'} |" for s in SETTINGS]
    return "\n".join(lines)


def with_table(document: str) -> str:
    """``document`` with the table between its markers replaced by :func:`render_table`."""
    if BEGIN not in document or END not in document:
        raise ValueError(f"the document has no protocol table markers ({BEGIN} ... {END})")
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{render_table()}\n{END}{tail}"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/detection.md")
    target.write_text(with_table(target.read_text()))
    print(f"wrote the protocol table into {target}")
