"""Evaluation batches from in-memory uint8 pixels equal the per-image eval_transform path."""

import torch
from torch.utils.data import DataLoader, Subset

from resmo.data.eval_batches import TensorEvalBatches, eval_loader
from resmo.data.textures import SyntheticTextures
from resmo.data.views import EvalDataset, eval_transform


def _per_image(dataset, image_size, batch_size):
    return DataLoader(EvalDataset(dataset, eval_transform(image_size)), batch_size=batch_size, shuffle=False)


def _all(loader):
    images, labels = zip(*loader, strict=True)
    return torch.cat(images), torch.cat([torch.as_tensor(label) for label in labels])


def test_in_memory_batches_are_bitwise_the_per_image_transform():
    dataset = SyntheticTextures(split="val", num_samples=70, image_size=32, seed=3)
    loader = eval_loader(dataset, 32, batch_size=32)
    assert isinstance(loader, TensorEvalBatches)
    assert len(loader) == 3 and len(loader.dataset) == 70
    images, labels = _all(loader)
    expected_images, expected_labels = _all(_per_image(dataset, 32, 32))
    assert images.dtype == torch.float32 and images.shape == (70, 3, 32, 32)
    assert torch.equal(images, expected_images)
    assert torch.equal(labels, expected_labels.long())


def test_a_subset_keeps_its_order_and_stays_on_the_fast_path():
    dataset = SyntheticTextures(split="train", num_samples=50, image_size=32, seed=1)
    subset = Subset(dataset, [7, 3, 41, 0, 19])
    loader = eval_loader(subset, 32, batch_size=2)
    assert isinstance(loader, TensorEvalBatches)
    images, labels = _all(loader)
    expected_images, expected_labels = _all(_per_image(subset, 32, 2))
    assert torch.equal(images, expected_images)
    assert labels.tolist() == [dataset.targets[i] for i in (7, 3, 41, 0, 19)] == expected_labels.tolist()


def test_another_size_or_a_dataset_of_files_takes_the_per_image_path():
    dataset = SyntheticTextures(split="val", num_samples=8, image_size=32, seed=0)
    resized = eval_loader(dataset, 24, batch_size=4)  # eval_transform resizes: not an identity
    assert isinstance(resized, DataLoader)
    assert next(iter(resized))[0].shape == (4, 3, 24, 24)

    class Files(torch.utils.data.Dataset):  # no uint8 array: like an image folder
        def __len__(self):
            return len(dataset)

        def __getitem__(self, index):
            return dataset[index]

    assert isinstance(eval_loader(Files(), 32, batch_size=4), DataLoader)
