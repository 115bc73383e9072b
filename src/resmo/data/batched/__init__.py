"""Batched view generation on tensors, on the training device (the ``batched`` pipeline).

- :mod:`.geometry`: random resized crop (torchvision's sampler, vectorised) + flip, one
  ``grid_sample`` for the whole batch;
- :mod:`.colour`: colour jitter, grayscale, solarisation with per-sample factors;
- :mod:`.blur`: Gaussian blur with a per-sample sigma;
- :mod:`.views`: :class:`BatchedViews`, built from the same declarative
  :class:`~resmo.data.view_spec.ViewSpecs` as the torchvision pipeline, and
  :class:`DeviceViews`, which makes them from the seeded uint8 batches of the train loader;
- :mod:`.loader`: uint8 images for it: in-memory datasets (synthetic, CIFAR, STL-10) as
  one uint8 tensor, image folders decoded and resized by DataLoader workers.

The torchvision per-image pipeline (:class:`resmo.data.views.TorchvisionViews`) stays the
reference; the setting ``data.pipeline: batched`` picks this one for pretraining.
"""

from resmo.data.batched.loader import DecodedImages, TensorImages, in_memory_images
from resmo.data.batched.views import BatchedViews, DeviceViews, ViewParams

__all__ = ["BatchedViews", "DecodedImages", "DeviceViews", "TensorImages", "ViewParams", "in_memory_images"]
