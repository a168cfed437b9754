"""Competition-format files in and out: CSV, gzip-compressed CSV and Parquet, and the submission file.

A file has the columns `id,heartbeat_signals[,label]`; `heartbeat_signals` is one quoted string of
comma-separated floats (in Parquet it may also be a list of floats) and `label` an integer class that
may be written `0` or `0.0`. The format is told by the file's first bytes (Parquet's and gzip's magic
numbers), so that the parse cache, which is keyed by content, always means one parse; a `.parquet`
name on other bytes is refused. Parsing is vectorised with Arrow: a well-formed CSV is read as separate
float columns, one part of the file per core (`ecgtune.data.wide_csv`); anything that fails that fast
path is parsed again column by column so the error can name the row and the problem. File content quoted in a message is
escaped and cut (`_shown`), so that a hostile file cannot drive the terminal or flood it.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ecgtune.atomic import atomic_path, write_text_atomically
from ecgtune.data import cache
from ecgtune.data.cache import ParsedBeats
from ecgtune.data.wide_csv import read_wide_csv
from ecgtune.errors import DataError, DataWarning

ID, SIGNALS, LABEL = "id", "heartbeat_signals", "label"
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
NUMBER_PATTERN = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)\s*$"
MAX_CLASSES = 1000
HEAD_BYTES = 1 << 20
MESSAGE_VALUE_CHARS = 80
FRAME_SOURCE = "DataFrame"  # what messages name for rows that came from a DataFrame, not a file


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
    _check_named_format(path)
    parsed = _load_through_cache(path, stat) if use_cache else _parse(path, _read_bytes(path, stat.st_size))
    return _heartbeats(str(path), parsed, signal_length, n_classes, require_labels)


def read_frame(frame, *, signal_length: int | None = None, n_classes: int | None = None,
               require_labels: bool = False) -> HeartbeatData:
    """Validates a pandas DataFrame with a file's columns (id, heartbeat_signals[, label]) as
    `load_dataset` validates the file: its rows go through the same parser, and errors name the row."""
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise DataError(f"{FRAME_SOURCE}: not convertible to a table ({_short(error)})") from None
    content = pa.BufferOutputStream()
    pq.write_table(table, content)
    return _heartbeats(FRAME_SOURCE, _parse(Path(FRAME_SOURCE), content.getvalue()), signal_length, n_classes,
                       require_labels)


def _heartbeats(source: str, parsed: ParsedBeats, signal_length, n_classes, require_labels) -> HeartbeatData:
    for note in parsed.notes:
        warnings.warn(DataWarning(f"{source}: {note}"), stacklevel=3)
    data = HeartbeatData(parsed.ids, parsed.signals, parsed.labels, source)
    _check_expectations(data, signal_length, n_classes, require_labels)
    return data


def _load_through_cache(path: Path, stat: os.stat_result) -> ParsedBeats:
    root = cache.cache_root()
    digest, content = cache.known_digest(root, path, stat), None
    if digest is None:
        content = _read_bytes(path, stat.st_size)
        digest = cache.content_digest(content)
    entry = cache.load_entry(root, digest)
    if entry is None:
        entry = _parse(path, content if content is not None else _read_bytes(path, stat.st_size))
        cache.store_entry(root, digest, entry)
    cache.remember_digest(root, path, stat, digest)
    return entry


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


def write_submission(path: Path, ids: np.ndarray, values: np.ndarray) -> None:
    """Writes `id,label_0,...` with one row per id; whole numbers are written without decimals."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id"] + [f"label_{k}" for k in range(values.shape[1])])
    for row_id, row in zip(ids.tolist(), values.tolist()):
        writer.writerow([row_id] + [f"{value:.6g}" for value in row])
    write_text_atomically(path, buffer.getvalue())


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


def _check_named_format(path: Path) -> None:
    """Refuses a file named `.parquet` that is not Parquet; checked before the cache, which knows contents only."""
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        return
    try:
        with open(path, "rb") as stream:
            start = stream.read(len(PARQUET_MAGIC))
    except OSError as error:
        raise DataError(f"{path}: cannot read the file ({error.strerror or error})") from None
    if start and start != PARQUET_MAGIC:
        raise DataError(f"{path}: not a Parquet file (those start with {PARQUET_MAGIC.decode()}; "
                        f"this one with {start!r})")


