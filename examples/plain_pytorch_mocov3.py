"""ResMo inside a hand-written, plain-PyTorch MoCo v3 training loop.

Everything here except two calls is ordinary PyTorch that you would find in any MoCo v3
loop (Chen, Xie, He 2021, Alg. 1): a small CNN backbone, projector and predictor for the
student; a teacher made with ``copy.deepcopy`` and frozen; the symmetric InfoNCE loss
scaled by ``2 * tau``; and an EMA update of the teacher after ``optimizer.step()`` with a
cosine momentum schedule. The data are small generated images, and the two views come from
cheap batched tensor operations (random resized crop and flip as one affine resampling,
brightness/contrast jitter, grayscale).

Residual momentum (ResMo, Pham et al., arXiv 2211.09861) is added in the lines marked
``# >>> ResMo``: the student's predictions ``q1, q2`` are pulled toward the teacher's
projections ``k1, k2`` of the SAME views,

    loss = loss + weight * residual_momentum_loss([q1, q2], teacher=[k1, k2])

which costs no extra forward pass, since the teacher outputs are already there for the
InfoNCE terms. The intra-representation gap ``1 - mean cos(q_v, k_v)`` is printed every
few steps (``resmo.intra_gap``).

Run it (CPU, a few seconds)::

    python examples/plain_pytorch_mocov3.py                      # with ResMo (weight 0.3)
    python examples/plain_pytorch_mocov3.py --resmo-weight 0     # plain MoCo v3, for comparison
    python examples/plain_pytorch_mocov3.py --steps 100 --log-every 10
"""

from __future__ import annotations

import argparse
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from resmo import intra_gap, residual_momentum_loss  # >>> ResMo: the only imports from resmo

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
# Model: backbone -> projector -> predictor (student); deep-copied, frozen teacher.
# ---------------------------------------------------------------------------------------


def conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def mlp(in_dim: int, hidden_dim: int, out_dim: int, *, last_bn: bool) -> nn.Sequential:
    """MoCo v3 head (ResNet version): Linear-BN-ReLU-Linear, all without bias, and a last BN
    without affine for the projector."""
    layers: list[nn.Module] = [
        nn.Linear(in_dim, hidden_dim, bias=False),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, out_dim, bias=False),
    ]
    if last_bn:
        layers.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*layers)


def build_student(width: int = 32, hidden_dim: int = 256, out_dim: int = 64):
    backbone = nn.Sequential(
        conv_bn_relu(3, width, 1),
        conv_bn_relu(width, 2 * width, 2),
        conv_bn_relu(2 * width, 4 * width, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    projector = mlp(4 * width, hidden_dim, out_dim, last_bn=True)
    predictor = mlp(out_dim, hidden_dim, out_dim, last_bn=False)
    return nn.Sequential(backbone, projector), predictor


def contrastive_loss(q: torch.Tensor, k: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo v3 InfoNCE with in-batch negatives, scaled by ``2 * tau`` as in the paper."""
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1)
    logits = q @ k.T / temperature
    labels = torch.arange(q.shape[0])
    return 2.0 * temperature * F.cross_entropy(logits, labels)


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """MoCo v3's schedule: ``1 - (1 - base) * (cos(pi * step / total) + 1) / 2``."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / total_steps) + 1.0) / 2.0


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)


# ---------------------------------------------------------------------------------------
# Training loop.
# ---------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps (default 30)")
    parser.add_argument(
        "--resmo-weight",
        type=float,
        default=0.3,
        help="lambda of the ResMo term (default 0.3: resmo's default for MoCo v3, chosen on a validation "
        "split, resmo.losses.default_weight; 0 = plain MoCo v3)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=0.2)
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

    student, predictor = build_student()
    teacher = copy.deepcopy(student)  # same initial weights as the student
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        [*student.parameters(), *predictor.parameters()], lr=args.lr, weight_decay=1e-6
    )

    history = []
    for step in range(args.steps):
        index = torch.randint(images.shape[0], (args.batch_size,), generator=generator)
        x1 = augment(images[index], generator=generator)
        x2 = augment(images[index], generator=generator)

        q1, q2 = predictor(student(x1)), predictor(student(x2))
        with torch.no_grad():
            k1, k2 = teacher(x1), teacher(x2)
        ssl_loss = contrastive_loss(q1, k2, args.temperature) + contrastive_loss(
            q2, k1, args.temperature
        )

        # >>> ResMo: pull each student prediction toward the teacher projection of the SAME view
        resmo_term = residual_momentum_loss([q1, q2], teacher=[k1, k2])
        loss = ssl_loss + args.resmo_weight * resmo_term
        gap = intra_gap([q1, q2], teacher=[k1, k2])  # 1 - mean cos(q_v, k_v), no extra forward
        # <<< ResMo

        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        momentum = cosine_momentum(step, args.steps, args.base_momentum)
        ema_update(teacher, student, momentum)  # once per optimizer step, after it

        record = {
            "step": step,
            "momentum": momentum,
            "loss": loss.item(),
            "ssl_loss": ssl_loss.item(),
            "resmo_loss": resmo_term.item(),
            "intra_gap": gap.item(),
        }
        history.append(record)
        if step % args.log_every == 0 or step == args.steps - 1:
            print(
                f"step {step:4d}  momentum {momentum:.4f}  loss {record['loss']:.4f}  "
                f"(ssl {record['ssl_loss']:.4f} + {args.resmo_weight:g} x resmo "
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
