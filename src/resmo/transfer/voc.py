"""A Pascal VOC detection folder, read and checked: the data of ``resmo transfer detect``.

Layout (what the VOC2007 / VOC2012 releases hold)::

    ROOT/Annotations/<id>.xml        one per image: <size>, and <object>s with <name>,
                                     <difficult> and <bndbox> (xmin ymin xmax ymax)
    ROOT/JPEGImages/<file>           the image named by the XML's <filename> (else <id>.jpg)
    ROOT/ImageSets/Main/<split>.txt  the image ids of a split, one per line
    ROOT/classes.txt                 optional: the class names, one per line

Class names: ``classes=`` (``--classes a,b,c``) if given, else ``ROOT/classes.txt`` if it
exists (blank lines and lines starting with ``#`` are skipped), else the 20 VOC classes.
Label ``i + 1`` is class ``i`` (0 is the detector's background).

Boxes: VOC's pixel coordinates are 1-based and inclusive, so a box becomes
``[xmin - 1, ymin - 1, xmax, ymax]`` in 0-based ``xyxy`` (as detectron2 reads VOC);
``xmin = 0`` is accepted (some tools write it) and read as 0. Objects marked
``<difficult>1</difficult>`` are kept for training and are *ignore* regions in evaluation
(``iscrowd = 1`` for COCO-style AP, as VOC's own protocol ignores them).

Every problem (a missing folder or split file, unreadable XML, a box outside its image or
empty, an unknown class name, a missing image or one whose size differs from its XML)
raises :class:`VOCError` (a ``ValueError``) with one line naming the file and the value.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
CLASSES_FILE = "classes.txt"


class VOCError(ValueError):
    """Bad VOC data: the message is one line naming the file and the value."""


@dataclass(frozen=True)
class VOCObject:
    name: str
    label: int  # 1-based: index in the class list + 1
    box: tuple[float, float, float, float]  # 0-based xyxy
    difficult: bool


@dataclass(frozen=True)
class VOCImage:
    image_id: str
    path: Path
    width: int
    height: int
    objects: tuple[VOCObject, ...]


def read_classes(root: str | Path, classes: str | list[str] | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The class names (see the module doc for the order of precedence)."""
    if isinstance(classes, str):
        classes = [name.strip() for name in classes.split(",")]
    if classes is None:
        path = Path(root) / CLASSES_FILE
        if not path.is_file():
            return VOC_CLASSES
        classes = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        classes = [name for name in classes if name and not name.startswith("#")]
        where = str(path)
    else:
        where = "--classes"
    if not classes or any(not name for name in classes):
        raise VOCError(f"{where}: the class list {','.join(classes)!r} is empty or has an empty name")
    repeated = sorted({name for name in classes if list(classes).count(name) > 1})
    if repeated:
        raise VOCError(f"{where}: class name {repeated[0]!r} is listed twice")
    return tuple(classes)


def split_ids(root: str | Path, split: str) -> list[str]:
    """The image ids of ``ImageSets/Main/<split>.txt``."""
    root = Path(root)
    check_root(root)
    path = root / "ImageSets" / "Main" / f"{split}.txt"
    if not path.is_file():
        found = sorted(p.stem for p in path.parent.glob("*.txt")) if path.parent.is_dir() else []
        raise VOCError(f"{path} does not exist (splits in {path.parent}: {', '.join(found) or 'none'})")
    ids = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise VOCError(f"{path} lists no image id")
    return ids


def available_splits(root: str | Path) -> list[str]:
    folder = Path(root) / "ImageSets" / "Main"
    return sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []


def check_root(root: Path) -> None:
    if not root.is_dir():
        raise VOCError(f"VOC folder {root} does not exist")
    for name in ("Annotations", "JPEGImages"):
        if not (root / name).is_dir():
            raise VOCError(f"{root} has no {name}/ folder; a Pascal VOC folder holds Annotations/*.xml, "
                           "JPEGImages/ and ImageSets/Main/<split>.txt")