def _is_parquet(content: pa.Buffer) -> bool:
    return content[:len(PARQUET_MAGIC)].to_pybytes() == PARQUET_MAGIC


def _parse(path: Path, content: pa.Buffer) -> ParsedBeats:
    if _is_parquet(content):
        try:
            table = pq.read_table(pa.BufferReader(content))
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{path}: not a readable Parquet file ({_short(error)})") from None
        _require_columns(path, table.column_names)
        rows = _Rows(path, content)
        return _validated(rows, *_columns_from_table(rows, table))
    content = _decompressed(path, content)
    head = content[:HEAD_BYTES].to_pybytes()
    # Arrow skips a byte order mark and blank lines before the header; so does this look at it.
    lines = head.lstrip(b"\xef\xbb\xbf").lstrip(b"\r\n").splitlines(keepends=True)
    if not lines or not head.strip():
        raise DataError(f"{path}: file is empty")
    if not lines[0].endswith((b"\n", b"\r")) and len(content) > len(head):
        raise DataError(f"{path}: the header line is longer than {HEAD_BYTES:,} bytes; "
                        f"expected the columns {ID},{SIGNALS}[,{LABEL}]")
    columns = [name.strip().strip('"') for name in lines[0].decode("utf-8", "replace").strip().split(",")]
    _require_columns(path, columns)
    rows = _Rows(path, content)
    first_row = next((line for line in lines[1:] if line.strip()), None)
    if columns in ([ID, SIGNALS], [ID, SIGNALS, LABEL]) and first_row is not None:
        fast = read_wide_csv(content, first_row.count(b",") + 1, has_labels=LABEL in columns)
        if fast is not None:
            return _validated(rows, *fast)
    return _validated(rows, *_columns_from_table(rows, _read_text_csv(rows, content, columns)))


def _decompressed(path: Path, content: pa.Buffer) -> pa.Buffer:
    """The CSV text of a file's bytes: gunzipped when they are gzip-compressed."""
    if content[:2].to_pybytes() != GZIP_MAGIC:
        return content
    try:
        return pa.py_buffer(pa.input_stream(pa.BufferReader(content), compression="gzip").read())
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{path}: not a readable gzip file ({_short(error)})") from None


def _require_columns(path: Path, columns: list[str]) -> None:
    for required in (ID, SIGNALS):
        if required not in columns:
            raise DataError(f"{path}: missing column '{required}' (found: {_shown(', '.join(columns))})")
    for name in (ID, SIGNALS, LABEL):
        if columns.count(name) > 1:
            raise DataError(f"{path}: column '{name}' appears {columns.count(name)} times; which one holds the data?")


def _read_text_csv(rows: _Rows, content: pa.Buffer, columns: list[str]) -> pa.Table:
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
        raise DataError(f"{rows.path}: malformed CSV ({_short(error)})") from None
    if malformed:
        row = malformed[0]  # Arrow numbers the header and the rows after it 1, 2, ..., skipping blank lines
        place = rows.place_of_record(row.number - 1) if row.number else "a row"
        raise DataError(
            f"{rows.path}: {place}: expected {row.expected_columns} fields, got {row.actual_columns} "
            f"(a quote missing or an extra comma?): {_shown(row.text)}"
        )
    return table


class _Rows:
    """Names a row in messages: its id and where it sits in the file (a Parquet row, or a line of a CSV file)."""

    def __init__(self, path: Path, content: pa.Buffer | None = None, ids: np.ndarray | None = None):
        """`content` is the file's bytes (a CSV file's after gunzip), read again from `path` if needed and not given."""
        self.path, self.ids, self._given = path, ids, content

    def at(self, row: int) -> str:
        """The file, the row's id and its place: `FILE: row id 7 (line 9)`."""
        if self.ids is None:
            return f"{self.path}: {self.place(row)}"
        return f"{self.path}: row id {_shown(str(self.ids[row]))} ({self.place(row)})"

    def place(self, row: int) -> str:
        """`row N` of a Parquet file (from 0), or the line of a CSV file (from 1) on which data row `row` starts."""
        if self._content is not None and _is_parquet(self._content):
            return f"row {row}"
        return self.place_of_record(row + 1)

    def place_of_record(self, record: int) -> str:
        """The line on which a CSV file's record starts, counting the header as record 0 and skipping blank lines."""
        lines = self._record_lines
        if lines is None or not 0 <= record < len(lines):
            return f"data row {record}"  # the file changed since, or its quoting fooled `_record_start_lines`
        return f"line {lines[record]}"

    @cached_property
    def _content(self) -> pa.Buffer | None:
        if self._given is not None:
            return self._given
        try:
            return _decompressed(self.path, _read_bytes(self.path, self.path.stat().st_size))
        except (DataError, OSError):
            return None

    @cached_property
    def _record_lines(self) -> np.ndarray | None:
        return None if self._content is None else _record_start_lines(self._content)


