"""The fast path of reading a competition CSV: the quoted `heartbeat_signals` string read as separate
float columns by Arrow, the file cut at line ends into one part per core. Anything unusual makes it
give up (None), and `ecgtune.data.files` parses the file again column by column, so that its error can
name the row and the problem."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

FAST_PATH_BLOCK_BYTES = 1 << 21
FAST_PATH_PART_BYTES = 1 << 23
_ID, _LABEL = "id", "label"  # the names this reader gives the first and last columns


def read_wide_csv(content: pa.Buffer, n_fields: int, has_labels: bool):
    """The fast path: the quoted signal string read as separate float columns, or None if anything is off.

    The rows are cut at line ends into one part per core, and each part is streamed block by block by a
    single-threaded Arrow reader straight into the output arrays. Every core parses, and memory stays at
    the output's size; Arrow's own multi-threaded reader spent more CPU for less gain (BENCHMARKS.md).

    Returns:
        (ids, signals, labels, (smallest, largest sample)) or None.
    """
    length = n_fields - 1 - int(has_labels)
    if length < 3:
        return None
    view = memoryview(content)
    parts = _parts_at_line_ends(view, first=_line_end(view, 0), end=_end_of_rows(view))
    if not parts:
        return None
    row_counts = [_count_rows(view, *part) for part in parts]
    first_rows = np.cumsum([0] + row_counts[:-1]).tolist()
    output = _Output(sum(row_counts), length, has_labels)
    with ThreadPoolExecutor(len(parts)) as pool:
        results = list(pool.map(output.fill, [content] * len(parts), parts, first_rows))
    if None in results or [rows for rows, _ in results] != row_counts:
        return None
    ranges = np.array([value_range for _, value_range in results])
    return output.ids, output.signals, output.labels, (ranges[:, 0].min(), ranges[:, 1].max())


class _Output:
    """The fast path's output arrays, filled part by part from several threads."""

    def __init__(self, n_rows: int, length: int, has_labels: bool):
        self.ids = np.empty(n_rows, dtype=np.int64)
        self.signals = np.empty((n_rows, length), dtype=np.float32)
        self.labels = np.empty(n_rows, dtype=np.float64) if has_labels else None
        self.names = [_ID] + [f"s{i}" for i in range(length)] + ([_LABEL] if has_labels else [])
        types = {name: pa.float32() for name in self.names[2:length]}
        types.update({_ID: pa.int64(), self.names[1]: pa.string(), self.names[length]: pa.string(),
                      _LABEL: pa.float64()})
        self.options = {
            "read_options": pa_csv.ReadOptions(column_names=self.names, block_size=FAST_PATH_BLOCK_BYTES,
                                               use_threads=False),
            "parse_options": pa_csv.ParseOptions(quote_char=False),
            "convert_options": pa_csv.ConvertOptions(column_types=types),
        }

    def fill(self, content: pa.Buffer, part: tuple[int, int], first_row: int):
        """Parses the lines content[start:end] of `part` into rows first_row..; returns the rows read and the
        range of their samples, or None if anything is off."""
        (start, end), length = part, self.signals.shape[1]
        row, smallest, largest = first_row, np.inf, -np.inf
        try:
            for batch in pa_csv.open_csv(pa.BufferReader(content.slice(start, end - start)), **self.options):
                if any(column.null_count for column in batch.columns) or row + batch.num_rows > len(self.ids):
                    return None
                rows = slice(row, row + batch.num_rows)
                block = self.signals[rows]
                block[:, 0] = pc.cast(pc.utf8_ltrim(batch.column(1), '"'), pa.float32()).to_numpy()
                block[:, 1:-1] = batch.select(self.names[2:length]).to_tensor(row_major=False).to_numpy()
                block[:, -1] = pc.cast(pc.utf8_rtrim(batch.column(length), '"'), pa.float32()).to_numpy()
                smallest, largest = np.minimum(smallest, block.min()), np.maximum(largest, block.max())
                self.ids[rows] = batch.column(_ID).to_numpy()
                if self.labels is not None:
                    self.labels[rows] = batch.column(_LABEL).to_numpy()
                row = rows.stop
        except (pa.ArrowException, OSError):
            return None
        return row - first_row, (smallest, largest)


def _line_end(view: memoryview, start: int) -> int:
    """Offset just past the first line end at or after `start` (the end of the data if there is none)."""
    while start < len(view):
        found = bytes(view[start:start + (1 << 16)]).find(b"\n")
        if found >= 0:
            return start + found + 1
        start += 1 << 16
    return len(view)


def _end_of_rows(view: memoryview) -> int:
    """Where the data end once trailing blank lines are left out."""
    tail = bytes(view[-(1 << 16):])
    return len(view) - (len(tail) - len(tail.rstrip(b"\r\n")))


def _parts_at_line_ends(view: memoryview, first: int, end: int) -> list[tuple[int, int]]:
    """(start, end) byte ranges covering view[first:end], one per core (at least FAST_PATH_PART_BYTES each)."""
    if end <= first:
        return []
    n_parts = max(1, min(pa.cpu_count(), (end - first) // FAST_PATH_PART_BYTES))
    cuts = [first] + [min(end, _line_end(view, first + (end - first) * k // n_parts)) for k in range(1, n_parts)]
    cuts = sorted(set(cuts + [end]))
    return list(zip(cuts, cuts[1:]))


def _count_rows(view: memoryview, start: int, end: int) -> int:
    """Lines in view[start:end], the last one counted whether or not it ends with a line end."""
    chunk, line_end = 1 << 22, ord("\n")
    line_ends = sum(int(np.count_nonzero(np.frombuffer(view[at:min(end, at + chunk)], dtype=np.uint8) == line_end))
                    for at in range(start, end, chunk))
    return line_ends + int(view[end - 1] != line_end)
