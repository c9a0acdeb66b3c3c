"""Models that lift 2D keypoints to root-relative 3D joints.

* :class:`JointLifter` — joints as tokens: each joint's ``(u, v, visible)`` becomes a token (a linear
  embedding plus a learned joint embedding), Pre-LN encoder blocks mix them, and a linear head reads each
  token's 3D position.
* :class:`WindowLifter` — frames as tokens: each frame's 17 joints are one token, a short window of
  frames is encoded, and the centre token's output gives the centre frame's pose.
* :class:`MartinezLifter` — the fully connected baseline of Martinez et al. (2017): inputs and outputs
  standardised with the training set's statistics, linear, then residual blocks of two
  ``Linear → BatchNorm → ReLU → Dropout`` layers, then linear (Kaiming-initialised, 1,024 wide, dropout 0.5).
* :class:`MeanPoseLifter` — no model: always the training set's mean pose, the floor every lifter must beat.

The encoder blocks are the Vision Transformer's own (:class:`helpers.models.vit.Block`), so the flexible
attention heads of that chapter work here unchanged; the distance they need is the number of bones between
two joints (:func:`helpers.pose.skeleton.hop_distance`) or the number of frames between two frames. There
is no class token: every token's output is read, so every head's span ``lambda_h`` gets a gradient (in the
ViT the class token's distance is 0 and the last block's spans get none).
"""

from __future__ import annotations

import torch
from torch import nn

from helpers.models.vit import Block
from helpers.pose.skeleton import hop_distance

__all__ = [
    "JointLifter",
    "WindowLifter",
    "MartinezLifter",
    "MeanPoseLifter",
    "count_parameters",
    "martinez_parameters",
]


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _Encoder(nn.Module):
    def __init__(
        self, dim: int, depth: int, heads: int, mlp_ratio: float, drop: float, variant: str, distance: torch.Tensor
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [Block(dim, heads, mlp_ratio, drop=drop, attn_variant=variant) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.register_buffer("distance", distance.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, self.distance)
        return self.norm(x)

    def store_attention(self, on: bool = True) -> None:
        """Keep each block's attention weights in ``block.attn.attn_weights`` on the next call."""
        for block in self.blocks:
            block.attn.store_attn = on


class JointLifter(nn.Module):
    """Joints as tokens: ``(B, J, 3)`` inputs ``(u, v, visible)`` → ``(B, J, 3)`` root-relative 3D joints."""

    def __init__(
        self, num_joints: int = 17, dim: int = 64, depth: int = 3, heads: int = 4, mlp_ratio: float = 2.0,
        drop: float = 0.1, attn_variant: str = "standard", parents: tuple[int, ...] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        hops = torch.as_tensor(hop_distance(parents) if parents else hop_distance())
        self.embed = nn.Linear(3, dim)
        self.joint_embed = nn.Parameter(torch.randn(1, num_joints, dim) * 0.02)
        self.encoder = _Encoder(dim, depth, heads, mlp_ratio, drop, attn_variant, hops)
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x) + self.joint_embed))


class WindowLifter(nn.Module):
    """Frames as tokens: ``(B, T, J, 3)`` → the centre frame's ``(B, J, 3)`` (``T`` odd)."""

    def __init__(
        self, window: int = 9, num_joints: int = 17, dim: int = 64, depth: int = 3, heads: int = 4,
        mlp_ratio: float = 2.0, drop: float = 0.1, attn_variant: str = "standard",
    ) -> None:  # fmt: skip
        super().__init__()
        if window % 2 == 0:
            raise ValueError(f"the window must have an odd number of frames (a centre), got {window}")
        t = torch.arange(window, dtype=torch.float32)
        self.window, self.num_joints = window, num_joints
        self.embed = nn.Linear(3 * num_joints, dim)
        self.time_embed = nn.Parameter(torch.randn(1, window, dim) * 0.02)
        self.encoder = _Encoder(dim, depth, heads, mlp_ratio, drop, attn_variant, (t[:, None] - t[None]).abs())
        self.head = nn.Linear(dim, 3 * num_joints)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        z = self.encoder(self.embed(x.reshape(b, t, -1)) + self.time_embed)
        return self.head(z[:, t // 2]).reshape(b, self.num_joints, 3)


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, drop: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(drop)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class MartinezLifter(nn.Module):
    """Martinez et al. (2017): ``(B, J, 3)`` → ``(B, J, 3)`` through ``blocks`` residual blocks of ``width``.

    Inputs and outputs are standardised per coordinate with the statistics :meth:`fit_normalisation` takes
    from the training set (identity until then), as the paper does; linear layers are Kaiming-initialised.
    """

    def __init__(self, num_joints: int = 17, width: int = 1024, blocks: int = 2, drop: float = 0.5) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.inp = nn.Sequential(nn.Linear(3 * num_joints, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(drop))
        self.blocks = nn.Sequential(*[_ResidualBlock(width, drop) for _ in range(blocks)])
        self.out = nn.Linear(width, 3 * num_joints)
        for name, size in [("in_mean", 3), ("in_std", 3), ("out_mean", 3), ("out_std", 3)]:
            fill = torch.zeros if name.endswith("mean") else torch.ones
            self.register_buffer(name, fill(num_joints * size))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def fit_normalisation(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Take the per-coordinate mean and standard deviation of training inputs and targets."""
        x, y = inputs.reshape(len(inputs), -1).float(), targets.reshape(len(targets), -1).float()
        self.in_mean.copy_(x.mean(0))
        self.in_std.copy_(x.std(0).clamp_min(1e-3))
        self.out_mean.copy_(y.mean(0))
        self.out_std.copy_(y.std(0).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        z = self.out(self.blocks(self.inp((x.reshape(b, -1) - self.in_mean) / self.in_std)))
        return (z * self.out_std + self.out_mean).reshape(b, self.num_joints, 3)


class MeanPoseLifter(nn.Module):
    """The training set's mean 3D pose for every input: ``(B, ...)`` → ``(B, J, 3)``; nothing is learnt."""

    def __init__(self, num_joints: int = 17) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(num_joints, 3))

    def fit(self, targets: torch.Tensor) -> None:
        """Take the mean of the training targets ``(N, J, 3)``."""
        self.mean.copy_(torch.as_tensor(targets).float().mean(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean.expand(x.shape[0], *self.mean.shape).clone()


def martinez_parameters(width: int, num_joints: int = 17, blocks: int = 2) -> int:
    """The parameter count of :class:`MartinezLifter` in closed form (linear layers and BatchNorm scales/shifts;
    the normalisation statistics are buffers, not parameters)."""
    io = 3 * num_joints
    return (io * width + 3 * width) + blocks * 2 * (width * width + 3 * width) + (width * io + io)
