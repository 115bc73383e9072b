"""SyntheticTextures: deterministic, balanced, well formed, and colour carries no label."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from resmo.data.textures import CLASSES, SyntheticTextures, generate_textures


def test_same_seed_same_bytes_and_different_seed_differs():
    a, labels_a = generate_textures(200, 32, seed=3)
    b, labels_b = generate_textures(200, 32, seed=3)
    c, _ = generate_textures(200, 32, seed=4)
    assert np.array_equal(a, b) and np.array_equal(labels_a, labels_b)
    assert not np.array_equal(a, c)


def test_splits_differ_and_items_are_pil_with_labels():
    train = SyntheticTextures("train", num_samples=50, seed=0)
    val = SyntheticTextures("val", num_samples=50, seed=0)
    assert not np.array_equal(train.images, val.images)
    image, label = train[0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (32, 32)
    assert label == train.targets[0] and 0 <= label < len(CLASSES)
    assert train.images.dtype == np.uint8 and train.images.shape == (50, 32, 32, 3)


def test_classes_balanced_and_image_size():
    data = SyntheticTextures("train", num_samples=105, image_size=24)
    counts = np.bincount(data.targets, minlength=len(CLASSES))
    assert counts.max() - counts.min() <= 1 and counts.sum() == 105
    assert data.images.shape[1:] == (24, 24, 3)


def test_mean_colour_does_not_predict_the_class():
    """Class means of the average image colour are close: colour is nuisance, not label."""
    data = SyntheticTextures("train", num_samples=2000)
    colours = data.images.reshape(len(data), -1, 3).mean(axis=1)
    labels = np.array(data.targets)
    class_means = np.stack([colours[labels == c].mean(axis=0) for c in range(len(CLASSES))])
    assert np.abs(class_means - colours.mean(axis=0)).max() < 12  # of 255


def test_patterns_differ_between_classes():
    """Horizontal and vertical stripes vary along different axes."""
    images, labels = generate_textures(40, 32, seed=0)
    gray = images.mean(axis=3)
    horizontal = gray[labels == CLASSES.index("horizontal_stripes")]
    vertical = gray[labels == CLASSES.index("vertical_stripes")]
    # variance across rows (along y) vs across columns (along x)
    assert horizontal.mean(axis=2).var(axis=1).mean() > 5 * horizontal.mean(axis=1).var(axis=1).mean()
    assert vertical.mean(axis=1).var(axis=1).mean() > 5 * vertical.mean(axis=2).var(axis=1).mean()


@pytest.mark.parametrize("bad", [{"split": "holdout"}, {"num_samples": 0}, {"image_size": -1}])
def test_invalid_arguments(bad):
    with pytest.raises(ValueError):
        SyntheticTextures(**bad)
