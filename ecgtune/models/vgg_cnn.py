"""vgg_cnn (the write-up's Net5): blocks of two 3-wide convolutions followed by max-pooling, then a deep
MLP. Fixed from the write-up: the flattened size no longer assumes a 205-sample input (an adaptive pool
sets it)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecgtune.errors import ConfigError
from ecgtune.models._layers import AdaptivePool, BeatInput, MaxPoolDown, check_config, conv_bn_act, mlp_head
from ecgtune.models._registry import register_model


@dataclass(frozen=True)
class VGGCNNConfig:
    widths: tuple[int, ...] = (16, 32, 64, 128, 256, 512)  # two convolutions per block (depth = len / 2)
    kernel_size: int = 3
    dilation: int = 1
    pool_size: int = 4                                     # the write-up's head saw 25 positions
    hidden: tuple[int, ...] = (1024, 256, 64)
    dropout: float = 0.2
    position_channel: bool = False                         # a second input channel, see BeatInput

    def __post_init__(self):
        if len(self.widths) % 2:
            raise ConfigError(f"vgg_cnn: widths needs two entries per block, got {len(self.widths)}")
        check_config("vgg_cnn", self)


@register_model("vgg_cnn", VGGCNNConfig, aliases=("net5",))
class VGGCNN(nn.Module):
    def __init__(self, config: VGGCNNConfig, n_classes: int = 4):
        super().__init__()
        self.input = BeatInput(config.position_channel)
        layers, channels = [], self.input.channels
        for first, second in zip(config.widths[::2], config.widths[1::2]):
            layers += [
                conv_bn_act(channels, first, config.kernel_size, dilation=config.dilation, activation=nn.ReLU),
                conv_bn_act(first, second, config.kernel_size, dilation=config.dilation, activation=nn.ReLU),
                MaxPoolDown(2),
            ]
            channels = second
        self.features = nn.Sequential(*layers, AdaptivePool(config.pool_size))
        self.head = mlp_head(channels * config.pool_size, config.hidden, n_classes, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.input(x)))
