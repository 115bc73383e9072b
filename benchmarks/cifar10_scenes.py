"""CIFAR-10 scenes: real CIFAR-10 images pasted on canvases, as a Pascal VOC detection set.

    python -m benchmarks.cifar10_scenes --out ~/.cache/resmo/benchmarks/cifar10-scenes
    resmo pretrain --backbone resnet18 data.name=OUT/unlabelled data.image_size=96 ...
    resmo transfer detect RUN --data OUT --image-size 128 --train-split train
    resmo eval dense RUN --data OUT --image-size 128 --val-split test

Each scene is a ``--canvas`` px square (default 128) with a background, either a flat random
colour or smooth colour noise (``--background flat|noise|mix``, default ``mix``: one or the
other, half the scenes each), and 2-4 (``--objects MIN,MAX``) CIFAR-10 images resized to a
random square side of 24-64 px (``--sizes MIN,MAX``, bilinear) pasted at random positions.
A new image may cover at most a quarter of an earlier one (and vice versa); an object that
finds no such place in 100 tries is left out, so a scene has at least one object. Boxes are
the pasted squares, written as VOC's 1-based inclusive pixel coordinates, always inside the
canvas. Each scene's segmentation mask (``SegmentationClass/<id>.png``, a palette PNG with VOC's
colours) holds, per pixel, 0 for the background and ``class index + 1`` inside each pasted
object's square, later objects on top of earlier ones (as they are pasted).

Which CIFAR-10 images: train scenes (and ``unlabelled/``) from CIFAR-10's train split minus
every 10th image of each class (sorted by file name), val scenes from those held-out 10 %,
test scenes from CIFAR-10's test split: no CIFAR image is in the scenes of two splits.

Output (the layouts ``resmo transfer detect`` and ``resmo eval dense`` read)::

    OUT/Annotations/<id>.xml  OUT/JPEGImages/<id>.jpg  OUT/classes.txt (the 10 CIFAR names)
    OUT/SegmentationClass/<id>.png
    OUT/ImageSets/Main/{train,val,test,trainval}.txt
    OUT/ImageSets/Segmentation/{train,val,test,trainval}.txt   the same ids
    OUT/unlabelled/           the train scenes (hard links, or copies) and --num-unlabelled
                              more scenes: an image folder for resmo pretrain
    OUT/scenes.json           the settings and counts

Deterministic: scene ``i`` of a split depends only on ``--seed``, the split, ``i`` and the
settings (``numpy.random.default_rng([seed, split, i])``), so ``--num-train 100`` holds the
first 100 scenes of ``--num-train 1000``. The CIFAR-10 images come from ``--cifar FOLDER``
(``train/<class>/*.jpg`` and ``test/<class>/*.jpg``), by default the real CIFAR-10 archive
``../shared/data/cifar10-jpeg.tar.gz`` extracted by ``cifar10_folder.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from resmo.eval.dense_voc import voc_palette

HERE = Path(__file__).resolve().parent
SPLITS = {"train": 0, "val": 1, "test": 2, "unlabelled": 3}
EXTENSIONS = (".jpg", ".jpeg", ".png")
MAX_COVER = 0.25
TRIES = 100


def source_pools(cifar: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """``(class names, {split: [(image, class index)]})`` from a CIFAR-10 folder (see module doc)."""
    for split in ("train", "test"):
        if not (cifar / split).is_dir():
            raise SystemExit(f"cifar10_scenes: error: {cifar / split} does not exist; --cifar needs "
                             "train/<class>/*.jpg and test/<class>/*.jpg")
    classes = sorted(p.name for p in (cifar / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    pools: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
    for index, name in enumerate(classes):
        for split in ("train", "test"):
            files = sorted(p for p in (cifar / split / name).glob("*") if p.suffix.lower() in EXTENSIONS)
            if not files:
                raise SystemExit(f"cifar10_scenes: error: no images in {cifar / split / name}")
            if split == "test":
                pools["test"] += [(p, index) for p in files]
            else:
                pools["val"] += [(p, index) for k, p in enumerate(files) if k % 10 == 9]
                pools["train"] += [(p, index) for k, p in enumerate(files) if k % 10 != 9]
    if not pools["val"]:
        raise SystemExit(f"cifar10_scenes: error: {cifar / 'train'} needs 10 or more images per class "
                         "(every 10th goes to the val scenes)")
    return classes, pools


def background(rng: np.random.Generator, canvas: int, kind: str) -> Image.Image:
    if kind == "mix":
        kind = "flat" if rng.random() < 0.5 else "noise"
    if kind == "flat":
        return Image.new("RGB", (canvas, canvas), tuple(int(v) for v in rng.integers(0, 256, 3)))
    cells = int(rng.integers(2, 9))
    grid = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(grid).resize((canvas, canvas), Image.BICUBIC), dtype=np.float32)
    grain = rng.normal(0.0, 12.0, smooth.shape)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


def covers(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """The larger share of either box's area that their intersection takes (boxes x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return w * h / min(area(a), area(b))


