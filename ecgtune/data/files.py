"""Competition-format files in and out: CSV, gzip-compressed CSV and Parquet.

A file has the columns `id,heartbeat_signals[,label]`; `heartbeat_signals` is one quoted string of
comma-separated floats (in Parquet it may also be a list of floats) and `label` an integer class that
may be written `0` or `0.0`. Parsing is vectorised with Arrow: a well-formed CSV is read as one wide
table of floats on all cores; anything that fails that fast path is parsed again column by column so
the error can name the row and the problem.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ecgtune.atomic import atomic_path
from ecgtune.data import cache
from ecgtune.errors import DataError, DataWarning

ID, SIGNALS, LABEL = "id", "heartbeat_signals", "label"
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_MAGIC = b"\x1f\x8b"
NUMBER_PATTERN = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)\s*$"
FAST_PATH_BLOCK_BYTES = 1 << 21
MAX_CLASSES = 1000


@dataclass(frozen=True)
class HeartbeatData:
    """Beats read from one file (or generated): ids, signals and, for training files, labels.

    Attributes:
        ids: (n,) row ids, int64 (or str when a file's ids are not integers).
        signals: (n, signal_length) float32 samples.
        labels: (n,) int64 classes 0..n_classes-1, or None for an unlabelled (test) file.
        source: the file the rows came from, or a description of how they were made.
    """

    ids: np.ndarray
    signals: np.ndarray
    labels: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    @property
    def signal_length(self) -> int:
        return int(self.signals.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of classes the labels imply (largest label + 1); 0 without labels."""
        return 0 if self.labels is None or len(self.labels) == 0 else int(self.labels.max()) + 1

    def class_counts(self) -> np.ndarray:
        """Rows per class."""
        return np.bincount(self.labels, minlength=self.n_classes) if self.labels is not None else np.zeros(0)


def load_dataset(
    path: str | os.PathLike,
    *,
    signal_length: int | None = None,
    n_classes: int | None = None,
    require_labels: bool = False,
    use_cache: bool = True,
) -> HeartbeatData:
    """Reads a competition-format CSV, CSV.gz or Parquet file, validated, through the content cache.

    Args:
        path: the file.
        signal_length: samples every beat must have (a test file must match its training file).
        n_classes: labels must lie in 0..n_classes-1; by default the labels decide the class count.
        require_labels: refuse a file without a label column.
        use_cache: read from and write to the cache (see `ecgtune.data.cache`).

    Raises:
        DataError: naming the file, the row and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    stat = path.stat()
    root = cache.cache_root()
    digest = cache.known_digest(root, path, stat) if use_cache else None
    content = None
    if digest is None:
        content = _read_bytes(path, stat.st_size)
        digest = cache.content_digest(content)
    entry = cache.load_entry(root, digest) if use_cache else None
    if entry is None:
        if content is None:
            content = _read_bytes(path, stat.st_size)
        arrays, notes = _parse(path, content)
        if use_cache:
            cache.store_entry(root, digest, arrays, notes)
    else:
        arrays, notes = entry
    if use_cache:
        cache.remember_digest(root, path, stat, digest)
    for note in notes:
        warnings.warn(DataWarning(f"{path}: {note}"), stacklevel=2)
    data = HeartbeatData(arrays["ids"], arrays["signals"], arrays["labels"], str(path))
    _check_expectations(data, signal_length, n_classes, require_labels)
    return data


def write_dataset(data: HeartbeatData, path: str | os.PathLike) -> None:
    """Writes beats in the competition format: `.csv`, `.csv.gz` or `.parquet`, by the file's suffix.

    The file appears whole or not at all (written to a temporary file, then renamed).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    table = _competition_table(data, as_text=suffix not in PARQUET_SUFFIXES)
    try:
        with atomic_path(path) as temporary:
            if suffix in PARQUET_SUFFIXES:
                pq.write_table(table, temporary)
            else:
                with pa.output_stream(str(temporary), compression="gzip" if suffix == ".gz" else None) as stream:
                    stream.write(",".join(table.column_names).encode() + b"\n")
                    pa_csv.write_csv(table, stream, pa_csv.WriteOptions(include_header=False))
    except OSError as error:
        raise DataError(f"{path}: cannot write ({error.strerror or error})") from None


def _competition_table(data: HeartbeatData, as_text: bool) -> pa.Table:
    n_rows, length = data.signals.shape
    values = pa.array(np.ascontiguousarray(data.signals, dtype=np.float32).ravel())
    offsets = pa.array(np.arange(0, n_rows * length + 1, length, dtype=np.int64))
    if as_text:
        beats = pc.binary_join(pa.LargeListArray.from_arrays(offsets, pc.cast(values, pa.string())), ",")
    else:
        beats = pa.LargeListArray.from_arrays(offsets, values)
    columns = {ID: pa.array(data.ids), SIGNALS: beats}
    if data.labels is not None:
        columns[LABEL] = pa.array(data.labels)
    return pa.table(columns)


def _read_bytes(path: Path, size: int) -> pa.Buffer:
    if size == 0:
        raise DataError(f"{path}: file is empty")
    try:
        return pa.memory_map(str(path)).read_buffer()
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error})") from None


