from __future__ import annotations

import math
from dataclasses import asdict

import pytest
import torch

from ecgtune.augment import Augmentation, _resample, augment, mix
from ecgtune.errors import ConfigError

LENGTH = 205
SIGNAL_LENGTHS = [205, 180, 150, 120, 90, 64, 37, 10, 1, 0]
ALL_ON = Augmentation(amplitude=0.3, baseline=0.2, noise=0.05, shift=12, stretch=0.3, mixup=0.4)


def beats(lengths=SIGNAL_LENGTHS, seed: int = 0) -> torch.Tensor:
    """Beats whose signal parts have the given lengths, non-zero up to there, exact zeros after."""
    values = 0.1 + 0.8 * torch.rand(len(lengths), LENGTH, generator=torch.Generator().manual_seed(seed))
    mask = torch.arange(LENGTH) < torch.tensor(lengths)[:, None]
    return torch.where(mask, values, torch.zeros(()))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def signal_lengths(signals: torch.Tensor) -> list[int]:
    """Per row: the number of non-zero samples, asserting that they form one prefix followed by zeros."""
    nonzero = signals != 0
    counts = nonzero.sum(dim=1)
    prefix = torch.arange(signals.shape[1]) < counts[:, None]
    assert torch.equal(nonzero, prefix), "signal part is not one contiguous prefix followed by zeros"
    return counts.tolist()


def test_all_off_is_the_identity_on_a_copy():
    x = beats()
    out = augment(x, Augmentation(), gen())
    assert torch.equal(out, x)
    assert out.data_ptr() != x.data_ptr()
    assert not Augmentation().enabled
    assert Augmentation(mixup=0.2).enabled and Augmentation(shift=1).enabled


@pytest.mark.parametrize("kind", [{"amplitude": 0.4}, {"baseline": 0.3}, {"noise": 0.1}])
def test_value_transforms_keep_the_padding_and_the_signal_length(kind):
    x = beats()
    out = augment(x, Augmentation(**kind), gen())
    assert signal_lengths(out) == SIGNAL_LENGTHS
    assert not torch.equal(out, x)


@pytest.mark.parametrize("kind", [{"shift": 15}, {"stretch": 0.4}, {"shift": 15, "stretch": 0.4}, asdict(ALL_ON)])
def test_resampling_keeps_one_contiguous_signal_part_followed_by_zeros(kind):
    x = beats(SIGNAL_LENGTHS * 20)
    out = augment(x, Augmentation(**kind), gen())
    lengths = signal_lengths(out)  # asserts contiguity
    assert lengths[SIGNAL_LENGTHS.index(0)] == 0  # an empty beat stays empty
    assert out.shape == x.shape


def test_amplitude_scales_each_row_by_one_factor_within_bounds():
    x = beats(SIGNAL_LENGTHS[:-1] * 30)
    out = augment(x, Augmentation(amplitude=0.25), gen())
    mask = x != 0
    ratio = torch.where(mask, out / torch.where(mask, x, torch.ones(())), torch.nan)
    per_row = torch.nanmean(ratio, dim=1)
    torch.testing.assert_close(ratio[mask], per_row[:, None].expand_as(ratio)[mask])
    assert per_row.min() >= 0.75 and per_row.max() <= 1.25
    assert per_row.max() - per_row.min() > 0.25  # rows get different factors


def test_baseline_adds_one_constant_per_row_within_bounds():
    x = beats(SIGNAL_LENGTHS[:-1] * 30)
    out = augment(x, Augmentation(baseline=0.2), gen())
    mask = x != 0
    offset = torch.where(mask, out - x, torch.nan)
    per_row = torch.nanmean(offset, dim=1)
    torch.testing.assert_close(offset[mask], per_row[:, None].expand_as(offset)[mask])
    assert per_row.abs().max() <= 0.2
    assert per_row.min() < -0.05 and per_row.max() > 0.05


def test_noise_has_the_requested_standard_deviation():
    x = beats([LENGTH] * 200)
    residual = augment(x, Augmentation(noise=0.05), gen()) - x
    assert residual.std().item() == pytest.approx(0.05, rel=0.05)
    assert residual.mean().abs().item() < 0.005


def test_same_seed_same_output_other_seed_other_output():
    x = beats()
    first = augment(x, ALL_ON, gen(7))
    assert torch.equal(first, augment(x, ALL_ON, gen(7)))
    assert not torch.equal(first, augment(x, ALL_ON, gen(8)))


def test_generator_state_resumes_the_stream():
    x = beats()
    generator = gen(3)
    augment(x, ALL_ON, generator)
    state = generator.get_state()
    second = augment(x, ALL_ON, generator)
    generator.set_state(state)
    assert torch.equal(augment(x, ALL_ON, generator), second)


def test_input_is_not_modified():
    x = beats()
    before = x.clone()
    augment(x, ALL_ON, gen())
    mix(x, torch.arange(len(x)), 0.4, gen())
    assert torch.equal(x, before)


def test_output_is_finite_at_the_strongest_settings():
    strongest = Augmentation(amplitude=0.99, baseline=1.0, noise=1.0, shift=300, stretch=0.49)
    out = augment(beats(SIGNAL_LENGTHS * 50), strongest, gen())
    assert torch.isfinite(out).all()


def impulse_beat(length: int = 100, at: int = 50) -> torch.Tensor:
    x = torch.zeros(1, LENGTH)
    x[0, :length] = 0.5
    x[0, at] = 1.0
    return x


