"""The deterministic cost of a network: multiply-accumulates (MACs) per beat, counted from its layers.

A prediction-cost limit must give the same ensemble on an idle machine and on a busy one, so it is
expressed in MACs, which depend on the architecture alone; a calibration measured once per experiment
(seconds per MAC on that machine) turns them into seconds for people to read.
"""

from __future__ import annotations

import torch
from torch import nn

from ecgtune.models._registry import create_model


def count_macs(model: nn.Module, signal_length: int) -> int:
    """MACs of one forward pass of one beat through `model` (convolutions, linear layers and LSTMs; the
    element-wise layers are a small share and are left out)."""
    total = 0

    def conv(module: nn.Conv1d, _inputs, output):
        nonlocal total
        total += output.shape[-1] * module.out_channels * (module.in_channels // module.groups) * module.kernel_size[0]

    def linear(module: nn.Linear, _inputs, _output):
        nonlocal total
        total += module.in_features * module.out_features

    def lstm(module: nn.LSTM, inputs, _output):
        nonlocal total
        steps, directions = inputs[0].shape[1], 2 if module.bidirectional else 1
        for layer in range(module.num_layers):
            layer_input = module.input_size if layer == 0 else module.hidden_size * directions
            total += steps * directions * 4 * module.hidden_size * (layer_input + module.hidden_size)

    hooks = {nn.Conv1d: conv, nn.Linear: linear, nn.LSTM: lstm}
    handles = [module.register_forward_hook(hooks[type(module)]) for module in model.modules() if type(module) in hooks]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, signal_length))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return int(total)


def network_macs(family: str, model_config: dict, n_classes: int = 4, signal_length: int = 205) -> int:
    """MACs per beat of the family built with `model_config`."""
    return count_macs(create_model(family, n_classes=n_classes, **model_config), signal_length)
