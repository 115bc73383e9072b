"""Process-wide math settings of a training run on CUDA: TF32 for float32 matmuls and convolutions.

On Ampere and later GPUs, TensorFloat-32 runs float32 matrix multiplies and convolutions on
the tensor cores with a 10-bit mantissa for the products (accumulation stays float32): several
times the float32 throughput, at the rounding of a ~1e-3 relative step per product. PyTorch's
defaults are TF32 off for matmuls and on for cuDNN convolutions; ``train.tf32`` (default on)
sets both together: on, or both strict float32 (``train.tf32=false``, e.g. to compare with a
CPU run). Under ``bf16-mixed`` / ``16-mixed`` it only touches the float32 ops autocast leaves.

The flags are global to the process (they also read back on a machine without CUDA). They
are set through ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``
(neither is deprecated in torch 2.14). Not through ``torch.set_float32_matmul_precision``,
which also switches oneDNN's CPU matmuls to TF32, nor through the newer ``fp32_precision``
attributes alone, after which ``torch.get_float32_matmul_precision()`` raises ("mix of the
legacy and new APIs"), and Lightning calls it when it sets up a CUDA device; the two flags
used here keep every reader consistent (``get_float32_matmul_precision()`` reads ``high`` /
``highest``).
"""

from __future__ import annotations

import torch


def apply_tf32(enabled: bool) -> None:
    """TF32 for float32 matmuls and cuDNN convolutions on CUDA, or neither (strict float32)."""
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)
