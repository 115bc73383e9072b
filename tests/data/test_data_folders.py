"""Image folders: layouts, errors, unreadable files (also in DataLoader workers), RGB conversion."""

from __future__ import annotations

import copy
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from resmo.data import (
    DataError,
    ImageFiles,
    MultiViewDataset,
    SkippedFiles,
    TorchvisionViews,
    build_view_spec,
    find_images,
    load_image,
    load_image_folder,
    to_rgb,
)


def _write(path: Path, size: int = 12, seed: int = 0, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def _labelled(root: Path, split: str, classes=("cat", "dog"), per_class: int = 2) -> None:
    for c, name in enumerate(classes):
        for i in range(per_class):
            _write(root / split / name / f"{i}.png", seed=10 * c + i)


def _truncated_jpeg(path: Path) -> Path:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def _with_corrupt_files(root: Path) -> list[Path]:
    """Four good images in class 'a' of train/, three unreadable ones among them."""
    for i in range(4):
        _write(root / "train" / "a" / f"good{i}.png", seed=i)
    bad = [root / "train" / "a" / "bad0_empty.jpg", root / "train" / "a" / "bad1_text.png"]
    bad[0].write_bytes(b"")
    bad[1].write_text("not an image")
    bad.append(_truncated_jpeg(root / "train" / "a" / "bad2_truncated.jpg"))
    return bad


# ----------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("eval_split", ["val", "test"])
def test_labelled_layout_with_eval_split(tmp_path, eval_split):
    _labelled(tmp_path, "train", per_class=3)
    _labelled(tmp_path, eval_split, per_class=2)
    found = load_image_folder(tmp_path)
    assert found.has_labels and found.classes == ["cat", "dog"]
    assert found.layout == f"labelled (train/ + {eval_split}/)"
    assert len(found.train) == 6 and len(found.val) == 4
    assert found.train.targets.tolist() == [0, 0, 0, 1, 1, 1]
    assert found.val.targets.tolist() == [0, 0, 1, 1]
    image, label = found.val[3]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and label == 1
    assert found.notes == []


def test_val_is_preferred_over_test_and_classes_follow_train(tmp_path):
    _labelled(tmp_path, "train", classes=("a", "b", "c"))
    _labelled(tmp_path, "val", classes=("c",))
    _labelled(tmp_path, "test", classes=("a",))
    found = load_image_folder(tmp_path)
    assert found.val.targets.tolist() == [2, 2]  # class c keeps its train index
    assert any("val/ and test/" in note for note in found.notes)


def test_train_only_has_labels_but_no_val(tmp_path):
    _labelled(tmp_path, "train")
    found = load_image_folder(tmp_path)
    assert found.has_labels and found.val is None
    assert any("no val/ or test/" in note for note in found.notes)


def test_flat_folder_is_unlabelled(tmp_path):
    for i in range(3):
        _write(tmp_path / f"img{i}.JPG", seed=i)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    found = load_image_folder(tmp_path)
    assert not found.has_labels and found.val is None and found.classes == []
    assert len(found.train) == 3
    assert found.train.targets.tolist() == [-1, -1, -1]
    assert found.train[0][1] == -1
    assert found.layout == "unlabelled"


def test_nested_folder_without_splits_is_unlabelled(tmp_path):
    _write(tmp_path / "2019" / "a.png")
    _write(tmp_path / "2020" / "deep" / "b.png")
    _write(tmp_path / "c.png")
    _write(tmp_path / ".cache" / "d.png")  # hidden folder: ignored
    found = load_image_folder(tmp_path)
    assert not found.has_labels and len(found.train) == 3


def test_train_folder_with_loose_images_is_unlabelled(tmp_path):
    _write(tmp_path / "train" / "a.png")
    _write(tmp_path / "train" / "b.png")
    _labelled(tmp_path, "val")
    found = load_image_folder(tmp_path)
    assert not found.has_labels and len(found.train) == 2 and found.val is None


def test_find_images_is_sorted_and_survives_symlink_cycles(tmp_path):
    _write(tmp_path / "b" / "2.png")
    _write(tmp_path / "a" / "1.png")
    (tmp_path / "a" / "loop").symlink_to(tmp_path, target_is_directory=True)
    paths = find_images(tmp_path)
    assert [Path(p).name for p in paths] == ["1.png", "2.png"]


# ------------------------------------------------------------------------------ errors


def test_missing_folder_error_names_the_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="does not exist") as error:
        load_image_folder(missing)
    assert str(missing) in str(error.value) and "\n" not in str(error.value)
    assert isinstance(error.value, ValueError)


def test_empty_folder_error_names_path_and_extensions(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="has no images") as error:
        load_image_folder(tmp_path / "empty")
    message = str(error.value)
    assert str(tmp_path / "empty") in message and ".jpg" in message and ".png" in message
    assert "\n" not in message


def test_empty_train_classes_and_empty_val_raise(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="train' has no images"):
        load_image_folder(tmp_path)
    _labelled(tmp_path, "train")
    (tmp_path / "val" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="val' has no images"):
        load_image_folder(tmp_path)


