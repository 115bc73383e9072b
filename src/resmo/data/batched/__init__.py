"""Batched view generation on tensors, on the training device (the ``batched`` pipeline).

- :mod:`.geometry`: random resized crop (torchvision's sampler, vectorised) + flip, one
  ``grid_sample`` for the whole batch;
- :mod:`.colour`: colour jitter, grayscale, solarisation with per-sample factors;
- :mod:`.blur`: Gaussian blur with a per-sample sigma;
- :mod:`.recipe`: :class:`BatchedViewRecipe`, the batched twin of a torchvision
  :class:`~resmo.data.views.ViewRecipe` (same options, same defaults);
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
from resmo.data.batched.recipe import BatchedViewRecipe, BatchedViewSpec, ViewParams

__all__ = [
    "BatchedViewRecipe", "BatchedViewSpec", "DecodedImages", "TensorImages", "ViewParams",
    "build_batched_view_recipe", "in_memory_images", "uint8_batch_loader",
]


def build_batched_view_recipe(method: str, image_size: int, **options) -> BatchedViewRecipe:
    """``build_view_recipe(method, image_size, **options)`` made batched (same options)."""
    from resmo.data.views import build_view_recipe

    return BatchedViewRecipe.from_view_recipe(build_view_recipe(method, image_size, **options))
