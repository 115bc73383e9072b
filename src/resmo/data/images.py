"""Reading image files for long runs: RGB conversion and skipping of unreadable files.

:class:`ImageFiles` is a dataset of image paths with integer labels (``-1`` = unlabelled).
A file that cannot be decoded (zero bytes, truncated, not an image despite its extension,
deleted or replaced while the run goes on) never stops training: it is flagged, and the
next readable sample in the list is returned in its place. With ``on_bad_image="error"``
(recipe key ``data.on_bad_image``) the first such file raises :class:`DataError` instead.
The flags live in shared memory (``multiprocessing.RawArray``, one byte per file), so
DataLoader workers (fork or spawn) report to the main process, and
:meth:`ImageFiles.skipped_files` gives the count of distinct unreadable files and a few
example paths for a warning such as ``skipped 3 unreadable images (e.g. /data/x.jpg)``.

Paths are stored as one byte buffer plus offsets (numpy), not a list of Python strings,
so forked workers do not copy the list page by page through reference counting.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.context import get_spawning_popen
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from resmo.data.errors import DataError

BAD_IMAGE_POLICIES = ("skip", "error")
"""Values of ``on_bad_image``: skip unreadable files (counted) or stop with an error."""
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp")
"""File name endings (case-insensitive) read as images."""
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class SkippedFiles:
    """How many distinct files were unreadable so far, with a few example paths."""

    count: int = 0
    examples: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.count > 0

    def __add__(self, other: SkippedFiles) -> SkippedFiles:
        examples = (self.examples + other.examples)[:MAX_EXAMPLES]
        return SkippedFiles(self.count + other.count, examples)

    def message(self) -> str:
        """``"skipped N unreadable images (e.g. PATH)"``, or ``""`` when nothing was skipped."""
        if not self.count:
            return ""
        noun = "image" if self.count == 1 else "images"
        return f"skipped {self.count} unreadable {noun} (e.g. {self.examples[0]})"


def to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` as 8-bit RGB.

    Transparent images (RGBA, LA, palette with transparency) are composited on white;
    16-bit and 32-bit grayscale is scaled to 8 bits; float images are min-max scaled;
    CMYK, grayscale, palette and the rest go through ``Image.convert("RGB")``.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        array = np.asarray(image, dtype=np.float64)
        if mode == "F":
            low, high = float(array.min()), float(array.max())
            array = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
        elif array.max() > 255:  # 16-bit range
            array = array / 257.0
        gray = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
        return gray.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` fully, apply its EXIF orientation and convert to RGB.

    Raises whatever Pillow raises for an unreadable file (``OSError`` and others).
    """
    with open(path, "rb") as file:
        image = Image.open(file)
        image.load()  # decode now: truncated files fail here, not later in a transform
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the pixels
        pass
    return to_rgb(image)


def _unreadable_message(path: str, error: BaseException) -> str:
    reason = " ".join(str(error).split())[:120] or type(error).__name__
    return (
        f"unreadable image '{path}' ({type(error).__name__}: {reason}); remove or replace it, "
        "or set data.on_bad_image=skip to skip and count such files"
    )


def _shared_flags(size: int, initial: bytes | None = None) -> ctypes.Array:
    flags = multiprocessing.RawArray(ctypes.c_uint8, max(size, 1))
    if initial:
        ctypes.memmove(flags, initial, len(initial))
    return flags


class ImageFiles(Dataset):
    """Images by path with integer labels; ``dataset[i]`` is ``(PIL RGB image, label)``.

    ``labels`` may be ``None`` (all ``-1``: unlabelled). ``classes`` names the labels.
    Unreadable files are replaced by the next readable one (see the module docstring);
    if none can be read, :class:`DataError` is raised. ``on_bad_image="error"`` raises
    :class:`DataError` naming the first unreadable file instead of skipping it.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        labels: Sequence[int] | None = None,
        *,
        classes: Sequence[str] = (),
        root: str | os.PathLike | None = None,
        on_bad_image: str = "skip",
    ) -> None:
        if on_bad_image not in BAD_IMAGE_POLICIES:
            raise ValueError(
                f"on_bad_image={on_bad_image!r} is not valid; allowed values: {', '.join(BAD_IMAGE_POLICIES)}"
            )
        if not paths:
            raise DataError("ImageFiles needs at least one image path")
        if labels is not None and len(labels) != len(paths):
            raise ValueError(f"got {len(paths)} paths but {len(labels)} labels")
        encoded = [os.fsencode(p) for p in paths]
        self._offsets = np.cumsum([0] + [len(p) for p in encoded], dtype=np.int64)
        self._path_bytes = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self.targets = (
            np.full(len(paths), -1, dtype=np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
        )
        self.classes = list(classes)
        self.root = None if root is None else Path(root)
        self._unreadable = _shared_flags(len(paths))
        self.on_bad_image = on_bad_image

    @property
    def has_labels(self) -> bool:
        return bool(len(self.targets)) and bool((self.targets >= 0).all())

    def __len__(self) -> int:
        return len(self.targets)

    def path(self, index: int) -> str:
        start, end = self._offsets[index], self._offsets[index + 1]
        return os.fsdecode(self._path_bytes[start:end].tobytes())

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        count, index = len(self), int(index)
        if not -count <= index < count:
            raise IndexError(f"index {index} is out of range for {count} images")
        index %= count
        for offset in range(count):
            current = (index + offset) % count
            if self._unreadable[current]:
                continue
            try:
                image = load_image(self.path(current))
            except Exception as error:  # any decoding failure: flag the file, serve the next one
                self._unreadable[current] = 1
                if self.on_bad_image == "error":
                    raise DataError(_unreadable_message(self.path(current), error)) from None
                continue
            return image, int(self.targets[current])
        where = f" under '{self.root}'" if self.root is not None else ""
        raise DataError(f"none of the {count} image files{where} could be read; check that they are valid images")

    def skipped_files(self) -> SkippedFiles:
        """Distinct unreadable files seen so far, by this process and its DataLoader workers."""
        flags = np.frombuffer(self._unreadable, dtype=np.uint8)[: len(self)]
        bad = np.flatnonzero(flags)
        return SkippedFiles(len(bad), tuple(self.path(i) for i in bad[:MAX_EXAMPLES]))

    def mark_unreadable(self, paths: Sequence[str]) -> int:
        """Flag the files among ``paths`` as unreadable (e.g. known from a checkpoint);
        returns how many of them this dataset holds."""
        wanted = set(paths)
        if not wanted:
            return 0
        marked = 0
        for index in range(len(self)):
            if self.path(index) in wanted:
                self._unreadable[index] = 1
                marked += 1
        return marked

    def unreadable_paths(self) -> list[str]:
        """Every file flagged as unreadable so far."""
        flags = np.frombuffer(self._unreadable, dtype=np.uint8)[: len(self)]
        return [self.path(i) for i in np.flatnonzero(flags)]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if get_spawning_popen() is None:  # a plain pickle / deepcopy: copy the flags
            state["_unreadable"] = bytes(self._unreadable)
        return state  # when starting a worker process the shared array itself travels

    def __setstate__(self, state: dict) -> None:
        if isinstance(state["_unreadable"], bytes):
            state["_unreadable"] = _shared_flags(len(state["targets"]), state["_unreadable"])
        self.__dict__.update(state)
