"""The batched pipeline's data side and its place in training (resmo.data.batched.loader,
resmo.data.train_loader, resmo.data.batched.views.DeviceViews): uint8 loaders, seeded
device views, backbone settings, a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from resmo import create_backbone, create_method
from resmo.builder import apply_backbone_settings
from resmo.config import load_config
from resmo.data import build_view_spec, two_view_spec
from resmo.data.batched import (
    BatchedViews,
    DecodedImages,
    DeviceViews,
    TensorImages,
    in_memory_images,
)
from resmo.data.batched.loader import decode_to_size
from resmo.data.images import ImageFiles
from resmo.data.sampling import sample_seed
from resmo.data.textures import SyntheticTextures
from resmo.data.train_loader import (
    SeededUint8Samples,
    build_train_loader,
    collate_uint8,
    is_uint8_batch,
)
from resmo.train.pretrain import execute_run, prepare_run
from resmo.train.stopping import RunStopped
from tests.pretrain_helpers import ON_CPU, SignalAt, tiny_overrides


class CifarLike:
    """torchvision CIFAR's layout: ``data`` uint8 [N, H, W, 3], ``targets`` list."""

    def __init__(self, count: int = 10, transform=None) -> None:
        self.data = np.random.default_rng(0).integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
        self.targets = list(range(count))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index):
        return Image.fromarray(self.data[index]), self.targets[index]


class StlLike:
    """torchvision STL-10's layout: ``data`` uint8 [N, 3, H, W], ``labels`` array."""

    def __init__(self) -> None:
        self.data = np.random.default_rng(1).integers(0, 256, (6, 3, 12, 12), dtype=np.uint8)
        self.labels = np.array([-1, 0, 1, -1, 2, 3])
        self.transform = None


def test_in_memory_datasets_become_uint8_tensors():
    textures = SyntheticTextures("val", num_samples=20, image_size=16)
    images = in_memory_images(textures)
    assert isinstance(images, TensorImages) and images.images.shape == (20, 3, 16, 16)
    assert torch.equal(images.images[3], torch.from_numpy(textures.images[3]).permute(2, 0, 1))
    assert images.labels.tolist() == textures.targets
    cifar = in_memory_images(CifarLike())
    assert cifar.images.shape == (10, 3, 8, 8) and cifar.labels.dtype == torch.int64
    stl = in_memory_images(StlLike())
    assert stl.images.shape == (6, 3, 12, 12) and stl.labels.tolist() == [-1, 0, 1, -1, 2, 3]
    assert in_memory_images(CifarLike(transform=lambda x: x)) is None  # its own transform: not raw
    assert in_memory_images(object()) is None


def batched_train_loader(dataset, image_size: int, **options):
    return build_train_loader(dataset, two_view_spec(image_size), pipeline="batched", **options)


def test_batched_train_loader_gathers_whole_batches():
    loader = batched_train_loader(CifarLike(10), 8, batch_size=4, seed=0, workers=0)
    batches = list(loader)
    assert len(batches) == 2  # drop_last
    images, labels, seed = batches[1]
    order = loader.sampler.order(0)[4:8]
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 8, 8)
    assert labels.tolist() == order and seed == sample_seed(0, 0, order[0])
    expected = torch.from_numpy(CifarLike().data[order]).permute(0, 3, 1, 2)
    assert torch.equal(images, expected)


def test_decoding_resizes_the_short_side_and_centre_crops():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    decoded = decode_to_size(image, 12)
    assert decoded.dtype == torch.uint8 and decoded.shape == (3, 12, 12)
    expected = image.resize((20, 12), Image.BICUBIC, reducing_gap=3.0).crop((4, 0, 16, 12))
    assert torch.equal(decoded, torch.from_numpy(np.asarray(expected).copy()).permute(2, 0, 1))
    assert decode_to_size(Image.new("L", (12, 12), 7), 12).shape == (3, 12, 12)  # made RGB


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for index in range(6):
        size = (20 + index, 16)
        path = tmp_path / f"{index}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return ImageFiles(paths, [i % 2 for i in range(6)], classes=["a", "b"])


def test_seeded_samples_gather_equals_one_by_one(image_folder):
    keys = [(2, 5), (2, 1), (2, 7)]
    gathered = SeededUint8Samples(in_memory_images(CifarLike()), seed=4)
    images, labels, seed = collate_uint8(gathered.__getitems__(keys))
    one_by_one = collate_uint8([gathered[key] for key in keys])
    assert torch.equal(images, one_by_one[0]) and torch.equal(labels, one_by_one[1])
    assert seed == one_by_one[2] == sample_seed(4, 2, 5)
    decoded = SeededUint8Samples(DecodedImages(image_folder, 16), seed=4)
    images, labels, seed = collate_uint8(decoded.__getitems__([(0, 3), (0, 0)]))
    assert images.shape == (2, 3, 16, 16) and labels.tolist() == [1, 0] and seed == sample_seed(4, 0, 3)