def _record_start_lines(content: pa.Buffer) -> np.ndarray:
    """The line number (from 1) on which each non-blank CSV record starts, the header being record 0.

    Arrow's reader skips blank lines and lets a quoted value run over line ends, so data row i is not
    always on line i + 2. A line ends at LF, CRLF or a lone CR; it ends a record only outside quotes,
    told by the parity of the quotes before it (an escaped quote "" counts twice). Only byte positions
    are kept, so this costs little memory even for a large file; it runs only to word an error.
    """
    data = np.frombuffer(content, dtype=np.uint8)
    line_feeds, returns, quotes = (_positions(data, byte) for byte in b'\n\r"')
    crlf_feeds = returns[np.isin(returns + 1, line_feeds)] + 1
    line_ends = np.union1d(line_feeds, returns[~np.isin(returns + 1, line_feeds)])  # last byte of each line end
    record_ends = line_ends[np.searchsorted(quotes, line_ends) % 2 == 0]
    starts = np.concatenate([[0], record_ends + 1])
    ends = np.concatenate([record_ends - np.isin(record_ends, crlf_feeds), [len(data)]])  # without the line end
    non_blank = (ends > starts) & (starts < len(data))
    return 1 + np.searchsorted(line_ends, starts[non_blank])


def _positions(data: np.ndarray, byte: int) -> np.ndarray:
    """Offsets of `byte` in `data`, found a few MB at a time."""
    chunk = 1 << 22
    found = [np.flatnonzero(data[at:at + chunk] == byte) + at for at in range(0, len(data), chunk)]
    return np.concatenate([np.zeros(0, dtype=np.intp), *found])


def _columns_from_table(rows: _Rows, table: pa.Table):
    """The careful path: each column checked, so that errors name the row and the problem."""
    if table.num_rows == 0:
        raise DataError(f"{rows.path}: no data rows")
    ids = _first_null_check(rows, _column(rows, table, ID), "missing id")
    try:
        ids = pc.cast(ids, pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        ids = np.asarray(ids.to_pylist(), dtype=str)
    rows.ids = ids
    signals = _signals_from_column(rows, _column(rows, table, SIGNALS))
    labels = None
    if LABEL in table.column_names:
        labels = _first_null_check(rows, _column(rows, table, LABEL), "missing label")
        if _is_text(labels.type):
            labels = _numbers(rows, labels, pa.float64(), "label {token} is not a number")
        labels = pc.cast(labels, pa.float64()).to_numpy()
    return ids, signals, labels


def _column(rows: _Rows, table: pa.Table, name: str) -> pa.Array:
    """A column as one array (dictionary-encoded text decoded); a type it cannot hold is refused by name."""
    column = table.column(name).combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):  # text as older writers store it
        try:
            column = column.cast(pa.large_string())
        except pa.ArrowInvalid:
            raise DataError(f"{rows.path}: column '{name}' holds bytes that are not UTF-8 text") from None
    if name == SIGNALS:
        usable = _is_text(column.type) or _is_list(column.type) and _is_text_or_number(column.type.value_type)
        accepted = "text (comma-separated numbers) or a list of numbers"
    else:
        usable = _is_text_or_number(column.type)
        accepted = "text or a number"
    if not (usable or pa.types.is_null(column.type)):  # a column of nulls is reported as missing values
        raise DataError(f"{rows.path}: column '{name}' has type {_shown(str(column.type))}; "
                        f"expected {accepted} (integer, floating point, decimal or boolean)")
    return column


def _is_text(data_type: pa.DataType) -> bool:
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


def _is_text_or_number(data_type: pa.DataType) -> bool:
    return _is_text(data_type) or any(is_kind(data_type) for is_kind in (
        pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal, pa.types.is_boolean))