def make_scene(rng: np.random.Generator, pool: list[tuple[Path, int]], settings: argparse.Namespace):
    """``(image, [(class index, (x0, y0, x1, y1) 0-based exclusive)])`` of one scene."""
    canvas = settings.canvas
    image = background(rng, canvas, settings.background)
    count = int(rng.integers(settings.objects[0], settings.objects[1] + 1))
    placed: list[tuple[int, tuple[int, int, int, int]]] = []
    for _ in range(count):
        path, label = pool[int(rng.integers(len(pool)))]
        side = int(rng.integers(settings.sizes[0], settings.sizes[1] + 1))
        for _ in range(TRIES):
            x, y = (int(v) for v in rng.integers(0, canvas - side + 1, 2))
            box = (x, y, x + side, y + side)
            if all(covers(box, other) <= MAX_COVER for _, other in placed):
                break
        else:
            continue
        with Image.open(path) as source:
            image.paste(source.convert("RGB").resize((side, side), Image.BILINEAR), (x, y))
        placed.append((label, box))
    return image, placed


def annotation(image_id: str, canvas: int, objects, classes: list[str]) -> str:
    parts = [f"<annotation><folder>cifar10-scenes</folder><filename>{image_id}.jpg</filename>",
             f"<size><width>{canvas}</width><height>{canvas}</height><depth>3</depth></size>"]
    for label, (x0, y0, x1, y1) in objects:
        parts.append(f"<object><name>{classes[label]}</name><pose>Unspecified</pose><truncated>0</truncated>"
                     f"<difficult>0</difficult><bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin>"
                     f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>")
    return "\n".join(parts) + "\n</annotation>\n"


def segmentation_mask(canvas: int, objects) -> Image.Image:
    """The scene's mask: 0 background, ``class index + 1`` in each object's square, later on top;
    a palette PNG with VOC's colours."""
    labels = np.zeros((canvas, canvas), dtype=np.uint8)
    for label, (x0, y0, x1, y1) in objects:
        labels[y0:y1, x0:x1] = label + 1
    mask = Image.frombytes("P", (canvas, canvas), labels.tobytes())
    mask.putpalette([channel for colour in voc_palette() for channel in colour])
    return mask


def link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def generate(settings: argparse.Namespace) -> dict:
    """Write the scenes (see the module doc); return what ``scenes.json`` holds."""
    out, canvas = Path(settings.out), settings.canvas
    classes, pools = source_pools(Path(settings.cifar))
    for folder in ("Annotations", "JPEGImages", "SegmentationClass", "ImageSets/Main", "ImageSets/Segmentation",
                   "unlabelled"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    counts = {"train": settings.num_train, "val": settings.num_val, "test": settings.num_test}
    objects_per_split = {}
    for split, number in counts.items():
        ids, total = [], 0
        for index in range(number):
            rng = np.random.default_rng([settings.seed, SPLITS[split], index])
            image, objects = make_scene(rng, pools[split], settings)
            image_id = f"{split}_{index:06d}"
            image.save(out / "JPEGImages" / f"{image_id}.jpg", quality=95)
            (out / "Annotations" / f"{image_id}.xml").write_text(annotation(image_id, canvas, objects, classes))
            segmentation_mask(canvas, objects).save(out / "SegmentationClass" / f"{image_id}.png")
            if split == "train":
                link_or_copy(out / "JPEGImages" / f"{image_id}.jpg", out / "unlabelled" / f"{image_id}.jpg")
            ids.append(image_id)
            total += len(objects)
        for layout in ("Main", "Segmentation"):
            (out / "ImageSets" / layout / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        objects_per_split[split] = total
    trainval = [f"train_{i:06d}" for i in range(counts["train"])] + [f"val_{i:06d}" for i in range(counts["val"])]
    for layout in ("Main", "Segmentation"):
        (out / "ImageSets" / layout / "trainval.txt").write_text("".join(f"{i}\n" for i in trainval))
    for index in range(settings.num_unlabelled):
        rng = np.random.default_rng([settings.seed, SPLITS["unlabelled"], index])
        make_scene(rng, pools["train"], settings)[0].save(out / "unlabelled" / f"extra_{index:06d}.jpg", quality=95)
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in classes))
    summary = {
        "command": shlex.join(["python", "-m", "benchmarks.cifar10_scenes", *settings.argv]),
        "seed": settings.seed, "canvas": canvas, "objects": list(settings.objects), "sizes": list(settings.sizes),
        "background": settings.background, "cifar": str(settings.cifar), "classes": classes,
        "images": {**counts, "unlabelled": counts["train"] + settings.num_unlabelled},
        "objects_per_split": objects_per_split,
    }
    (out / "scenes.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def pair(value: str) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid range {value!r}: MIN,MAX (integers)") from None
    if not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"invalid range {value!r}: needs 1 <= MIN <= MAX")
    return low, high


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cifar10_scenes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache" / "resmo" / "benchmarks" / "cifar10-scenes",
                        help="output folder (default ~/.cache/resmo/benchmarks/cifar10-scenes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--num-val", type=int, default=500)
    parser.add_argument("--num-test", type=int, default=1000)
    parser.add_argument("--num-unlabelled", type=int, default=0, help="extra unlabelled scenes (default 0)")
    parser.add_argument("--canvas", type=int, default=128, help="scene side in px (default 128)")
    parser.add_argument("--objects", type=pair, default=(2, 4), metavar="MIN,MAX", help="objects per scene (default 2,4)")
    parser.add_argument("--sizes", type=pair, default=(24, 64), metavar="MIN,MAX", help="object side in px (default 24,64)")
    parser.add_argument("--background", choices=("flat", "noise", "mix"), default="mix")
    parser.add_argument("--cifar", type=Path, help="CIFAR-10 folder with train/ and test/ (default: the shared archive, extracted)")
    argv = list(sys.argv[1:] if argv is None else argv)
    settings = parser.parse_args(argv)
    for name in ("num_train", "num_val", "num_test", "num_unlabelled"):
        if getattr(settings, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    if settings.sizes[1] > settings.canvas:
        parser.error(f"--sizes {settings.sizes[1]} is larger than --canvas {settings.canvas}")
    settings.argv = argv
    return settings


def main(argv: list[str] | None = None) -> dict:
    settings = parse(argv)
    if settings.cifar is None:
        from benchmarks.cifar10_folder import DataMissing, cifar10_folder

        try:
            settings.cifar = cifar10_folder()
        except DataMissing as error:
            raise SystemExit(f"cifar10_scenes: error: {error}") from None
    summary = generate(settings)
    print(f"wrote {sum(summary['images'][s] for s in ('train', 'val', 'test'))} scenes "
          f"({summary['objects_per_split']} objects) to {settings.out}")
    return summary


if __name__ == "__main__":
    main()
