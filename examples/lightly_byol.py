"""ResMo inside a BYOL training loop built from LightlySSL's building blocks.

The model and loop follow LightlySSL's own BYOL example (lightly 1.6): a student made of a
backbone, ``BYOLProjectionHead`` and ``BYOLPredictionHead``; a teacher ("momentum" in
lightly's words) deep-copied from the backbone and projection head and frozen with
``deactivate_requires_grad``; ``NegativeCosineSimilarity`` between the student prediction
of one view and the teacher projection of the other; ``update_momentum`` with a
``cosine_schedule``. The backbone is resmo's ``resnet_small``; the data are small
generated images, with two views from cheap batched tensor operations.

Residual momentum (ResMo, Pham et al., arXiv 2211.09861) is added in the lines marked
``# >>> ResMo``: the student predictions ``p0, p1`` are pulled toward the teacher
projections ``z0, z1`` of the SAME views,

    loss = loss + weight * residual_momentum_loss([p0, p1], teacher=[z0, z1])

with no extra forward pass. The intra-representation gap ``1 - mean cos(p_v, z_v)`` is
printed every few steps (``resmo.intra_gap``).

Needs ``pip install lightly`` (or ``pip install -e ".[lightly]"``). Run it (CPU, seconds)::

    python examples/lightly_byol.py                      # with ResMo (weight 1.0)
    python examples/lightly_byol.py --resmo-weight 0     # lightly's BYOL as is
    python examples/lightly_byol.py --steps 100 --log-every 10
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from resmo import intra_gap, residual_momentum_loss  # >>> ResMo: the term and the gap
from resmo.backbones import create_backbone  # any backbone works; this one is small

# ---------------------------------------------------------------------------------------
# Data: small generated images and two augmented views made with tensor operations.
# ---------------------------------------------------------------------------------------


def make_images(num_images: int, *, size: int, num_patterns: int, generator: torch.Generator):
    """``num_images`` images [N, 3, size, size] in [0, 1]: smooth random colour patterns
    (one of ``num_patterns``), each with its own pixel noise."""
    patterns = torch.rand(num_patterns, 3, 4, 4, generator=generator)
    patterns = F.interpolate(patterns, size=(size, size), mode="bilinear", align_corners=False)
    which = torch.randint(num_patterns, (num_images,), generator=generator)
    noise = 0.1 * torch.randn(num_images, 3, size, size, generator=generator)
    return (patterns[which] + noise).clamp(0.0, 1.0)


def augment(images: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """One random view per image: resized crop (area 25-100 %) + horizontal flip as a
    single affine resampling, brightness/contrast jitter (0.4), grayscale (p = 0.2)."""
    b = images.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator)

    scale = uniform(0.5, 1.0)  # side of the crop as a fraction of the image side
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = (1.0 - scale) * uniform(-1.0, 1.0)  # crop centre, kept inside
    theta[:, 1, 2] = (1.0 - scale) * uniform(-1.0, 1.0)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    views = F.grid_sample(images, grid, mode="bilinear", align_corners=False)

    brightness = uniform(0.6, 1.4).view(b, 1, 1, 1)
    contrast = uniform(0.6, 1.4).view(b, 1, 1, 1)
    views = views * brightness
    mean = views.mean(dim=(1, 2, 3), keepdim=True)
    views = (views - mean) * contrast + mean
    gray = (torch.rand(b, generator=generator) < 0.2).view(b, 1, 1, 1)
    views = torch.where(gray, views.mean(dim=1, keepdim=True).expand_as(views), views)
    return views.clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------
# Model: lightly's BYOL example, with a small backbone and small heads.
# ---------------------------------------------------------------------------------------


class BYOL(nn.Module):
    def __init__(self, backbone: nn.Module, feature_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.backbone = backbone
        self.projection_head = BYOLProjectionHead(feature_dim, hidden_dim, out_dim)
        self.prediction_head = BYOLPredictionHead(out_dim, hidden_dim, out_dim)

        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Student: prediction ``p``."""
        y = self.backbone(x).flatten(start_dim=1)
        z = self.projection_head(y)
        return self.prediction_head(z)

    def forward_momentum(self, x: torch.Tensor) -> torch.Tensor:
        """Teacher: projection ``z`` (no gradient)."""
        y = self.backbone_momentum(x).flatten(start_dim=1)
        z = self.projection_head_momentum(y)
        return z.detach()


