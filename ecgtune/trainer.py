"""The training loop: the whole fold resident on the device, batches drawn by index from a random
permutation (no DataLoader), augmented on the device, AdamW with a one-cycle or warm-up + cosine
schedule, optionally an exponential moving average of the weights, and per-epoch validation with the
competition's metrics. The best epoch's weights and probabilities are kept (or the last epoch's, with
`keep="last"`). A fold without validation rows (a refit on every row) trains without validating."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ecgtune import metrics
from ecgtune.augment import Augmentation, augment, mix
from ecgtune.data import Fold
from ecgtune.errors import ConfigError
from ecgtune.models import create_model

SCHEDULES = ("onecycle", "cosine")
LOSSES = ("cross_entropy", "l1")
KEEP = ("best", "last")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20                # passes over the training rows
    batch_size: int = 256
    lr: float = 3e-3                # peak learning rate
    weight_decay: float = 1e-2      # AdamW's decoupled weight decay
    schedule: str = "onecycle"      # "onecycle", or "cosine": linear warm-up then cosine decay to zero
    warmup_fraction: float = 0.1    # share of all steps spent warming up
    loss: str = "cross_entropy"     # or "l1": the write-up's L1 distance to the label-smoothed one-hot
    label_smoothing: float = 0.05   # epsilon, for either loss
    max_grad_norm: float = 5.0      # gradient clipping; 0 turns it off
    seed: int = 0
    device: str = "auto"            # "auto" picks CUDA when present, else the CPU
    eval_batch_size: int = 4096
    keep: str = "best"              # "best": the epoch with the lowest validation abs-sum; "last": the final
                                    # epoch, so the validation rows choose nothing (out-of-fold predictions)
    ema_horizon: float = 0.0        # >0: validate and keep a moving average of the weights over about this
                                    # share of all steps (it smooths the last steps' noise); 0: the raw weights
    augmentation: Augmentation = field(default_factory=Augmentation)  # training rows only
    first_epoch_fraction: float = 1.0  # <1: the first epoch sees this share of the rows, so that a search's
                                       # first report (its cheapest rung) comes early for every network
    time_allowance_s: float = 0.0  # >0: after REPLAN_AFTER_EPOCH epochs, the epochs are re-planned from their
                                   # measured pace to end training and validation within this many seconds

    def __post_init__(self):
        if isinstance(self.augmentation, dict):  # read back from JSON
            object.__setattr__(self, "augmentation", Augmentation(**self.augmentation))
        if not 0.0 < self.first_epoch_fraction <= 1.0:
            raise ConfigError(f"first_epoch_fraction must lie in (0, 1], got {self.first_epoch_fraction}")
        if self.time_allowance_s < 0.0:
            raise ConfigError(f"time_allowance_s must not be negative, got {self.time_allowance_s}")
        if not 0.0 <= self.ema_horizon <= 1.0:
            raise ConfigError(f"ema_horizon must lie in [0, 1], got {self.ema_horizon}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        if self.keep not in KEEP:
            raise ConfigError(f"unknown keep {self.keep!r}; valid: {', '.join(KEEP)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; valid: {', '.join(LOSSES)}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ConfigError(f"epochs must be >= 1 and batch_size >= 2, got {self.epochs} and {self.batch_size}")
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError("label_smoothing and warmup_fraction must lie in [0, 1)")


REPLAN_AFTER_EPOCH = 3  # epochs 2 and 3 time a run with a time allowance: the first may see part of the rows
MAX_REPLAN_FACTOR = 2.0  # a re-planned run trains at most this many times its planned epochs
# the names a trainer state had before 2026-11-27, when "best" also meant the last epoch of keep="last"
LEGACY_STATE_NAMES = {"best_key": "kept_key", "best_epoch": "kept_epoch", "best_state": "kept_state",
                      "best_probs": "kept_probs"}


@dataclass
class TrainResult:
    """What a training run leaves: its per-epoch history and the epoch it kept: the best (lowest
    validation abs-sum, ties broken by log-loss), or the last with `keep="last"`."""

    history: list[dict[str, float]]
    kept_epoch: int
    kept_metrics: dict[str, float]
    kept_state: dict[str, torch.Tensor]
    kept_val_probs: np.ndarray
    diverged: bool = False
    seconds: float = 0.0
    config: dict = field(default_factory=dict)


def resolve_device(name: str = "auto") -> torch.device:
    """The device to train on: CUDA when available for "auto", else what is named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def training_loss(logits, targets, n_classes, loss, label_smoothing, class_weights=None) -> torch.Tensor:
    """Mean loss of a batch: cross-entropy with label smoothing, or the write-up's L1 between softmax
    probabilities and the one-hot clamped to [eps / (C - 1), 1 - eps]; optionally weighted by class."""
    if loss == "cross_entropy":
        return F.cross_entropy(logits, targets, weight=class_weights, label_smoothing=label_smoothing)
    smoothed = F.one_hot(targets, n_classes).float().clamp(label_smoothing / (n_classes - 1), 1.0 - label_smoothing)
    per_row = (logits.softmax(dim=1) - smoothed).abs().sum(dim=1)
    if class_weights is None:
        return per_row.mean()
    row_weights = class_weights[targets]
    return (per_row * row_weights).sum() / row_weights.sum()


