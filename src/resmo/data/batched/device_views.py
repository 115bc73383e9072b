"""Views made on the training device (``data.pipeline: batched``; ``auto``, the default,
picks it on CUDA and for the synthetic dataset).

The train loader (:mod:`resmo.data.batched.train_loader`) yields uint8 batches and
:class:`DeviceViews` makes the views on the device, right after the loop moved the batch
there (resmo.train.loop). The random draws of a batch come from a generator seeded with
``sample_seed(seed, epoch, first index)``: the views are a pure function of the seed and
the batch, not of the global RNG, as in the torchvision path.
"""

from __future__ import annotations

import torch

from resmo.data.batched.recipe import BatchedViewRecipe


def chosen_pipeline(pipeline: str, data_name: str, device_type: str) -> str:
    """``data.pipeline`` with ``auto`` decided for a run training on ``device_type``
    (``torch.device.type``): ``batched`` on CUDA (per-image torchvision views in 8 workers
    make ~5-6k images/s, which leaves an H100 waiting; the GPU makes a batch's views in one
    go) and for the in-memory ``synthetic`` dataset (nothing to decode: DataLoader workers
    would only take cores from training), ``torchvision`` otherwise."""
    if pipeline != "auto":
        return pipeline
    return "batched" if device_type == "cuda" or data_name == "synthetic" else "torchvision"


class DeviceViews:
    """``(uint8 images, labels, seed)`` on the device -> ``(views, labels)``, made there.

    With ``channels_last`` the views are written in channels-last memory by the recipe's
    last op, the memory format the backbones use (no copy afterwards).
    """

    def __init__(self, recipe: BatchedViewRecipe, *, channels_last: bool = False) -> None:
        self.recipe = recipe
        self.channels_last = channels_last

    def __call__(self, batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        images, labels, seed = batch
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        generator = torch.Generator(device=images.device).manual_seed(int(seed))
        host = generator if images.device.type == "cpu" else torch.Generator().manual_seed(int(seed))
        with torch.autocast(images.device.type, enabled=False):  # views in float32
            views = self.recipe(images, generator=generator, host_generator=host,
                                memory_format=memory_format)
        return views, labels
