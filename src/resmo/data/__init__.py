"""Data: datasets (built-in synthetic, torchvision sets, image folders) and their views.

A method's views are described once, as a :class:`ViewSpecs` (crops, sizes, augmentation
options: :func:`build_view_spec`); both pipelines are built from it:
:class:`TorchvisionViews` (per image, in DataLoader workers) and
:class:`~resmo.data.batched.BatchedViews` (whole uint8 batches on the training device).
Typical use by a trainer::

    from resmo.data import EvalDataset, MultiViewDataset, TorchvisionViews, build_datasets, build_view_spec, eval_transform

    splits = build_datasets("cifar10")                # or None, "stl10", "/path/to/images"
    spec = build_view_spec("mocov3", splits.image_size)
    train = MultiViewDataset(splits.train, TorchvisionViews(spec))  # (list of views, label)
    if splits.val is not None:
        memory = EvalDataset(splits.eval_train, eval_transform(splits.image_size))
        val = EvalDataset(splits.val, eval_transform(splits.image_size))
    ...
    if skipped := splits.skipped_files():
        warn(skipped.message())                        # "skipped N unreadable images (e.g. PATH)"

``SyntheticTextures`` is imported lazily (it lives in :mod:`resmo.data.textures`).
"""

from resmo.data.build import DATASET_NAMES, DataSplits, build_datasets, image_size_for
from resmo.data.errors import DataError
from resmo.data.folders import ImageFolderSplits, find_images, load_image_folder
from resmo.data.images import IMAGE_EXTENSIONS, ImageFiles, SkippedFiles, load_image, to_rgb
from resmo.data.torchvision_sets import (
    TorchvisionSplits,
    cifar10,
    cifar100,
    default_cache_dir,
    stl10,
)
from resmo.data.train_loader import build_train_loader
from resmo.data.view_spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ViewSpec,
    ViewSpecs,
    build_view_spec,
    multi_crop_spec,
    two_view_spec,
)
from resmo.data.views import EvalDataset, MultiViewDataset, TorchvisionViews, eval_transform

__all__ = [
    "DATASET_NAMES", "IMAGENET_MEAN", "IMAGENET_STD", "IMAGE_EXTENSIONS", "DataError", "DataSplits",
    "EvalDataset", "ImageFiles", "ImageFolderSplits", "MultiViewDataset", "SkippedFiles",
    "SyntheticTextures", "TorchvisionSplits", "TorchvisionViews", "ViewSpec", "ViewSpecs", "build_datasets", "image_size_for",
    "build_train_loader", "build_view_spec", "cifar10", "cifar100", "default_cache_dir", "eval_transform", "find_images",
    "load_image", "load_image_folder", "multi_crop_spec", "stl10", "to_rgb", "two_view_spec",
]


def __getattr__(name: str):
    if name == "SyntheticTextures":
        from resmo.data.textures import SyntheticTextures

        return SyntheticTextures
    raise AttributeError(f"module 'resmo.data' has no attribute {name!r}")