def _parse(path: Path, content: pa.Buffer) -> tuple[dict[str, np.ndarray | None], list[str]]:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            table = pq.read_table(pa.BufferReader(content))
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{path}: not a readable Parquet file ({_short(error)})") from None
        _require_columns(path, table.column_names)
        rows = _Rows.of(path)
        return _validated(rows, *_columns_from_table(rows, table))
    if content[:2].to_pybytes() == GZIP_MAGIC:
        try:
            content = pa.py_buffer(pa.input_stream(pa.BufferReader(content), compression="gzip").read())
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{path}: not a readable gzip file ({_short(error)})") from None
    head = content[: 1 << 20].to_pybytes().lstrip(b"\xef\xbb\xbf")
    if not head.strip():
        raise DataError(f"{path}: file is empty")
    lines = head.split(b"\n", 2)
    columns = [name.strip().strip('"') for name in lines[0].decode("utf-8", "replace").strip().split(",")]
    _require_columns(path, columns)
    if len(lines) < 2 or not lines[1].strip():
        raise DataError(f"{path}: no data rows after the header")
    rows = _Rows.of(path)
    if columns in ([ID, SIGNALS], [ID, SIGNALS, LABEL]):
        first_row_fields = lines[1].count(b",") + 1
        fast = _read_wide_csv(content, first_row_fields, has_labels=LABEL in columns)
        if fast is not None:
            return _validated(rows, *fast)
    return _validated(rows, *_columns_from_table(rows, _read_text_csv(path, content, columns)))


def _require_columns(path: Path, columns: list[str]) -> None:
    for required in (ID, SIGNALS):
        if required not in columns:
            raise DataError(f"{path}: missing column '{required}' (found: {', '.join(columns)})")


def _read_wide_csv(content: pa.Buffer, n_fields: int, has_labels: bool):
    """The fast path: the quoted signal string read as separate float columns, or None if anything is off."""
    length = n_fields - 1 - int(has_labels)
    if length < 3:
        return None
    names = [ID] + [f"s{i}" for i in range(length)] + ([LABEL] if has_labels else [])
    types = {name: pa.float64() for name in names[2:length]}  # Arrow parses doubles faster than floats
    types.update({ID: pa.int64(), names[1]: pa.string(), names[length]: pa.string(), LABEL: pa.float64()})
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(content),
            read_options=pa_csv.ReadOptions(skip_rows=1, column_names=names, block_size=FAST_PATH_BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(quote_char=False),
            convert_options=pa_csv.ConvertOptions(column_types=types),
        )
        first = pc.cast(pc.utf8_ltrim(table.column(1), '"'), pa.float32())
        last = pc.cast(pc.utf8_rtrim(table.column(length), '"'), pa.float32())
    except (pa.ArrowException, OSError):
        return None
    if any(column.null_count for column in [first, last] + table.columns[:length + 1]):
        return None
    labels = None
    if has_labels:
        if table.column(LABEL).null_count:
            return None
        labels = table.column(LABEL).to_numpy()
    signals = np.empty((table.num_rows, length), dtype=np.float32)
    signals[:, 0], signals[:, -1] = first.to_numpy(), last.to_numpy()
    start = 0
    for batch in table.select(names[2:length]).to_batches():  # block by block: no large temporaries
        signals[start:start + batch.num_rows, 1:-1] = batch.to_tensor(row_major=True).to_numpy()
        start += batch.num_rows
    return table.column(ID).to_numpy(), signals, labels


