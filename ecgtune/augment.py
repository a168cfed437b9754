"""Training-time data augmentation of beats, vectorised over the batch (PyTorch).

Beats start at their R peak and are zero-padded at the end; the padding length carries the heart
rate, so every transform here changes the signal part only and leaves the padding exactly zero.
Random parameters are drawn on the CPU with the caller's generator and then moved to the batch's
device: results are the same on CPU and GPU, and a trainer that saves the generator's state resumes
exactly.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields

import torch

from ecgtune.errors import ConfigError


@dataclass(frozen=True)
class Augmentation:
    """Strengths of the random transforms; 0 turns a transform off.

    Attributes:
        amplitude: each beat is scaled by a factor drawn uniformly from [1 - amplitude, 1 + amplitude].
        baseline: a constant drawn uniformly from [-baseline, baseline] is added to the signal part.
        noise: standard deviation of Gaussian noise added to the signal part.
        shift: the beat is moved by a whole number of samples drawn from [-shift, shift].
        stretch: the beat is resampled by a time factor drawn uniformly from [1 - stretch, 1 + stretch].
        mixup: alpha of mixup's Beta(alpha, alpha); applied by `mix`, not by `augment`.
    """

    amplitude: float = 0.0
    baseline: float = 0.0
    noise: float = 0.0
    shift: int = 0
    stretch: float = 0.0
    mixup: float = 0.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"augmentation {field.name} must be a finite number >= 0, got {value!r}")
        if int(self.shift) != self.shift:
            raise ConfigError(f"augmentation shift is a number of samples, a whole number; got {self.shift!r}")
        object.__setattr__(self, "shift", int(self.shift))  # 3.0 from a config file must reach randint as 3
        if self.amplitude >= 1:
            raise ConfigError(f"augmentation amplitude must be < 1 (a beat must not flip sign), got {self.amplitude!r}")
        if self.stretch >= 0.5:
            raise ConfigError(f"augmentation stretch must be < 0.5, got {self.stretch!r}")

    @property
    def enabled(self) -> bool:
        """Whether any transform is on."""
        return any(getattr(self, field.name) for field in fields(self))


def _symmetric(half_width: float, size: int, generator: torch.Generator) -> torch.Tensor:
    """`size` draws from the uniform distribution on [-half_width, half_width], on the CPU."""
    return (torch.rand(size, generator=generator, device="cpu") * 2 - 1) * half_width


def _resample(signals: torch.Tensor, lengths: torch.Tensor, shifts: torch.Tensor, factors: torch.Tensor):
    """Shifts and stretches each row's signal part by linear interpolation.

    Output position j reads source position (j - shift) / factor: before index 0 it takes the first
    sample, past the signal part it is padding. Returns the resampled rows and their signal-part mask.
    """
    length = signals.shape[1]
    source = (torch.arange(length, device=signals.device, dtype=signals.dtype) - shifts[:, None]) / factors[:, None]
    source = source.clamp(min=0)
    # The source grid rises with j, so the mask stays one contiguous signal part followed by zeros.
    inside = source <= (lengths - 1)[:, None]
    left = source.floor().long().clamp(max=length - 1)
    right = (left + 1).clamp(max=length - 1)
    values = torch.lerp(signals.gather(1, left), signals.gather(1, right), source - left)
    return torch.where(inside, values, torch.zeros_like(values)), inside


def augment(signals: torch.Tensor, augmentation: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Randomly shifts, stretches, scales, offsets and adds noise to a batch of beats.

    Args:
        signals: (batch, length) beats, each zero-padded after its last non-zero sample.
        augmentation: the strengths; `mixup` is ignored here (see `mix`).
        generator: a CPU generator that all random parameters are drawn from.

    Returns:
        A new tensor on the signals' device (the input is never modified); the padding stays 0.
    """
    batch, length = signals.shape
    positions = torch.arange(length, device=signals.device)
    lengths = torch.where(signals != 0, positions + 1, 0).amax(dim=1)
    mask = positions < lengths[:, None]
    out = signals.clone()
    if augmentation.shift or augmentation.stretch:
        shifts = torch.randint(-augmentation.shift, augmentation.shift + 1, (batch,), generator=generator)
        factors = 1 + _symmetric(augmentation.stretch, batch, generator)
        out, mask = _resample(out, lengths, shifts.to(out), factors.to(out))
    if augmentation.amplitude:
        out = out * (1 + _symmetric(augmentation.amplitude, batch, generator)).to(out)[:, None]
    if augmentation.baseline:
        out = out + _symmetric(augmentation.baseline, batch, generator).to(out)[:, None] * mask
    if augmentation.noise:
        noise = torch.randn(batch, length, generator=generator, device="cpu").to(out)
        out = out + augmentation.noise * noise * mask
    return out


def mix(
    signals: torch.Tensor, labels: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """mixup: blends every beat with a random partner beat of the same batch.

    The loss is then lam * loss(labels) + (1 - lam) * loss(partner labels).

    Args:
        signals: (batch, length) beats.
        labels: (batch,) integer labels.
        alpha: the Beta(alpha, alpha) parameter, > 0.
        generator: a CPU generator that lam and the partners are drawn from.

    Returns:
        (lam * signals + (1 - lam) * partner signals, the partners' labels, lam), lam in [0.5, 1].
    """
    if not alpha > 0:
        raise ConfigError(f"mixup alpha must be > 0, got {alpha!r}")
    # torch's Beta distribution takes no generator: seed Python's from it to stay reproducible.
    seed = int(torch.randint(2**62, (1,), generator=generator, device="cpu"))
    lam = random.Random(seed).betavariate(alpha, alpha)
    lam = max(lam, 1 - lam)  # the original row dominates, so its label stays the main target
    partners = torch.randperm(signals.shape[0], generator=generator, device="cpu")
    mixed = lam * signals + (1 - lam) * signals[partners.to(signals.device)]
    return mixed, labels[partners.to(labels.device)], lam
