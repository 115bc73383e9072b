"""Batched view generation on tensors, on the training device (the ``batched`` pipeline).

- :mod:`.geometry`: random resized crop (torchvision's sampler, vectorised) + flip, one
  ``grid_sample`` for the whole batch;
- :mod:`.colour`: colour jitter, grayscale, solarisation with per-sample factors;
- :mod:`.blur`: Gaussian blur with a per-sample sigma;
- :mod:`.recipe`: :class:`BatchedViewRecipe`, built from the same declarative
  :class:`~resmo.data.view_spec.ViewSpecs` as the torchvision pipeline;
- :mod:`.loader`: uint8 batches for it: in-memory datasets (synthetic, CIFAR, STL-10) as
  one uint8 tensor, image folders decoded and resized by DataLoader workers.

The torchvision per-image pipeline (:mod:`resmo.data.views`) stays the reference; the
setting ``data.pipeline: batched`` picks this one for pretraining.
"""

from resmo.data.batched.loader import (
    DecodedImages,
    TensorImages,
    in_memory_images,
    uint8_batch_loader,
)
from resmo.data.batched.recipe import BatchedViewRecipe, ViewParams
from resmo.data.view_spec import build_view_spec

__all__ = [
    "BatchedViewRecipe", "DecodedImages", "TensorImages", "ViewParams",
    "build_batched_view_recipe", "in_memory_images", "uint8_batch_loader",
]


def build_batched_view_recipe(method: str, image_size: int, **options) -> BatchedViewRecipe:
    """The batched pipeline of ``build_view_spec(method, image_size, **options)``."""
    return BatchedViewRecipe(build_view_spec(method, image_size, **options))