def _read_text_csv(path: Path, content: pa.Buffer, columns: list[str]) -> pa.Table:
    wanted = [name for name in (ID, SIGNALS, LABEL) if name in columns]
    malformed = []

    def remember_malformed(row) -> str:
        malformed.append(row)
        return "skip"

    try:
        table = pa_csv.read_csv(
            pa.BufferReader(content),
            read_options=pa_csv.ReadOptions(use_threads=False),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=remember_malformed),
            convert_options=pa_csv.ConvertOptions(
                include_columns=wanted, column_types={name: pa.string() for name in wanted}
            ),
        )
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{path}: malformed CSV ({_short(error)})") from None
    if malformed:
        row = malformed[0]
        raise DataError(
            f"{path}: line {row.number}: expected {row.expected_columns} fields, got {row.actual_columns} "
            f"(a quote missing or an extra comma?): {_short(row.text, 80)}"
        )
    return table


class _Rows:
    """Names a row in messages: its id and where it sits in the file."""

    def __init__(self, path: Path, unit: str, first: int, ids: np.ndarray | None = None):
        self.path, self.unit, self.first, self.ids = path, unit, first, ids

    @classmethod
    def of(cls, path: Path, ids: np.ndarray | None = None) -> _Rows:
        """Parquet rows are counted from 0; CSV rows by line, the first data row being line 2."""
        return cls(path, "row", 0, ids) if path.suffix.lower() in PARQUET_SUFFIXES else cls(path, "line", 2, ids)

    def at(self, row: int) -> str:
        place = f"{self.unit} {row + self.first}"
        return f"{self.path}: row id {self.ids[row]} ({place})" if self.ids is not None else f"{self.path}: {place}"


def _columns_from_table(rows: _Rows, table: pa.Table):
    """The careful path: each column checked, so that errors name the row and the problem."""
    ids = _first_null_check(rows, table.column(ID).combine_chunks(), "missing id")
    try:
        ids = pc.cast(ids, pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        ids = np.asarray(ids.to_pylist(), dtype=str)
    rows.ids = ids
    signals = _signals_from_column(rows, table.column(SIGNALS).combine_chunks())
    labels = None
    if LABEL in table.column_names:
        labels = _first_null_check(rows, table.column(LABEL).combine_chunks(), "missing label")
        if _is_text(labels.type):
            labels = _numbers(rows, labels, pa.float64(), "label {token!r} is not a number")
        labels = pc.cast(labels, pa.float64()).to_numpy()
    return ids, signals, labels


def _is_text(data_type: pa.DataType) -> bool:
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


def _first_null_check(rows: _Rows, column: pa.Array, problem: str) -> pa.Array:
    empty = column.is_null()
    if _is_text(column.type):
        empty = pc.or_(empty, pc.equal(pc.utf8_trim_whitespace(column), ""))
    empty = empty.to_numpy(zero_copy_only=False)
    if empty.any():
        raise DataError(f"{rows.at(int(np.argmax(empty)))}: {problem}")
    return column


def _signals_from_column(rows: _Rows, column: pa.Array) -> np.ndarray:
    column = _first_null_check(rows, column, "no heartbeat_signals")
    if _is_text(column.type):
        column = pc.split_pattern(column, ",")
    elif not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)
              or pa.types.is_fixed_size_list(column.type)):
        raise DataError(f"{rows.path}: column '{SIGNALS}' has type {column.type}, expected text or a list of floats")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    expected = int(np.bincount(lengths).argmax())
    wrong = lengths != expected
    if wrong.any():
        row = int(np.argmax(wrong))
        raise DataError(f"{rows.at(row)}: expected {expected} samples, got {lengths[row]}")
    values = pc.list_flatten(column)
    if _is_text(values.type):

        def sample_at(token_index: int) -> str:
            return f"{rows.at(token_index // expected)}: sample {token_index % expected}"

        values = _numbers(rows, values, pa.float32(), "{token!r} is not a number", sample_at)
    elif values.null_count:
        token_index = int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))
        raise DataError(f"{rows.at(token_index // expected)}: sample {token_index % expected} is missing")
    return pc.cast(values, pa.float32()).to_numpy(zero_copy_only=False).reshape(len(lengths), expected)