def _is_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) or pa.types.is_large_list(data_type) or pa.types.is_fixed_size_list(data_type)


def _first_null_check(rows: _Rows, column: pa.Array, problem: str) -> pa.Array:
    empty = column.is_null()
    if _is_text(column.type):
        empty = pc.or_(empty, pc.equal(pc.utf8_trim_whitespace(column), ""))
    elif _is_list(column.type):
        empty = pc.or_(empty, pc.equal(pc.list_value_length(column), 0))
    empty = empty.to_numpy(zero_copy_only=False)
    if empty.any():
        raise DataError(f"{rows.at(int(np.argmax(empty)))}: {problem}")
    return column


def _signals_from_column(rows: _Rows, column: pa.Array) -> np.ndarray:
    column = _first_null_check(rows, column, "no heartbeat_signals")
    if _is_text(column.type):
        column = pc.split_pattern(column, ",")
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    seen, counts = np.unique(lengths, return_counts=True)  # not bincount: one absurd length would allocate for it
    expected = int(seen[counts.argmax()])
    wrong = lengths != expected
    if wrong.any():
        row = int(np.argmax(wrong))
        raise DataError(f"{rows.at(row)}: expected {expected} samples, got {lengths[row]}")
    values = pc.list_flatten(column)
    if _is_text(values.type):

        def sample_at(token_index: int) -> str:
            return f"{rows.at(token_index // expected)}: sample {token_index % expected}"

        values = _numbers(rows, values, pa.float32(), "{token} is not a number", sample_at)
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
        raise DataError(f"{where(index)}: " + problem.format(token=f"'{_shown(tokens[index].as_py())}'"))
    return pc.cast(pc.utf8_trim_whitespace(tokens), target)


def _validated(rows: _Rows, ids: np.ndarray, signals: np.ndarray, labels: np.ndarray | None,
               value_range=None) -> ParsedBeats:
    """Checks parsed columns; `value_range` is the (smallest, largest) sample when the parser already knows it."""
    rows.ids = ids
    smallest, largest = value_range if value_range is not None else (signals.min(), signals.max())
    if not (np.isfinite(smallest) and np.isfinite(largest)):  # NaN and infinity reach the minimum or maximum
        bad = ~np.isfinite(signals)
        row = int(np.argmax(bad.any(axis=1)))
        sample = int(np.argmax(bad[row]))
        kind = "NaN" if np.isnan(signals[row, sample]) else "infinite"
        raise DataError(f"{rows.at(row)}: sample {sample} is {kind}")
    unique_ids, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        duplicate = unique_ids[np.argmax(counts > 1)]
        first, second = np.flatnonzero(ids == duplicate)[:2]
        raise DataError(f"{rows.at(int(second))}: duplicate id (first seen at {rows.place(int(first))})")
    notes = []
    outside = (signals.min(axis=1) < 0) | (signals.max(axis=1) > 1) if smallest < 0 or largest > 1 else None
    if outside is not None:
        row = int(np.argmax(outside))
        notes.append(
            f"{int(outside.sum())} rows have values outside [0, 1], the competition's range "
            f"(first: id {_shown(str(ids[row]))}, range {signals[row].min():.4g}..{signals[row].max():.4g}); continuing"
        )
    if labels is not None:
        labels = _integer_labels(rows, labels)
        counts = np.bincount(labels)
        if (counts == 0).any():
            empty = ", ".join(str(c) for c in np.flatnonzero(counts == 0))
            notes.append(f"no rows of class {empty} (labels run 0..{len(counts) - 1}); continuing")
    return ParsedBeats(ids, signals, labels, notes)


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
        rows = _Rows(Path(data.source), ids=data.ids)
        row = int(np.argmax(data.labels >= n_classes))
        raise DataError(f"{rows.at(row)}: label {data.labels[row]} is out of range 0..{n_classes - 1}")


def _short(error: Exception, limit: int = 300) -> str:
    """An error's message on one line, shown as `_shown` shows file content (Arrow's quote the file)."""
    return _shown(" ".join(str(error).split()), limit)


def _shown(text: str, limit: int = MESSAGE_VALUE_CHARS) -> str:
    """Text from a file, fit for a one-line message: characters that are not printable escaped as `repr`
    escapes them (so no terminal control sequence reaches the screen), cut to `limit` characters."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text):,} characters)"