def test_batched_train_loader_for_memory_and_folders(image_folder):
    loader = batched_train_loader(SyntheticTextures("val", num_samples=24, image_size=16), 16,
                                  batch_size=8, seed=1, workers=2)
    assert loader.num_workers == 0  # in memory: one gather per batch in the main process
    first = list(loader)
    again = list(batched_train_loader(SyntheticTextures("val", num_samples=24, image_size=16), 16,
                                      batch_size=8, seed=1, workers=0))
    assert len(first) == 3 and all(is_uint8_batch(batch) for batch in first)
    for a, b in zip(first, again, strict=True):  # a pure function of the seed
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert len({batch[2] for batch in first}) == 3  # each batch its own seed
    folder = list(batched_train_loader(image_folder, 12, batch_size=3, seed=0, workers=0))
    assert [tuple(batch[0].shape) for batch in folder] == [(3, 3, 12, 12)] * 2


def test_device_views_are_a_function_of_the_batch_seed():
    make = DeviceViews(BatchedViews(build_view_spec("mocov3", 16)))
    images, labels = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8), torch.arange(4)
    a, labels_out = make((images, labels, 11))
    b, _ = make((images, labels, 11))
    c, _ = make((images, labels, 12))
    assert labels_out is labels and len(a) == 2 and a[0].shape == (4, 3, 16, 16)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_device_views_are_made_channels_last_with_the_same_values():
    views = BatchedViews(build_view_spec("mocov3", 16))
    images, labels = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8), torch.arange(4)
    plain, _ = DeviceViews(views)((images, labels, 5))
    last, _ = DeviceViews(views, channels_last=True)((images, labels, 5))
    assert all(view.is_contiguous() for view in plain)
    assert all(view.is_contiguous(memory_format=torch.channels_last) for view in last)
    assert all(torch.equal(a, b) for a, b in zip(plain, last, strict=True))


def test_backbone_settings_apply_to_student_and_teacher():
    method = create_method("mocov3", create_backbone("resnet_small", width=8),
                           hidden_dim=16, out_dim=8, predictor_hidden_dim=16)
    apply_backbone_settings(method, channels_last=True, compile=True)
    for backbone in (method.student.backbone, method.teacher.module.backbone):
        weights = [p for p in backbone.parameters() if p.ndim == 4]
        assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
        assert backbone._compiled_call_impl is not None  # compiled lazily, on first call
    names = set(dict(method.state_dict()))
    assert not any("_orig_mod" in name for name in names)  # checkpoints keep their keys
    # the EMA update still pairs teacher and student parameters one to one
    method.teacher.update(method.student, momentum=0.5)


def test_pretrain_with_the_batched_pipeline(tmp_path):
    out = tmp_path / "run"
    overrides = tiny_overrides(out, epochs=1) + ["data.pipeline=batched", "train.channels_last=true"]
    prepared = prepare_run(load_config(None, overrides))
    assert prepared.loop.device_views is not None and prepared.loop.loader.num_workers == 0
    seen, labelled = [], []  # what the method's forward receives; the labels of each batch
    forward, make_views = prepared.method.forward, prepared.loop.device_views

    def recording_forward(views, step):
        seen.append((len(views), views[0].dtype, views[0].shape,
                     views[0].is_contiguous(memory_format=torch.channels_last)))
        return forward(views, step=step)

    def recording_views(batch):
        views, labels = make_views(batch)
        labelled.append(labels.shape)
        return views, labels

    prepared.method.forward, prepared.loop.device_views = recording_forward, recording_views
    summary = execute_run(prepared)
    assert seen and all(item == (2, torch.float32, (32, 3, 32, 32), True) for item in seen)
    assert len(labelled) == len(seen) and all(shape == (32,) for shape in labelled)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["images_per_second"] > 0 and np.isfinite(saved["final_loss"])
    assert prepared.loop.throughput.images == 192  # the epoch's images, not the channels of one
    assert 0.0 <= summary["knn_top1_student"] <= 100.0


def test_pipeline_setting_is_checked(tmp_path):
    with pytest.raises(ValueError, match="data.pipeline"):
        prepare_run(load_config(None, tiny_overrides(tmp_path / "run") + ["data.pipeline=dali"]))


def test_batched_run_resumed_mid_epoch_matches_the_uninterrupted_run(tmp_path):
    """The batched views are a function of (seed, epoch, batch), so a run stopped mid-epoch
    and resumed gives the same weights, bit for bit, as a run never stopped."""

    def train(out, *, resume=None, callbacks=()):
        overrides = tiny_overrides(out, method="byol") + ["data.pipeline=batched", *ON_CPU]
        run = prepare_run(load_config(None, overrides), resume=resume)
        run.loop.hooks.extend(callbacks)
        return run, execute_run(run)

    straight, _ = train(tmp_path / "straight")
    with pytest.raises(RunStopped):
        train(tmp_path / "stopped", resume="auto", callbacks=[SignalAt(8)])  # epoch 2 of 2, mid-way
    resumed, _ = train(tmp_path / "stopped", resume="auto")
    assert resumed.loop.step == straight.loop.step
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