@pytest.mark.parametrize("shift", [-9, -1, 0, 4, 9])
def test_fixed_shift_moves_the_impulse_and_the_end_by_that_amount(shift):
    x = impulse_beat()
    out, mask = _resample(x, torch.tensor([100]), torch.tensor([float(shift)]), torch.tensor([1.0]))
    assert out[0].argmax().item() == 50 + shift
    assert out[0, 50 + shift].item() == 1.0  # an integer shift reads samples exactly
    assert signal_lengths(out) == [100 + shift]
    assert torch.equal(mask, out != 0)


def test_positive_shift_repeats_the_first_sample():
    x = beats([120])
    out, _ = _resample(x, torch.tensor([120]), torch.tensor([5.0]), torch.tensor([1.0]))
    assert torch.equal(out[0, :6], x[0, 0].expand(6))
    assert torch.equal(out[0, 5:125], x[0, :120])


def test_random_shift_moves_the_impulse_by_at_most_shift():
    x = impulse_beat().repeat(200, 1)
    out = augment(x, Augmentation(shift=6), gen())
    moved = out.argmax(dim=1) - 50
    assert moved.abs().max().item() == 6
    assert len(set(moved.tolist())) == 13  # every shift in [-6, 6] occurs


@pytest.mark.parametrize("factor", [0.6, 0.8, 1.25, 1.5])
def test_fixed_stretch_scales_the_signal_part_and_moves_the_impulse(factor):
    x = impulse_beat(length=100, at=40)
    out, _ = _resample(x, torch.tensor([100]), torch.tensor([0.0]), torch.tensor([factor]))
    # The last source sample, 99, lands on output position 99 * factor.
    assert signal_lengths(out) == [math.floor(99 * factor) + 1]
    assert abs(out[0].argmax().item() - 40 * factor) <= 1


def test_stretch_interpolates_linearly_between_samples():
    x = torch.zeros(1, LENGTH)
    x[0, :100] = 0.1 + 0.004 * torch.arange(100)
    out, _ = _resample(x, torch.tensor([100]), torch.tensor([0.0]), torch.tensor([1.25]))
    # A ramp resampled linearly is the ramp at the source positions j / 1.25, up to source sample 99.
    torch.testing.assert_close(out[0, :124], 0.1 + 0.004 * torch.arange(124) / 1.25)
    assert torch.equal(out[0, 124:], torch.zeros(LENGTH - 124))


def test_stretch_past_the_end_is_cut_to_the_input_length():
    x = beats([200])
    out, _ = _resample(x, torch.tensor([200]), torch.tensor([0.0]), torch.tensor([1.4]))
    assert out.shape == (1, LENGTH)
    assert signal_lengths(out) == [LENGTH]


def test_random_stretch_scales_lengths_within_the_factor_range():
    lengths = [100, 120, 140] * 100
    out = augment(beats(lengths), Augmentation(stretch=0.3), gen())
    ratio = torch.tensor(signal_lengths(out), dtype=torch.float) / torch.tensor(lengths)
    assert ratio.min() >= 0.7 - 0.01 and ratio.max() <= 1.3 + 0.01
    assert ratio.min() < 0.8 and ratio.max() > 1.2


def test_mix_blends_rows_with_a_permutation_of_partners():
    x = beats()
    labels = torch.arange(len(x))  # labels name the rows, so the partner labels reveal the partners
    mixed, partner_labels, lam = mix(x, labels, 0.4, gen())
    assert 0.5 <= lam <= 1.0
    assert sorted(partner_labels.tolist()) == labels.tolist()
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[partner_labels])


def test_mix_is_deterministic_and_lam_varies_with_the_seed():
    x, labels = beats(), torch.arange(len(SIGNAL_LENGTHS))
    first = mix(x, labels, 1.0, gen(1))
    again = mix(x, labels, 1.0, gen(1))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1]) and first[2] == again[2]
    lams = {mix(x, labels, 1.0, gen(seed))[2] for seed in range(20)}
    assert len(lams) == 20 and min(lams) >= 0.5


def test_mix_rejects_a_non_positive_alpha():
    with pytest.raises(ConfigError, match="alpha"):
        mix(beats(), torch.arange(len(SIGNAL_LENGTHS)), 0.0, gen())


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"amplitude": -0.1}, "amplitude"),
        ({"amplitude": 1.0}, "amplitude"),
        ({"baseline": -1.0}, "baseline"),
        ({"noise": math.nan}, "noise"),
        ({"noise": math.inf}, "noise"),
        ({"shift": -2}, "shift"),
        ({"shift": 1.5}, "shift"),
        ({"stretch": 0.5}, "stretch"),
        ({"mixup": -0.2}, "mixup"),
    ],
)
def test_invalid_settings_raise_config_error(settings, field):
    with pytest.raises(ConfigError, match=field):
        Augmentation(**settings)


def test_a_whole_float_shift_is_taken_as_an_int():
    augmentation = Augmentation(shift=3.0)
    assert augmentation.shift == 3 and isinstance(augmentation.shift, int)
    assert augment(beats(), augmentation, gen()).shape == (len(SIGNAL_LENGTHS), LENGTH)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_gpu_give_the_same_result():
    x = beats(SIGNAL_LENGTHS * 10)
    on_cpu = augment(x, ALL_ON, gen(5))
    on_gpu = augment(x.cuda(), ALL_ON, gen(5))
    assert on_gpu.is_cuda
    torch.testing.assert_close(on_gpu.cpu(), on_cpu)
    assert torch.equal(on_gpu.cpu() == 0, on_cpu == 0)