# ---------------------------------------------------------------------------------------
# Training loop.
# ---------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps (default 30)")
    parser.add_argument(
        "--resmo-weight", type=float, default=1.0,
        help="lambda of the ResMo term (default 1: resmo's default for BYOL, chosen on a validation split, "
        "resmo.losses.default_weight; 0 = plain BYOL)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.06)
    parser.add_argument("--base-momentum", type=float, default=0.99)
    parser.add_argument("--log-every", type=int, default=5, help="print every N steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.resmo_weight < 0:
        parser.error("--resmo-weight must be >= 0")
    if args.log_every < 1:
        parser.error("--log-every must be at least 1")
    return args


def main(argv=None) -> dict:
    """Train for ``--steps`` steps; return the last step's numbers and the per-step history."""
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    images = make_images(
        8 * args.batch_size, size=args.image_size, num_patterns=10, generator=generator
    )

    backbone = create_backbone("resnet_small", width=16)
    model = BYOL(backbone, backbone.feature_dim, hidden_dim=256, out_dim=64)
    criterion = NegativeCosineSimilarity()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

    history = []
    for step in range(args.steps):
        index = torch.randint(images.shape[0], (args.batch_size,), generator=generator)
        x0 = augment(images[index], generator=generator)
        x1 = augment(images[index], generator=generator)

        p0, z0 = model(x0), model.forward_momentum(x0)
        p1, z1 = model(x1), model.forward_momentum(x1)
        byol_loss = 0.5 * (criterion(p0, z1) + criterion(p1, z0))  # in [-1, 1]

        # >>> ResMo: pull each student prediction toward the teacher projection of the SAME view
        # (2 - 2 cos, in [0, 4]; lightly's BYOL loss above is -cos, so weigh accordingly)
        resmo_term = residual_momentum_loss([p0, p1], teacher=[z0, z1])
        loss = byol_loss + args.resmo_weight * resmo_term
        gap = intra_gap([p0, p1], teacher=[z0, z1])  # 1 - mean cos(p_v, z_v), no extra forward
        # <<< ResMo

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # lightly's own example calls update_momentum at the start of the next step; here it
        # runs right after the optimizer step it follows (the same EMA, and the teacher also
        # takes in the last step). The momentum is a function of the step only.
        momentum = cosine_schedule(step, args.steps, args.base_momentum, 1.0)
        update_momentum(model.backbone, model.backbone_momentum, m=momentum)
        update_momentum(model.projection_head, model.projection_head_momentum, m=momentum)

        record = {
            "step": step,
            "momentum": momentum,
            "loss": loss.item(),
            "ssl_loss": byol_loss.item(),
            "resmo_loss": resmo_term.item(),
            "intra_gap": gap.item(),
        }
        history.append(record)
        if step % args.log_every == 0 or step == args.steps - 1:
            print(
                f"step {step:4d}  momentum {momentum:.4f}  loss {record['loss']:.4f}  "
                f"(byol {record['ssl_loss']:.4f} + {args.resmo_weight:g} x resmo "
                f"{record['resmo_loss']:.4f})  intra_gap {record['intra_gap']:.4f}"
            )

    final = {key: history[-1][key] for key in ("loss", "ssl_loss", "resmo_loss", "intra_gap")}
    print(
        f"final: steps={args.steps} resmo_weight={args.resmo_weight:g} "
        f"loss={final['loss']:.4f} intra_gap={final['intra_gap']:.4f}"
    )
    return {**final, "steps": args.steps, "resmo_weight": args.resmo_weight, "history": history}


if __name__ == "__main__":
    main()
