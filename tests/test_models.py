import dataclasses

import pytest
import torch

from ecgtune.errors import ConfigError
from ecgtune.models import create_model, get_family, list_models, model_config

FAMILIES = ["dilated_cnn", "multiscale_cnn", "plain_cnn", "cnn_lstm", "vgg_cnn", "resnet1d"]


def test_the_six_families_are_registered():
    assert sorted(FAMILIES) == list_models()


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("length", [24, 205, 320])
def test_logits_shape_backward_and_finite(name, length):
    torch.manual_seed(0)
    model = create_model(name, n_classes=5)
    x = torch.rand(6, length)
    logits = model(x)
    assert logits.shape == (6, 5)
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.arange(6) % 5).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    model.eval()
    assert model(x.unsqueeze(1)).shape == (6, 5)


@pytest.mark.parametrize("name", FAMILIES)
def test_outputs_are_logits_not_probabilities(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
    logits = model(torch.rand(16, 205) * 3)
    assert not torch.allclose(logits.sum(dim=1), torch.ones(16))


@pytest.mark.parametrize("alias, name", [(f"net{i}", n) for i, n in enumerate(FAMILIES, start=1)])
def test_write_up_names_are_aliases(alias, name):
    assert type(create_model(alias)) is get_family(name).network


def test_a_typo_lists_the_valid_names():
    with pytest.raises(ConfigError, match="unknown model 'resnet'; valid: cnn_lstm, dilated_cnn"):
        create_model("resnet")


def test_unknown_and_inconsistent_settings_are_refused():
    with pytest.raises(ConfigError, match="dilated_cnn has no setting kernel; valid: stem_width"):
        create_model("dilated_cnn", kernel=3)
    with pytest.raises(ConfigError, match="one entry per layer"):
        create_model("plain_cnn", widths=(8, 16), kernel_sizes=(3,))
    with pytest.raises(ConfigError, match="dropout"):
        create_model("resnet1d", dropout=1.5)


@pytest.mark.parametrize("name, settings", [
    ("dilated_cnn", dict(stem_kernel=7, widths=(32, 64, 64), kernel_sizes=(5, 5, 3), strides=(2, 2, 2), dilation=4)),
    ("multiscale_cnn", dict(branch_kernels=(3, 9), widths=(16, 32, 64), kernel_sizes=(7, 5, 3), dilation=2)),
    ("plain_cnn", dict(widths=(16, 32), kernel_sizes=(7, 5), dilation=3, hidden=(64,))),
    ("cnn_lstm", dict(widths=(16, 32), kernel_sizes=(5, 5), lstm_hidden=32, lstm_layers=2, bidirectional=False)),
    ("vgg_cnn", dict(widths=(8, 16, 32, 64, 64, 128, 128, 256), kernel_size=5, dilation=2)),
    ("resnet1d", dict(blocks=(2, 2), width=64, bottleneck_width=16, kernel_size=5, dilation=2)),
])
def test_kernel_sizes_dilation_widths_and_depth_come_from_the_config(name, settings):
    model = create_model(name, **settings)
    assert model(torch.rand(4, 205)).shape == (4, 4)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d)]
    config = model_config(name, **settings)
    if "dilation" in settings:
        assert any(conv.dilation == (settings["dilation"],) for conv in convs)
    if "widths" in settings:
        assert {conv.out_channels for conv in convs} >= set(settings["widths"])
    default_convs = [m for m in create_model(name).modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.kernel_size for c in convs] != [c.kernel_size for c in default_convs] or len(convs) != len(default_convs)
    assert dataclasses.asdict(config)  # serialisable for checkpoints


def test_the_position_channel_is_each_samples_place_in_the_window_before_the_padding():
    from ecgtune.models._layers import BeatInput

    beats = torch.zeros(2, 10)
    beats[0, :4] = torch.tensor([0.0, 1.0, 0.5, 0.2])  # a zero inside the window is not padding
    beats[1, :] = 0.3  # no padding at all
    channels = BeatInput(position=True)(beats)
    assert channels.shape == (2, 2, 10)
    assert torch.equal(channels[:, 0], beats)
    assert torch.allclose(channels[0, 1], torch.tensor([0.0, 0.25, 0.5, 0.75, 0, 0, 0, 0, 0, 0]))
    assert torch.allclose(channels[1, 1], torch.arange(10) / 10)
    assert BeatInput(position=False)(beats).shape == (2, 1, 10)


@pytest.mark.parametrize("name", FAMILIES)
def test_with_the_position_channel_a_network_reads_where_the_padding_begins(name):
    torch.manual_seed(0)
    model = create_model(name, position_channel=True).eval()
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv1d))
    assert first_conv.in_channels == 2
    beat = torch.rand(1, 205) + 0.1
    zero_inside = beat.clone()
    zero_inside[:, 150] = 0.0  # a zero inside the window is not padding
    padded = beat.clone()
    padded[:, 150:] = 0.0
    with torch.no_grad():
        assert model(beat).shape == (1, 4)
        channels = model.input(torch.cat([beat, zero_inside, padded]))
    assert torch.equal(channels[0, 1], channels[1, 1])
    assert not torch.equal(channels[0, 1], channels[2, 1])
