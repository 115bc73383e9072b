"""One MLP builder for every projector and predictor.

``build_mlp(in_dim, hidden_dim, out_dim, layers=L)`` stacks ``L`` linear layers:

    Linear -> [BN] -> act   (repeated L - 1 times)  ->  Linear -> [last BN]

``hidden_batch_norm`` puts BN after each hidden linear layer (MoCo v3, BYOL); ``last_batch_norm``
adds a BN after the output layer, without affine parameters when ``last_affine=False``
(MoCo v3's projector, Chen et al. 2021, Sec. 3 and Alg. 1 reference code).
Linear layers followed by BN carry no bias, since the BN shift replaces it.
"""

from __future__ import annotations

from torch import nn

from resmo.validation import check_choice, check_positive_int

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def build_mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    *,
    layers: int = 2,
    hidden_batch_norm: bool = True,
    last_batch_norm: bool = False,
    last_affine: bool = True,
    activation: str = "relu",
) -> nn.Sequential:
    """Return the MLP described in the module docstring."""
    check_positive_int("layers", layers)
    check_positive_int("in_dim", in_dim)
    check_positive_int("out_dim", out_dim)
    if layers > 1:
        check_positive_int("hidden_dim", hidden_dim)
    check_choice("activation", activation, ACTIVATIONS)
    modules: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers - 1):
        modules.append(nn.Linear(dim, hidden_dim, bias=not hidden_batch_norm))
        if hidden_batch_norm:
            modules.append(nn.BatchNorm1d(hidden_dim))
        modules.append(ACTIVATIONS[activation]())
        dim = hidden_dim
    modules.append(nn.Linear(dim, out_dim, bias=not last_batch_norm))
    if last_batch_norm:
        modules.append(nn.BatchNorm1d(out_dim, affine=last_affine))
    return nn.Sequential(*modules)
