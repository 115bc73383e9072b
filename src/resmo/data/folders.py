"""Image folders given by path, labelled or not.

Layouts, checked in this order:

1. **labelled**: ``ROOT/train/<class>/**/*.jpg`` and, for evaluation, ``ROOT/val/<class>/``
   or else ``ROOT/test/<class>/`` (the class folder names must appear under ``train/``;
   labels follow the sorted class names of ``train/``, as ``torchvision.datasets.ImageFolder``);
2. **unlabelled**: ``ROOT/train/`` holding images directly, or no ``train/`` at all: every
   image under ``ROOT/train`` (or ``ROOT``), at any depth, with label ``-1``. Pretraining
   works; kNN / linear evaluation does not.

Hidden files and folders (``.name``, ``__MACOSX``) are ignored; extensions are matched
case-insensitively against :data:`IMAGE_EXTENSIONS`. Missing or empty folders raise
:class:`DataError` naming the path; unreadable files inside a good folder are skipped at
load time (see :mod:`resmo.data.images`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from resmo.data.errors import DataError
from resmo.data.images import IMAGE_EXTENSIONS, ImageFiles

EVAL_SPLITS = ("val", "test")
KNOWN_NAMES_HINT = "pass cifar10, cifar100, stl10, synthetic or a folder path"


@dataclass
class ImageFolderSplits:
    """What :func:`load_image_folder` found: datasets, classes and a layout description."""

    root: Path
    train: ImageFiles
    val: ImageFiles | None
    classes: list[str]
    has_labels: bool
    layout: str
    notes: list[str] = field(default_factory=list)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _is_image(name: str) -> bool:
    return not _hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS)


def find_images(folder: str | os.PathLike) -> list[str]:
    """All image paths under ``folder`` at any depth, in a deterministic (sorted) order.

    Symbolic links to folders are followed once (cycles are cut).
    """
    found: list[str] = []
    seen: set[str] = set()
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(directory)
        if real in seen:
            subdirs[:] = []
            continue
        seen.add(real)
        subdirs[:] = sorted(d for d in subdirs if not _hidden(d))
        found += [os.path.join(directory, name) for name in sorted(files) if _is_image(name)]
    return found


def _entries(folder: Path) -> tuple[list[str], list[str]]:
    """(image files directly in ``folder``, visible subfolder names), both sorted."""
    images, subdirs = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir() and not _hidden(entry.name):
                subdirs.append(entry.name)
            elif entry.is_file() and _is_image(entry.name):
                images.append(entry.name)
    return sorted(images), sorted(subdirs)


def _no_images(folder: Path) -> DataError:
    return DataError(
        f"folder '{folder}' has no images (looked for {' '.join(IMAGE_EXTENSIONS)} files, "
        "also in subfolders); add images or pass another folder"
    )


def _class_images(folder: Path, class_names: list[str]) -> dict[str, list[str]]:
    """Images per class folder, leaving out class folders without images."""
    per_class = {name: find_images(folder / name) for name in class_names}
    return {name: paths for name, paths in per_class.items() if paths}


def _labelled_files(folder: Path, per_class: dict[str, list[str]], classes: list[str]) -> ImageFiles:
    index = {name: i for i, name in enumerate(classes)}
    paths = [p for name in per_class for p in per_class[name]]
    labels = [index[name] for name in per_class for _ in per_class[name]]
    return ImageFiles(paths, labels, classes=classes, root=folder)


def _unlabelled(root: Path, folder: Path, why: str) -> ImageFolderSplits:
    paths = find_images(folder)
    if not paths:
        raise _no_images(folder)
    note = f"{why}: {len(paths)} images without labels (label -1); kNN and linear evaluation are off"
    return ImageFolderSplits(
        root, ImageFiles(paths, None, root=folder), None, [], False, "unlabelled", [note]
    )


def load_image_folder(root: str | os.PathLike) -> ImageFolderSplits:
    """Scan ``root`` (see the module docstring for the layouts) and build its datasets."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data folder '{root}' does not exist; {KNOWN_NAMES_HINT}")
    if not root.is_dir():
        raise DataError(f"data path '{root}' is a file, not a folder; {KNOWN_NAMES_HINT}")
    train_dir = root / "train"
    if not train_dir.is_dir():
        return _unlabelled(root, root, f"'{root}' has no train/ folder")
    loose, subdirs = _entries(train_dir)
    if loose or not subdirs:
        return _unlabelled(root, train_dir, f"'{train_dir}' holds images directly, not in class folders")

    train_classes = _class_images(train_dir, subdirs)
    if not train_classes:
        raise _no_images(train_dir)
    classes = list(train_classes)
    train = _labelled_files(train_dir, train_classes, classes)
    notes: list[str] = []
    present = [name for name in EVAL_SPLITS if (root / name).is_dir()]
    if not present:
        notes.append(f"'{root}' has no val/ or test/ class folders: kNN and linear evaluation are off")
        return ImageFolderSplits(root, train, None, classes, True, "labelled (train/ only)", notes)
    if len(present) > 1:
        notes.append(f"'{root}' has both val/ and test/: evaluating on val/, test/ is not used")
    val_dir = root / present[0]
    val_loose, val_subdirs = _entries(val_dir)
    if val_loose:
        raise DataError(
            f"folder '{val_dir}' holds images directly; put them in class folders named as in "
            f"'{train_dir}' (e.g. '{val_dir / classes[0]}')"
        )
    val_classes = _class_images(val_dir, val_subdirs)
    unknown = [name for name in val_classes if name not in train_classes]
    if unknown:
        raise DataError(
            f"folder '{val_dir}' has class folder '{unknown[0]}' that '{train_dir}' lacks; "
            "use the same class folder names in both"
        )
    if not val_classes:
        raise _no_images(val_dir)
    val = _labelled_files(val_dir, val_classes, classes)
    layout = f"labelled (train/ + {present[0]}/)"
    return ImageFolderSplits(root, train, val, classes, True, layout, notes)
