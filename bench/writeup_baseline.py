"""The write-up's way of doing things, re-implemented as the benchmarks' reference point:
pandas + a per-row `split(',')` to parse, and a Dataset + DataLoader loop (batch 32, a host-to-device
copy per batch, Adam and the L1 loss on softmax outputs) to train."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch


def parse_like_the_write_up(path) -> pd.DataFrame:
    """Read with pandas, split each signal string in Python, rebuild a wide DataFrame."""
    frame = pd.read_csv(path)
    has_label = "label" in frame.columns
    rows = []
    for values in frame.values:
        row = [values[0]] + [float(token) for token in values[1].split(",")]
        rows.append(row + [values[2]] if has_label else row)
    wide = pd.DataFrame(np.array(rows))
    length = wide.shape[1] - 1 - int(has_label)
    wide.columns = ["id"] + [str(i) for i in range(length)] + (["label"] if has_label else [])
    return wide


class BeatDataset(torch.utils.data.Dataset):
    def __init__(self, signals: torch.Tensor, targets: torch.Tensor):
        self.signals, self.targets = signals, targets

    def __getitem__(self, index):
        return self.signals[index], self.targets[index]

    def __len__(self):
        return len(self.signals)


def train_like_the_write_up(model, signals: np.ndarray, labels: np.ndarray, device, n_classes: int = 4,
                            batch_size: int = 32, smoothing: float = 0.1) -> float:
    """One epoch of the write-up's loop over the given rows; returns training samples per second."""
    one_hot = torch.zeros(len(labels), n_classes).scatter_(1, torch.as_tensor(labels).long().view(-1, 1), 1)
    loader = torch.utils.data.DataLoader(BeatDataset(torch.FloatTensor(signals), one_hot),
                                         batch_size=batch_size, shuffle=True)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    started = time.perf_counter()
    seen = 0
    for batch, target in loader:
        batch, target = batch.to(device), target.to(device)
        optimizer.zero_grad()
        target = target.clamp(smoothing / (n_classes - 1), 1.0 - smoothing)
        loss = (model(batch).softmax(dim=1) - target).abs().sum()
        loss.backward()
        optimizer.step()
        seen += len(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started)
