"""SyntheticShapes: the built-in offline dataset is deterministic, balanced and well formed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from resmo.data.synthetic import DEFAULT_NUM_SAMPLES, SHAPES, SyntheticShapes, generate_shapes


def test_same_seed_gives_identical_bytes():
    a = SyntheticShapes("train", num_samples=300, seed=3)
    b = SyntheticShapes("train", num_samples=300, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.targets, b.targets)


def test_different_seeds_give_different_images():
    a = SyntheticShapes("train", num_samples=200, seed=0)
    b = SyntheticShapes("train", num_samples=200, seed=1)
    assert not np.array_equal(a.images, b.images)
    assert (a.images != b.images).reshape(200, -1).any(axis=1).all()


def test_train_and_val_share_no_image():
    train = SyntheticShapes("train", num_samples=400, seed=0)
    val = SyntheticShapes("val", num_samples=400, seed=0)
    test = SyntheticShapes("test", num_samples=400, seed=0)
    seen = {image.tobytes() for image in train.images}
    assert not any(image.tobytes() in seen for image in val.images)
    assert not any(image.tobytes() in seen for image in test.images)
    assert not np.array_equal(val.images, test.images)


@pytest.mark.parametrize("image_size", [16, 32])
def test_shapes_and_dtypes(image_size):
    data = SyntheticShapes("val", num_samples=57, image_size=image_size, seed=0)
    assert data.images.shape == (57, image_size, image_size, 3)
    assert data.images.dtype == np.uint8
    assert data.targets.shape == (57,)
    assert data.targets.dtype == np.int64
    assert len(data) == 57
    image, label = data[5]
    assert isinstance(image, Image.Image) and image.mode == "RGB"
    assert image.size == (image_size, image_size)
    assert isinstance(label, int) and label == data.targets[5]
    np.testing.assert_array_equal(np.asarray(image), data.images[5])


def test_classes_are_balanced_and_labels_in_range():
    data = SyntheticShapes("train", num_samples=1003, seed=0)
    assert data.classes == list(SHAPES) and len(set(data.classes)) == len(data.classes)
    assert data.targets.min() >= 0 and data.targets.max() < len(data.classes)
    counts = np.bincount(data.targets, minlength=len(data.classes))
    assert counts.max() - counts.min() <= 1
    assert counts.sum() == 1003


def test_labels_are_shuffled_not_sorted():
    targets = SyntheticShapes("train", num_samples=200, seed=0).targets
    assert not np.array_equal(targets, np.sort(targets))
    assert not np.array_equal(targets, np.arange(200) % len(SHAPES))


def test_nuisances_vary_across_images():
    images = SyntheticShapes("train", num_samples=200, seed=0).images
    per_image_std = images.reshape(200, -1).std(axis=1)
    assert (per_image_std > 10).all()  # every image shows a contrasting shape
    mean_colour = images.reshape(200, -1, 3).mean(axis=1)
    assert mean_colour.std(axis=0).min() > 10  # colour / brightness vary per image
    corner = images[:, 0, 0, :].astype(int).sum(axis=1)
    assert (corner < 300).mean() > 0.2 and (corner > 300).mean() > 0.2  # both polarities


def test_every_class_draws_a_visible_shape():
    # with flat colours and no noise the shape is the only non-background pixels
    flat = {"colour_jitter": (0.0, 0.0, 0.0, 0.0), "max_noise": 0.0}
    images, labels = generate_shapes(500, image_size=32, seed=0, **flat)
    for index, name in enumerate(SHAPES):
        members = images[labels == index].astype(int)
        background = np.median(members.reshape(len(members), -1, 3), axis=1)[:, None, None, :]
        changed = (np.abs(members - background) > 40).any(axis=-1).mean(axis=(1, 2))
        assert (changed > 0.05).all() and (changed < 0.6).all(), name


def test_rendering_does_not_depend_on_the_chunk_size(monkeypatch):
    reference = generate_shapes(70, image_size=16, seed=4)
    monkeypatch.setattr("resmo.data.synthetic._CHUNK", 16)
    chunked = generate_shapes(70, image_size=16, seed=4)
    np.testing.assert_array_equal(reference[0], chunked[0])
    np.testing.assert_array_equal(reference[1], chunked[1])


def test_transform_is_applied():
    data = SyntheticShapes("test", num_samples=10, seed=0, transform=lambda image: image.size)
    assert data[0] == ((32, 32), int(data.targets[0]))


def test_default_sizes_and_bad_arguments():
    assert DEFAULT_NUM_SAMPLES["train"] > DEFAULT_NUM_SAMPLES["val"] > 0
    with pytest.raises(ValueError, match="valid splits"):
        SyntheticShapes("training", num_samples=10)
    with pytest.raises(ValueError):
        generate_shapes(0)
