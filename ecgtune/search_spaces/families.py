"""One define-by-run search space per architecture family, named as in the model registry.

Parameters are named `<family>/<config field>`. A per-layer field is sampled entry by entry as
`<field>.0`, `<field>.1`, ... with its length as `<field>.len` (fields of the same layers share it).
Only suggestions live here; `ecgtune.search_spaces.model_kwargs` turns them into a model config.

The widths are sized for a CPU core as much as for a GPU: on these 205-sample beats a network of a
few million multiply-accumulates per beat trains 5-10x faster than the write-up's sizes, so a laptop
search runs tens of trials instead of a handful, though at equal epochs it scores worse (BENCHMARKS.md,
section 11b). `COMPACT` is each family's compact starting point: the searcher tries it first.
"""

from __future__ import annotations

KERNELS = [3, 5, 7, 9, 11]

COMPACT_WIDTHS = {
    "dilated_cnn": {"stem_width": 16, "widths": (32, 64)},
    "multiscale_cnn": {"branch_width": 16, "widths": (32, 64)},
    "plain_cnn": {"widths": (16, 32, 64, 64)},
    "cnn_lstm": {"widths": (16, 32, 64), "kernel_sizes": (11, 7, 3), "pool_factor": 4, "lstm_hidden": 32},
    "vgg_cnn": {"widths": (16, 16, 32, 32, 64, 64), "hidden": (128, 64)},
    "resnet1d": {"stem_width": 32, "width": 64, "bottleneck_width": 16, "blocks": (2,)},
}
# changes to the family's defaults; every value lies in the family's space. Every start reads each
# sample's place in its window: 3-5 % better held out, in the same time (BENCHMARKS 11p)
COMPACT = {family: {**widths, "position_channel": True} for family, widths in COMPACT_WIDTHS.items()}


def _per_layer(trial, name: str, length: int, **choices: list) -> None:
    for field, options in choices.items():
        for index in range(length):
            trial.suggest_categorical(f"{name}/{field}.{index}", options)


def dilated_cnn(trial) -> None:
    name = "dilated_cnn"
    trial.suggest_categorical(f"{name}/stem_width", [8, 16, 32, 64])
    trial.suggest_categorical(f"{name}/stem_kernel", [7, 11, 15])
    depth = trial.suggest_int(f"{name}/widths.len", 1, 3)
    _per_layer(trial, name, depth, widths=[16, 32, 64, 128], kernel_sizes=[3, 6, 11], strides=[2, 3, 5])
    trial.suggest_categorical(f"{name}/dilated_kernel", [5, 7, 11])
    trial.suggest_int(f"{name}/dilation", 1, 4)
    trial.suggest_categorical(f"{name}/pool_size", [2, 4, 8])


def multiscale_cnn(trial) -> None:
    name = "multiscale_cnn"
    branches = trial.suggest_int(f"{name}/branch_kernels.len", 2, 4)
    _per_layer(trial, name, branches, branch_kernels=[3, 7, 11, 17, 25])
    trial.suggest_categorical(f"{name}/branch_width", [8, 16, 32])
    depth = trial.suggest_int(f"{name}/widths.len", 1, 3)
    _per_layer(trial, name, depth, widths=[16, 32, 64, 128], kernel_sizes=[3, 5, 7, 11])
    trial.suggest_int(f"{name}/dilation", 1, 3)
    trial.suggest_categorical(f"{name}/pool_size", [2, 4, 8])


def plain_cnn(trial) -> None:
    name = "plain_cnn"
    depth = trial.suggest_int(f"{name}/widths.len", 2, 6)
    _per_layer(trial, name, depth, widths=[8, 16, 32, 64, 128], kernel_sizes=KERNELS)
    trial.suggest_int(f"{name}/dilation", 1, 3)
    trial.suggest_categorical(f"{name}/pool_factor", [2, 4])
    trial.suggest_categorical(f"{name}/pool_size", [2, 4, 8])


def cnn_lstm(trial) -> None:
    name = "cnn_lstm"
    depth = trial.suggest_int(f"{name}/widths.len", 2, 4)
    _per_layer(trial, name, depth, widths=[16, 32, 64, 128], kernel_sizes=KERNELS)
    trial.suggest_int(f"{name}/dilation", 1, 3)
    trial.suggest_categorical(f"{name}/pool_factor", [2, 4])
    trial.suggest_categorical(f"{name}/lstm_hidden", [16, 32, 64])
    trial.suggest_int(f"{name}/lstm_layers", 1, 2)
    trial.suggest_categorical(f"{name}/bidirectional", [True, False])


def vgg_cnn(trial) -> None:
    name = "vgg_cnn"
    convolutions = trial.suggest_int(f"{name}/widths.len", 4, 8, step=2)
    _per_layer(trial, name, convolutions, widths=[8, 16, 32, 64, 128])
    trial.suggest_categorical(f"{name}/kernel_size", [3, 5, 7])
    trial.suggest_int(f"{name}/dilation", 1, 2)
    trial.suggest_categorical(f"{name}/pool_size", [2, 4, 8])
    head_depth = trial.suggest_int(f"{name}/hidden.len", 1, 3)
    _per_layer(trial, name, head_depth, hidden=[32, 64, 128, 256])


def resnet1d(trial) -> None:
    name = "resnet1d"
    trial.suggest_categorical(f"{name}/stem_width", [16, 32, 64])
    trial.suggest_categorical(f"{name}/stem_kernel", [7, 11, 15])
    stages = trial.suggest_int(f"{name}/blocks.len", 1, 3)
    _per_layer(trial, name, stages, blocks=[1, 2, 3])
    trial.suggest_categorical(f"{name}/width", [32, 64, 128])
    trial.suggest_categorical(f"{name}/bottleneck_width", [8, 16, 32])
    trial.suggest_categorical(f"{name}/kernel_size", [3, 5, 7])
    trial.suggest_int(f"{name}/dilation", 1, 3)
    trial.suggest_categorical(f"{name}/pool_size", [2, 4])