def _schedule(optimizer, config: TrainConfig, total_steps: int, done_steps: int = 0):
    """The learning-rate schedule over `total_steps`, at step `done_steps` (after a re-plan, the rest of
    a run's steps follow the new schedule from where the run is)."""
    if config.schedule == "onecycle" and total_steps >= 4:
        rising = min(0.5, max(config.warmup_fraction, 2.0 / total_steps))  # at least two rising steps
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps,
                                                        pct_start=rising)
        return _at_step(scheduler, done_steps)
    warmup = max(1, int(config.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    return _at_step(torch.optim.lr_scheduler.LambdaLR(optimizer, factor), done_steps)


def _at_step(scheduler, done_steps: int):
    """The new scheduler moved to `done_steps`, its optimiser's learning rate set from it."""
    if done_steps:
        scheduler.last_epoch = done_steps - 1
        scheduler.step()
    return scheduler


@torch.no_grad()
def predict_proba(model: nn.Module, signals: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    """Softmax probabilities of `model` (in eval mode) for signals already on its device."""
    model.eval()
    chunks = [model(signals[start:start + batch_size]).float().softmax(dim=1)
              for start in range(0, len(signals), batch_size)]
    return torch.cat(chunks).cpu().numpy()


class Trainer:
    """Trains one model on one fold, epoch by epoch; its whole state can be saved after any epoch and
    loaded into a fresh Trainer to resume (see `state_dict`)."""

    def __init__(self, model: nn.Module, fold: Fold, config: TrainConfig = TrainConfig()):
        self.config, self.fold = config, fold
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.model = model.to(self.device)
        self.train_x = torch.as_tensor(fold.train_signals, dtype=torch.float32, device=self.device)
        self.train_y = torch.as_tensor(fold.train_labels, dtype=torch.long, device=self.device)
        self.val_x = torch.as_tensor(fold.val_signals, dtype=torch.float32, device=self.device)
        self.class_weights = None
        if fold.class_weights is not None:
            self.class_weights = torch.as_tensor(fold.class_weights, dtype=torch.float32, device=self.device)
        n_rows = len(self.train_x)
        self.batch_starts = [start for start in range(0, n_rows, config.batch_size) if n_rows - start >= 2]
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.first_epoch_steps = max(1, math.ceil(config.first_epoch_fraction * len(self.batch_starts)))
        self.scheduler = _schedule(self.optimizer, config, total_steps=self._total_steps())
        self.averaged = WeightAverage(model, self._ema_steps()) if config.ema_horizon > 0 else None
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.kept_key: tuple[float, float] | None = None
        self.kept_epoch = 0
        self.kept_state: dict[str, torch.Tensor] | None = None
        self.kept_probs: np.ndarray | None = None
        self.diverged = False
        self.elapsed = 0.0

    @property
    def finished(self) -> bool:
        return self.diverged or self.epoch >= self.config.epochs

    def _total_steps(self) -> int:
        return (self.config.epochs - 1) * len(self.batch_starts) + self.first_epoch_steps

    def _ema_steps(self) -> float:
        return self.config.ema_horizon * self._total_steps()

    def set_epochs(self, epochs: int) -> None:
        """Re-plans the run for `epochs` in all: the learning-rate schedule and the weights' moving average
        stretch or shrink over the steps left, from where the run is."""
        if epochs == self.config.epochs:
            return
        self.config = replace(self.config, epochs=epochs)
        done_steps = self.scheduler.last_epoch
        self.scheduler = _schedule(self.optimizer, self.config, self._total_steps(), done_steps=done_steps)
        if self.averaged:
            self.averaged.set_horizon(self._ema_steps())

    def _replan_to_allowance(self) -> None:
        """Sets the epochs that end training and validation within the time allowance, at the pace of the
        epochs after the first: a long trial planned at a pace timed beforehand ended a sixth early, and a
        slower one is cut by the search's deadline before its schedule has annealed."""
        pace = (self.history[-1]["seconds"] - self.history[0]["seconds"]) / (len(self.history) - 1)
        fitting = self.epoch + int((self.config.time_allowance_s - self.elapsed) / max(pace, 1e-9))
        self.set_epochs(max(self.epoch, min(fitting, int(MAX_REPLAN_FACTOR * self.config.epochs))))

    def run_epoch(self) -> dict[str, float] | None:
        """Trains one epoch and validates; returns the epoch's report, or None if the loss diverged."""
        started = time.perf_counter()
        self.model.train()
        order = torch.randperm(len(self.train_x), generator=self.generator).to(self.device)
        loss_sum = torch.zeros((), device=self.device)
        batch_starts = self.batch_starts[:self.first_epoch_steps] if self.epoch == 0 else self.batch_starts
        for start in batch_starts:
            rows = order[start:start + self.config.batch_size]
            loss_sum += self._step(self.train_x[rows], self.train_y[rows])
        train_loss = float(loss_sum) / max(1, len(batch_starts))
        trained_rows = min(len(self.train_x), len(batch_starts) * self.config.batch_size)
        train_seconds = time.perf_counter() - started
        network = self.averaged.model if self.averaged else self.model
        validating = len(self.val_x) > 0
        probs = predict_proba(network, self.val_x, self.config.eval_batch_size) if validating else None
        self.epoch += 1
        self.elapsed += time.perf_counter() - started
        if not math.isfinite(train_loss) or (validating and not np.isfinite(probs).all()):
            self.diverged = True
            return None
        report = {"epoch": self.epoch, "train_loss": train_loss,
                  **(metrics.classification_report(probs, self.fold.val_labels) if validating else {}),
                  "samples_per_s": trained_rows / train_seconds, "seconds": self.elapsed,
                  "lr": self.scheduler.get_last_lr()[0]}
        self.history.append(report)
        if self.config.time_allowance_s > 0 and self.epoch == REPLAN_AFTER_EPOCH == len(self.history):
            self._replan_to_allowance()
        key = (report["abs_sum"], report["log_loss"]) if validating else (0.0, 0.0)
        if self.kept_key is None or key < self.kept_key or self.config.keep == "last":
            self.kept_key, self.kept_epoch, self.kept_probs = key, self.epoch, probs
            self.kept_state = _state_on_cpu(network)
        return report

    def _step(self, signals: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One optimisation step on a batch (augmented when the config says so); returns its loss."""
        augmentation = self.config.augmentation
        if replace(augmentation, mixup=0.0).enabled:  # mixup alone needs no per-beat transform
            signals = augment(signals, augmentation, self.generator)

        def loss_of(logits, targets):
            return training_loss(logits, targets, self.fold.n_classes, self.config.loss,
                                 self.config.label_smoothing, self.class_weights)

        if augmentation.mixup > 0:
            signals, partners, share = mix(signals, labels, augmentation.mixup, self.generator)
            logits = self.model(signals)
            loss = share * loss_of(logits, labels) + (1.0 - share) * loss_of(logits, partners)
        else:
            loss = loss_of(self.model(signals), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        if self.averaged:
            self.averaged.update(self.model)
        return loss.detach()

    def fit(self, on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
        """Runs the remaining epochs, calling `on_epoch` with each report; stops early on divergence."""
        while not self.finished:
            report = self.run_epoch()
            if report is not None and on_epoch is not None:
                on_epoch(report)
        return self.result()

    def result(self) -> TrainResult:
        """The run so far: history and kept epoch (uniform probabilities if no epoch finished cleanly)."""
        kept_probs = self.kept_probs
        if kept_probs is None:  # no epoch finished cleanly, or nothing to validate
            kept_probs = np.full((len(self.val_x), self.fold.n_classes), 1.0 / self.fold.n_classes, np.float32)
        return TrainResult(
            history=list(self.history),
            kept_epoch=self.kept_epoch,
            kept_metrics=self.history[self.kept_epoch - 1] if self.kept_epoch else {},
            kept_state=self.kept_state if self.kept_state is not None else _state_on_cpu(self.model),
            kept_val_probs=kept_probs,
            diverged=self.diverged,
            seconds=self.elapsed,
            config=asdict(self.config),
        )

    def state_dict(self) -> dict:
        """Everything needed to resume: tensors, numbers, strings and lists only, so that it loads
        with `torch.load(..., weights_only=True)`."""
        state = {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(), "epoch": self.epoch, "history": self.history,
            "kept_key": list(self.kept_key) if self.kept_key else None, "kept_epoch": self.kept_epoch,
            "kept_state": self.kept_state, "diverged": self.diverged, "elapsed": self.elapsed,
            "kept_probs": None if self.kept_probs is None else torch.from_numpy(self.kept_probs),
            "averaged": self.averaged.state_dict() if self.averaged else None,
            "epochs": self.config.epochs,
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restores a state saved by `state_dict` (from a Trainer with the same model, fold and config)."""
        self.set_epochs(state.get("epochs", self.config.epochs))  # first: the optimiser's state is the run's
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        state = {LEGACY_STATE_NAMES.get(key, key): value for key, value in state.items()}
        self.epoch, self.history = state["epoch"], list(state["history"])
        self.kept_key = tuple(state["kept_key"]) if state["kept_key"] else None
        self.kept_epoch, self.kept_state = state["kept_epoch"], state["kept_state"]
        self.diverged, self.elapsed = state["diverged"], state["elapsed"]
        self.kept_probs = None if state["kept_probs"] is None else state["kept_probs"].numpy()
        if self.averaged and state.get("averaged") is not None:
            self.averaged.load_state_dict(state["averaged"])


def train(
    model: nn.Module,
    fold: Fold,
    config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Trains `model` on the fold's training rows and validates after every epoch.

    Args:
        model: a network returning logits (see `ecgtune.models`).
        fold: training and validation arrays (see `ecgtune.data.prepare_fold`).
        config: optimisation settings.
        on_epoch: called with each epoch's report: epoch, train_loss, abs_sum (argmax decisions),
            abs_sum_proba, log_loss, accuracy, samples_per_s, seconds, lr.

    A loss that turns NaN or infinite stops training; the result is then marked `diverged`.
    """
    return Trainer(model, fold, config).fit(on_epoch)


class WeightAverage:
    """An exponential moving average of a model's weights and buffers over about `horizon_steps` steps
    (with a warm-up, so that the first steps do not drag the average towards the initialisation)."""

    def __init__(self, model: nn.Module, horizon_steps: float):
        self.model = copy.deepcopy(model).eval()
        self.set_horizon(horizon_steps)
        self.updates = 0

    def set_horizon(self, horizon_steps: float) -> None:
        """Averages over about `horizon_steps` steps from now on (a re-planned run's share of its steps)."""
        self.decay = 1.0 - 1.0 / max(1.0, horizon_steps)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Moves the average towards the model's current weights."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.model.state_dict().values(), model.state_dict().values()):
            if average.is_floating_point():
                average.lerp_(current, 1.0 - decay)
            else:
                average.copy_(current)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]


def _state_on_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def training_pace(family: str, model_config: dict, signal_length: int, n_classes: int, batch_size: int = 256,
                  batches: int = 2, repeats: int = 2, device: str = "auto") -> float:
    """Seconds per training row of the family's network at `batch_size` on this process's device and
    threads: the fastest of `repeats` epochs of `batches` batches of random beats, after a warm-up epoch
    of the same (the first steps pay for allocation and kernel selection). The fastest, because another
    process's burst of work only ever slows an epoch down: one timed epoch on a busy laptop once halved
    the pace and sent its search into long trials."""
    rows = batch_size * batches
    signals = np.random.default_rng(0).standard_normal((rows, signal_length), dtype=np.float32)
    labels = np.arange(rows) % n_classes
    fold = Fold(signals, labels, signals[:0], labels[:0], n_classes=n_classes)
    model = create_model(family, n_classes=n_classes, **model_config)
    trainer = Trainer(model, fold, TrainConfig(epochs=1 + repeats, batch_size=batch_size, device=device))
    trainer.run_epoch()
    return min(1.0 / trainer.run_epoch()["samples_per_s"] for _ in range(repeats))


def train_family(
    family: str,
    fold: Fold,
    model_config: dict | None = None,
    config: TrainConfig = TrainConfig(),
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> tuple[nn.Module, TrainResult]:
    """Builds the family with a seeded initialisation, trains it, and loads its kept epoch's weights."""
    torch.manual_seed(config.seed)
    model = create_model(family, n_classes=fold.n_classes, **(model_config or {}))
    result = train(model, fold, config, on_epoch)
    model.load_state_dict(result.kept_state)
    return model, result