def test_val_class_missing_from_train_raises(tmp_path):
    _labelled(tmp_path, "train", classes=("cat",))
    _labelled(tmp_path, "val", classes=("cat", "dog"))
    with pytest.raises(DataError, match="class folder 'dog'"):
        load_image_folder(tmp_path)


def test_val_with_loose_images_raises(tmp_path):
    _labelled(tmp_path, "train")
    _write(tmp_path / "val" / "x.png")
    with pytest.raises(DataError, match="holds images directly"):
        load_image_folder(tmp_path)


def test_file_instead_of_folder_raises(tmp_path):
    path = _write(tmp_path / "one.png")
    with pytest.raises(DataError, match="is a file"):
        load_image_folder(path)


# ---------------------------------------------------------------------- unreadable files


def test_corrupt_files_are_skipped_and_counted(tmp_path):
    bad = _with_corrupt_files(tmp_path)
    train = load_image_folder(tmp_path).train
    assert len(train) == 7
    assert not train.skipped_files()
    for _ in range(2):  # a second epoch does not count the same files again
        images = [train[i][0] for i in range(len(train))]
        assert all(image.mode == "RGB" and image.size == (12, 12) for image in images)
    skipped = train.skipped_files()
    assert skipped.count == 3
    assert set(skipped.examples) == {str(p) for p in bad}
    assert skipped.message().startswith("skipped 3 unreadable images (e.g. ")


def test_negative_and_out_of_range_indices(tmp_path):
    _write(tmp_path / "a.png")
    files = load_image_folder(tmp_path).train
    assert files[-1][1] == -1
    with pytest.raises(IndexError):
        files[1]


def test_all_files_unreadable_raises_data_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.jpg").write_text("nope")
    files = load_image_folder(tmp_path).train
    with pytest.raises(DataError, match="none of the 2 image files"):
        files[0]


@pytest.mark.parametrize(("context", "workers"), [(None, 2), pytest.param("spawn", 1, marks=pytest.mark.slow)])  # spawn: fresh processes
def test_skips_are_counted_across_dataloader_workers(tmp_path, context, workers):
    """Only workers read the files; the main process still sees the three skips."""
    _with_corrupt_files(tmp_path)
    train = load_image_folder(tmp_path).train
    dataset = MultiViewDataset(train, TorchvisionViews(build_view_spec("mocov3", 8)))
    loader = DataLoader(
        dataset, batch_size=4, num_workers=workers, multiprocessing_context=context, shuffle=False
    )
    batches = list(loader)
    assert sum(len(labels) for _, labels in batches) == 7
    assert batches[0][0][0].shape == (4, 3, 8, 8)
    assert train.skipped_files().count == 3


def test_pickle_and_deepcopy_keep_the_flags(tmp_path):
    _with_corrupt_files(tmp_path)
    train = load_image_folder(tmp_path).train
    for i in range(len(train)):
        train[i]
    for clone in (pickle.loads(pickle.dumps(train)), copy.deepcopy(train)):
        assert clone.skipped_files() == train.skipped_files()
        clone[0]
        assert len(clone) == 7


def test_skipped_files_add_and_message():
    total = SkippedFiles(1, ("a",)) + SkippedFiles(4, ("b", "c", "d"))
    assert total == SkippedFiles(5, ("a", "b", "c"))
    assert SkippedFiles(1, ("x.jpg",)).message() == "skipped 1 unreadable image (e.g. x.jpg)"
    assert SkippedFiles().message() == "" and not SkippedFiles()


def test_image_files_checks_its_arguments():
    with pytest.raises(DataError):
        ImageFiles([])
    with pytest.raises(ValueError, match="2 paths but 1 labels"):
        ImageFiles(["a", "b"], [0])


# ------------------------------------------------------------------------ RGB conversion


@pytest.mark.parametrize(
    ("mode", "suffix"),
    [("RGBA", "png"), ("LA", "png"), ("L", "png"), ("P", "png"), ("CMYK", "jpg"), ("1", "png"), ("I;16", "png")],
)
def test_images_are_converted_to_rgb(tmp_path, mode, suffix):
    path = _write(tmp_path / f"image.{suffix}", mode="L" if mode == "I;16" else mode)
    if mode == "I;16":  # a 16-bit grayscale PNG spanning the full range
        pixels = np.linspace(0, 65535, 144, dtype=np.uint16).reshape(12, 12)
        Image.fromarray(pixels).save(path)
    assert Image.open(path).mode.startswith(mode[0])
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (12, 12)
    if mode == "I;16":
        array = np.asarray(image)
        assert array.min() == 0 and array.max() == 255


def test_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)
    opaque = Image.new("RGBA", (4, 4), (10, 20, 30, 255))
    assert to_rgb(opaque).getpixel((0, 0)) == (10, 20, 30)
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([200, 0, 0] + [0, 0, 0] * 255)
    palette.info["transparency"] = 0
    assert to_rgb(palette).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (20, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").size == (10, 20)


def test_folder_images_feed_the_torchvision_views(tmp_path):
    _labelled(tmp_path, "train")
    train = load_image_folder(tmp_path).train
    views, label = MultiViewDataset(train, TorchvisionViews(build_view_spec("mocov3", 8)))[0]
    assert len(views) == 2 and views[0].shape == (3, 8, 8) and views[0].dtype == torch.float32
    assert label == 0