def _text(node: ElementTree.Element, tag: str, xml: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise VOCError(f"{xml}: <{node.tag}> has no <{tag}>")
    return child.text.strip()


def _number(node: ElementTree.Element, tag: str, xml: Path) -> float:
    value = _text(node, tag, xml)
    try:
        return float(value)
    except ValueError:
        raise VOCError(f"{xml}: <{tag}>{value}</{tag}> is not a number") from None


def parse_annotation(xml: Path, classes: tuple[str, ...], images: Path) -> VOCImage:
    """One ``Annotations/<id>.xml``, checked (see the module doc)."""
    try:
        tree = ElementTree.parse(xml).getroot()
    except ElementTree.ParseError as error:
        raise VOCError(f"{xml}: not valid XML ({error})") from None
    except OSError as error:
        raise VOCError(f"{xml}: cannot be read ({error.strerror or error})") from None
    size = tree.find("size")
    if size is None:
        raise VOCError(f"{xml}: no <size> (width, height)")
    width, height = _number(size, "width", xml), _number(size, "height", xml)
    if width < 1 or height < 1 or width != int(width) or height != int(height):
        raise VOCError(f"{xml}: image size {width:g}x{height:g} is not a positive whole number of pixels")
    objects = []
    for index, node in enumerate(tree.findall("object")):
        name = _text(node, "name", xml)
        if name not in classes:
            shown = ", ".join(classes[:20]) + (", ..." if len(classes) > 20 else "")
            raise VOCError(f"{xml}: unknown class name {name!r} (object {index}); known: {shown}; pass "
                           f"--classes a,b,c or write the names into {images.parent / CLASSES_FILE}")
        box = node.find("bndbox")
        if box is None:
            raise VOCError(f"{xml}: object {index} ({name!r}) has no <bndbox>")
        xmin, ymin, xmax, ymax = (_number(box, tag, xml) for tag in ("xmin", "ymin", "xmax", "ymax"))
        coords = f"xmin={xmin:g} ymin={ymin:g} xmax={xmax:g} ymax={ymax:g}"
        if xmin < 0 or ymin < 0 or xmax > width or ymax > height:
            raise VOCError(f"{xml}: object {index} ({name!r}) box {coords} lies outside the "
                           f"{width:g}x{height:g} image")
        x1, y1 = max(xmin - 1, 0.0), max(ymin - 1, 0.0)
        if xmax <= x1 or ymax <= y1:
            raise VOCError(f"{xml}: object {index} ({name!r}) box {coords} is empty (needs xmin <= xmax "
                           "and ymin <= ymax, 1-based inclusive)")
        difficult = node.find("difficult")
        objects.append(VOCObject(name, classes.index(name) + 1, (x1, y1, xmax, ymax),
                                 difficult is not None and (difficult.text or "0").strip() == "1"))
    filename = tree.findtext("filename", "").strip()
    path = images / filename if filename and (images / filename).is_file() else images / f"{xml.stem}.jpg"
    if not path.is_file():
        raise VOCError(f"{xml}: its image {images / (filename or xml.stem + '.jpg')} does not exist")
    return VOCImage(xml.stem, path, int(width), int(height), tuple(objects))


def read_split(root: str | Path, split: str, classes: tuple[str, ...]) -> list[VOCImage]:
    """Every image of ``split`` with its checked annotation."""
    root = Path(root)
    records = []
    for image_id in split_ids(root, split):
        xml = root / "Annotations" / f"{image_id}.xml"
        if not xml.is_file():
            raise VOCError(f"{root / 'ImageSets' / 'Main' / (split + '.txt')}: image id {image_id!r} has no {xml}")
        records.append(parse_annotation(xml, classes, root / "JPEGImages"))
    return records


def target_of(record: VOCImage) -> dict[str, torch.Tensor]:
    """torchvision's detection target: ``boxes`` [N, 4] xyxy, ``labels`` [N], ``iscrowd`` [N]
    (1 for difficult objects)."""
    boxes = torch.tensor([o.box for o in record.objects], dtype=torch.float32).reshape(-1, 4)
    return {"boxes": boxes,
            "labels": torch.tensor([o.label for o in record.objects], dtype=torch.int64),
            "iscrowd": torch.tensor([int(o.difficult) for o in record.objects], dtype=torch.int64)}


class VOCDetection(Dataset):
    """``(image [3, H, W] float in [0, 1], target)`` for the images of one split.

    Images are read as RGB; one whose size differs from its XML's ``<size>`` raises
    :class:`VOCError` (its boxes would be misplaced).
    """

    def __init__(self, root: str | Path, split: str, classes: tuple[str, ...]):
        self.root, self.split, self.classes = Path(root), split, classes
        self.records = read_split(self.root, split, classes)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        from PIL import Image, UnidentifiedImageError
        from torchvision.transforms.functional import pil_to_tensor

        record = self.records[index]
        try:
            with Image.open(record.path) as image:
                image = image.convert("RGB")
        except (OSError, UnidentifiedImageError) as error:
            raise VOCError(f"{record.path}: cannot be read as an image ({type(error).__name__})") from None
        if image.size != (record.width, record.height):
            raise VOCError(f"{record.path}: the image is {image.size[0]}x{image.size[1]}, its annotation says "
                           f"{record.width}x{record.height}")
        return pil_to_tensor(image).float().div_(255), target_of(record)

    def num_objects(self) -> int:
        return sum(len(record.objects) for record in self.records)
