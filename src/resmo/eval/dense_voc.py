"""A Pascal VOC segmentation folder, read and checked: the data of ``resmo eval dense``.

Layout (what the VOC2007 / VOC2012 releases hold, and ``benchmarks/cifar10_scenes.py`` writes)::

    ROOT/JPEGImages/<id>.jpg                 the images
    ROOT/SegmentationClass/<id>.png          one mask per image, a class index per pixel
    ROOT/ImageSets/Segmentation/<split>.txt  the image ids of a split, one per line
    ROOT/classes.txt                         optional: the object class names, one per line

Mask values: ``0`` is the background, ``i + 1`` object class ``i`` and ``255`` VOC's
"void" border, which is ignored (neither trained on nor scored). A mask is a palette PNG
(mode ``P``, VOC's colour map: the pixel values are the class indices) or a grey-level PNG
(mode ``L``); an RGB mask is read back through VOC's palette (:func:`voc_palette`).

Classes: ``background`` followed by the names of ``ROOT/classes.txt`` (blank lines and lines
starting with ``#`` skipped), else by the 20 VOC classes (21 classes in all).

Images and masks are resized to ``image_size`` x ``image_size`` (images bilinear, masks
nearest, so no new label appears) and the images normalised with the ImageNet mean and
standard deviation, as resmo normalises when pretraining. Every problem (a missing folder,
split file, image or mask, a mask of another size than its image, a label outside the
classes) raises :class:`SegmentationError` (a ``ValueError``) with one line naming the file
and the value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

#: The 20 Pascal VOC object classes (segmentation label ``i + 1`` is ``VOC_CLASSES[i]``).
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
BACKGROUND = "background"
IGNORE = 255
CLASSES_FILE = "classes.txt"


class SegmentationError(ValueError):
    """Bad segmentation data: the message is one line naming the file and the value."""


def voc_palette() -> list[tuple[int, int, int]]:
    """VOC's colour map, 256 RGB colours: colour ``i`` spreads the bits of ``i`` over the three
    channels, high bits first (the devkit's ``VOClabelcolormap.m``); 255 is (224, 224, 192)."""
    colours = []
    for index in range(256):
        red = green = blue = 0
        value = index
        for shift in range(7, -1, -1):
            red |= ((value >> 0) & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        colours.append((red, green, blue))
    return colours


def segmentation_classes(root: str | Path) -> tuple[str, ...]:
    """``("background", *object classes)`` (see the module doc)."""
    path = Path(root) / CLASSES_FILE
    if not path.is_file():
        return (BACKGROUND, *VOC_CLASSES)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    if not names or len(set(names)) != len(names):
        raise SegmentationError(f"{path}: needs one or more distinct class names, one per line")
    return (BACKGROUND, *names)


def segmentation_ids(root: str | Path, split: str) -> list[str]:
    """The image ids of ``ImageSets/Segmentation/<split>.txt``."""
    root = Path(root)
    if not root.is_dir():
        raise SegmentationError(f"segmentation folder {root} does not exist")
    for name in ("JPEGImages", "SegmentationClass"):
        if not (root / name).is_dir():
            raise SegmentationError(f"{root} has no {name}/ folder; a VOC segmentation folder holds JPEGImages/, "
                                    "SegmentationClass/*.png and ImageSets/Segmentation/<split>.txt")
    path = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not path.is_file():
        found = sorted(p.stem for p in path.parent.glob("*.txt")) if path.parent.is_dir() else []
        raise SegmentationError(f"{path} does not exist (splits in {path.parent}: {', '.join(found) or 'none'})")
    ids = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise SegmentationError(f"{path} lists no image id")
    return ids


def read_mask(path: Path, num_classes: int) -> np.ndarray:
    """The ``[H, W]`` uint8 class indices of one mask PNG, checked (see the module doc)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode, array = image.mode, np.asarray(image.convert("RGB") if image.mode == "RGB" else image)
    except (OSError, UnidentifiedImageError) as error:
        raise SegmentationError(f"{path}: cannot be read as a mask PNG ({type(error).__name__})") from None
    if mode == "RGB":
        lookup = {colour: index for index, colour in enumerate(voc_palette())}
        flat = [tuple(pixel) for pixel in array.reshape(-1, 3).tolist()]
        unknown = next((pixel for pixel in flat if pixel not in lookup), None)
        if unknown is not None:
            raise SegmentationError(f"{path}: RGB colour {unknown} is not in VOC's palette; "
                                    "write masks as palette (P) or grey-level (L) PNGs of class indices")
        array = np.array([lookup[pixel] for pixel in flat], dtype=np.uint8).reshape(array.shape[:2])
    elif mode not in ("P", "L"):
        raise SegmentationError(f"{path}: mask mode {mode!r} is not a palette (P) or grey-level (L) PNG")
    labels = np.unique(array)
    bad = [int(v) for v in labels if v >= num_classes and v != IGNORE]
    if bad:
        raise SegmentationError(f"{path}: label {bad[0]} is outside the {num_classes} classes "
                                f"(0 background, 1-{num_classes - 1} objects, {IGNORE} ignored)")
    return array.astype(np.uint8)


class VOCSegmentation(Dataset):
    """``(image [3, S, S] normalised, mask [S, S] int64)`` for the images of one split."""

    def __init__(self, root: str | Path, split: str, image_size: int, classes: tuple[str, ...] | None = None):
        self.root, self.split, self.image_size = Path(root), split, int(image_size)
        self.classes = classes or segmentation_classes(self.root)
        self.ids = segmentation_ids(self.root, split)
        for image_id in self.ids:
            for path in (self.image_path(image_id), self.mask_path(image_id)):
                if not path.is_file():
                    raise SegmentationError(f"{self.root / 'ImageSets' / 'Segmentation' / (split + '.txt')}: "
                                            f"image id {image_id!r} has no {path}")

    def image_path(self, image_id: str) -> Path:
        return self.root / "JPEGImages" / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path:
        return self.root / "SegmentationClass" / f"{image_id}.png"

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image, UnidentifiedImageError
        from torchvision.transforms import functional as TF

        from resmo.data import IMAGENET_MEAN, IMAGENET_STD

        image_id = self.ids[index]
        path = self.image_path(image_id)
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except (OSError, UnidentifiedImageError) as error:
            raise SegmentationError(f"{path}: cannot be read as an image ({type(error).__name__})") from None
        mask = read_mask(self.mask_path(image_id), len(self.classes))
        if mask.shape != (image.height, image.width):
            raise SegmentationError(f"{self.mask_path(image_id)}: the mask is {mask.shape[1]}x{mask.shape[0]}, "
                                    f"its image {image.width}x{image.height}")
        size = [self.image_size, self.image_size]
        pixels = TF.resize(TF.pil_to_tensor(image), size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        pixels = TF.normalize(pixels.float().div_(255), list(IMAGENET_MEAN), list(IMAGENET_STD))
        labels = TF.resize(torch.from_numpy(mask)[None], size, interpolation=TF.InterpolationMode.NEAREST)[0]
        return pixels, labels.long()
