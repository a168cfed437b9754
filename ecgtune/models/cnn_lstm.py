"""cnn_lstm (the write-up's Net4): a dilated convolution stack whose output positions are read as a
sequence by an LSTM, then an MLP. Fixed from the write-up: the LSTM now runs over time steps instead
of one flattened vector, and the undefined activation is gone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ecgtune.models._layers import BeatInput, check_config, mlp_head
from ecgtune.models._registry import register_model
from ecgtune.models.plain_cnn import conv_stack


@dataclass(frozen=True)
class CNNLSTMConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)   # convolutions before the LSTM (depth = len(widths))
    kernel_sizes: tuple[int, ...] = (11, 11, 9, 3)
    dilation: int = 2                              # dilation of every convolution after the first
    pool_every: int = 2
    pool_factor: int = 2                           # each pooling halves the sequence the LSTM reads
    lstm_hidden: int = 128
    lstm_layers: int = 1
    bidirectional: bool = True
    hidden: tuple[int, ...] = (128,)
    dropout: float = 0.1
    position_channel: bool = False                 # a second input channel, see BeatInput

    def __post_init__(self):
        check_config("cnn_lstm", self, same_length=("widths", "kernel_sizes"))


@register_model("cnn_lstm", CNNLSTMConfig, aliases=("net4",))
class CNNLSTM(nn.Module):
    def __init__(self, config: CNNLSTMConfig, n_classes: int = 4):
        super().__init__()
        self.input = BeatInput(config.position_channel)
        self.input_norm = nn.BatchNorm1d(self.input.channels)
        self.features, channels = conv_stack(self.input.channels, config.widths, config.kernel_sizes,
                                             config.dilation, config.pool_every, config.pool_factor)
        self.lstm = nn.LSTM(channels, config.lstm_hidden, num_layers=config.lstm_layers, batch_first=True,
                            bidirectional=config.bidirectional,
                            dropout=config.dropout if config.lstm_layers > 1 else 0.0)
        directions = 2 if config.bidirectional else 1
        self.head = mlp_head(directions * config.lstm_hidden, config.hidden, n_classes, config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = self.features(self.input_norm(self.input(x))).transpose(1, 2)
        _, (final_hidden, _) = self.lstm(sequence)
        directions = 2 if self.lstm.bidirectional else 1
        last_layer = final_hidden[-directions:].transpose(0, 1)
        return self.head(last_layer)
