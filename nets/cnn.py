"""The Nature DQN convolutional trunk (Mnih et al. 2015, Methods "Model architecture") on (C, H, W) images."""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from rlkit.errors import UserError

MIN_SIZE = 36
"""smallest height and width the three convolutions take (8x8/4, 4x4/2, 3x3/1)"""


class NatureCNN(nn.Module):
    """Conv 32 8x8/4 -> Conv 64 4x4/2 -> Conv 64 3x3/1 -> flatten -> Linear 512, ReLU after each.

    uint8 input is scaled to [0, 1] here (x / 255), so replay buffers keep 1-byte frames; a float
    input is taken as already scaled.
    """

    def __init__(self, in_channels: int, height: int, width: int, features: int = 512):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        h, w = conv_out(height), conv_out(width)
        self.fc = nn.Sequential(nn.Linear(64 * h * w, features), nn.ReLU())
        self.out_dim = features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # channels-last (NHWC) activations: oneDNN's NHWC kernels compute the same convolutions, and on CPU the
        # first layer's weight gradient (4 input channels, stride 4) runs ~3x faster than in NCHW; the weights
        # keep their usual layout, so state dicts and the optimizers' flat buffers are unchanged. One copy
        # changes dtype and layout together (a 256-frame minibatch: 4.8 ms, vs 7.6 ms for float then NHWC)
        x = obs.to(torch.float32, memory_format=torch.channels_last)
        if obs.dtype == torch.uint8:
            x.div_(255.0)
        return self.fc(self.convs(x))


def conv_out(size: int) -> int:
    """Height (or width) of the last feature map for an input of `size` pixels: 84 -> 20 -> 9 -> 7."""
    for kernel, stride in ((8, 4), (4, 2), (3, 1)):
        size = (size - kernel) // stride + 1
    return size


def build_cnn(observation_space: gym.Space) -> NatureCNN:
    """The Nature DQN trunk for a (C, H, W) image Box, e.g. the (4, 84, 84) uint8 stacks of envs/atari.py."""
    shape = getattr(observation_space, "shape", None)
    if not isinstance(observation_space, gym.spaces.Box) or len(shape) != 3:
        seen = (f"a Box of shape {shape}" if isinstance(observation_space, gym.spaces.Box)
                else type(observation_space).__name__)  # not the Box's repr: its bounds fill the line
        raise UserError(f"net cnn takes image observations, a Box of shape (C, H, W), not {seen}; use net=mlp")
    c, h, w = shape
    if h < MIN_SIZE or w < MIN_SIZE:
        hint = " (channels last? the cnn wants (C, H, W))" if c >= MIN_SIZE and min(h, w) <= 4 else ""
        raise UserError(f"net cnn needs images of at least {MIN_SIZE}x{MIN_SIZE}, not shape {shape}{hint}; "
                        "use net=mlp for small observations")
    return NatureCNN(c, h, w)