def _numbers(rows: _Rows, tokens: pa.Array, target: pa.DataType, problem: str, where=None) -> pa.Array:
    """Casts text to numbers; the first token that is not a number is reported with its place."""
    where = where or rows.at
    numeric = pc.match_substring_regex(tokens, NUMBER_PATTERN).to_numpy(zero_copy_only=False)
    if not numeric.all():
        index = int(np.argmax(~numeric))
        raise DataError(f"{where(index)}: " + problem.format(token=tokens[index].as_py()))
    return pc.cast(pc.utf8_trim_whitespace(tokens), target)


def _validated(rows: _Rows, ids: np.ndarray, signals: np.ndarray, labels: np.ndarray | None):
    rows.ids = ids
    if not np.isfinite(signals.sum(dtype=np.float64)):
        bad = ~np.isfinite(signals)
        if bad.any():
            row = int(np.argmax(bad.any(axis=1)))
            sample = int(np.argmax(bad[row]))
            kind = "NaN" if np.isnan(signals[row, sample]) else "infinite"
            raise DataError(f"{rows.at(row)}: sample {sample} is {kind}")
    unique_ids, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        duplicate = unique_ids[np.argmax(counts > 1)]
        first, second = np.flatnonzero(ids == duplicate)[:2]
        raise DataError(f"{rows.at(int(second))}: duplicate id (first seen at {rows.unit} {first + rows.first})")
    notes = []
    outside = (signals.min(axis=1) < 0) | (signals.max(axis=1) > 1) if signals.min() < 0 or signals.max() > 1 else None
    if outside is not None:
        row = int(np.argmax(outside))
        notes.append(
            f"{int(outside.sum())} rows have values outside [0, 1], the competition's range "
            f"(first: id {ids[row]}, range {signals[row].min():.4g}..{signals[row].max():.4g}); continuing"
        )
    if labels is not None:
        labels = _integer_labels(rows, labels)
        counts = np.bincount(labels)
        if (counts == 0).any():
            empty = ", ".join(str(c) for c in np.flatnonzero(counts == 0))
            notes.append(f"no rows of class {empty} (labels run 0..{len(counts) - 1}); continuing")
    return {"ids": ids, "signals": signals, "labels": labels}, notes


def _integer_labels(rows: _Rows, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.float64)
    bad = ~np.isfinite(labels) | (labels != np.round(labels))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{rows.at(row)}: label {labels[row]:g} is not an integer class")
    outside = (labels < 0) | (labels >= MAX_CLASSES)
    if outside.any():
        row = int(np.argmax(outside))
        raise DataError(f"{rows.at(row)}: label {labels[row]:g} is out of range "
                        f"(classes are 0, 1, 2, ..., at most {MAX_CLASSES})")
    return labels.astype(np.int64)


def _check_expectations(data: HeartbeatData, signal_length, n_classes, require_labels) -> None:
    if require_labels and data.labels is None:
        raise DataError(f"{data.source}: no '{LABEL}' column; training data needs labels")
    if signal_length is not None and data.signal_length != signal_length:
        raise DataError(
            f"{data.source}: beats have {data.signal_length} samples, expected {signal_length} "
            "(the training data's length)"
        )
    if n_classes is not None and data.labels is not None and data.n_classes > n_classes:
        rows = _Rows.of(Path(data.source), data.ids)
        row = int(np.argmax(data.labels >= n_classes))
        raise DataError(f"{rows.at(row)}: label {data.labels[row]} is out of range 0..{n_classes - 1}")


def _short(error: Exception, limit: int = 300) -> str:
    message = " ".join(str(error).split())
    return message if len(message) <= limit else message[:limit] + " ..."
