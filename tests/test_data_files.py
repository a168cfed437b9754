import gzip
import re
import subprocess
import sys
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import competition_csv

from ecgtune import cli
from ecgtune.data import HeartbeatData, files, load_dataset, make_synthetic, wide_csv, write_dataset
from ecgtune.errors import DataError, DataWarning

GOOD = np.array([[0.9, 0.1, 0.2, 0.3, 0.0], [1.0, 0.5, 0.25, 0.0, 0.0], [0.8, 0.7, 0.6, 0.5, 0.4]])


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_round_trip_through_every_format(tmp_path, suffix):
    data = make_synthetic(300, seed=3)
    path = tmp_path / f"train{suffix}"
    write_dataset(data, path)
    loaded = load_dataset(path)
    np.testing.assert_array_equal(loaded.ids, data.ids)
    np.testing.assert_array_equal(loaded.labels, data.labels)
    np.testing.assert_array_equal(loaded.signals, data.signals)
    assert loaded.signals.dtype == np.float32
    assert loaded.n_classes == 4


def test_test_file_without_labels_and_any_length(tmp_path):
    data = make_synthetic(50, seed=1, signal_length=64, first_id=1000, with_labels=False)
    write_dataset(data, tmp_path / "test.csv")
    loaded = load_dataset(tmp_path / "test.csv")
    assert loaded.labels is None
    assert loaded.signal_length == 64
    assert loaded.ids[0] == 1000 and loaded.ids[-1] == 1049


@pytest.mark.parametrize("label_format", ["{}", "{}.0"])
def test_labels_written_as_int_or_float(tmp_path, label_format):
    path = competition_csv(tmp_path / "train.csv", GOOD, labels=[0, 2, 1], label_format=label_format)
    loaded = load_dataset(path)
    np.testing.assert_array_equal(loaded.labels, [0, 2, 1])
    assert loaded.labels.dtype == np.int64
    assert loaded.n_classes == 3


def test_fast_and_careful_parsers_agree(tmp_path):
    signals = np.array([[1.0, 1e-05, 2.5e-3, 0.0, 0.123456789012345]] * 3)
    path = competition_csv(tmp_path / "train.csv", signals, labels=[0, 1, 0])
    content = pa.memory_map(str(path)).read_buffer()
    fast_ids, fast_signals, fast_labels, _ = wide_csv.read_wide_csv(content, 7, has_labels=True)
    rows = files._Rows(path, content)
    table = files._read_text_csv(rows, content, ["id", "heartbeat_signals", "label"])
    careful_ids, careful_signals, careful_labels = files._columns_from_table(rows, table)
    np.testing.assert_array_equal(fast_signals, careful_signals)
    np.testing.assert_array_equal(fast_ids, careful_ids)
    np.testing.assert_array_equal(fast_labels, careful_labels)
    np.testing.assert_allclose(fast_signals, signals.astype(np.float32))


@pytest.fixture
def four_small_parts(monkeypatch):
    """The fast path cuts even a small file into four parts read by four threads."""
    monkeypatch.setattr(wide_csv, "FAST_PATH_PART_BYTES", 64)
    monkeypatch.setattr(wide_csv, "FAST_PATH_BLOCK_BYTES", 1 << 10)
    cores = pa.cpu_count()
    pa.set_cpu_count(4)
    yield
    pa.set_cpu_count(cores)


@pytest.mark.parametrize("line_end, final", [("\n", "\n"), ("\n", ""), ("\r\n", "\r\n")])
def test_fast_path_in_parts_keeps_every_row_in_order(tmp_path, four_small_parts, line_end, final):
    data = make_synthetic(97, seed=5, signal_length=40)
    path = tmp_path / "train.csv"
    write_dataset(data, path)
    lines = path.read_text().splitlines()
    path.write_bytes((line_end.join(lines) + final).encode())
    content = pa.memory_map(str(path)).read_buffer()
    view = memoryview(content)
    assert len(wide_csv._parts_at_line_ends(view, first=len(lines[0]) + len(line_end), end=len(view))) == 4
    ids, signals, labels, (smallest, largest) = wide_csv.read_wide_csv(content, 42, has_labels=True)
    np.testing.assert_array_equal(ids, data.ids)
    np.testing.assert_array_equal(signals, data.signals)
    np.testing.assert_array_equal(labels, data.labels)
    assert (smallest, largest) == (data.signals.min(), data.signals.max())


@pytest.mark.parametrize("inner_blank, fast", [(False, True), (True, False)])
def test_blank_lines(tmp_path, four_small_parts, inner_blank, fast):
    """Trailing blank lines keep the fast path; one inside the rows sends the file to the careful path."""
    data = make_synthetic(40, seed=6, signal_length=30)
    path = tmp_path / "train.csv"
    write_dataset(data, path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:20] + [""] * inner_blank + lines[20:]) + "\n\r\n\n")
    assert (wide_csv.read_wide_csv(pa.memory_map(str(path)).read_buffer(), 32, has_labels=True) is not None) == fast
    loaded = load_dataset(path, use_cache=False)
    np.testing.assert_array_equal(loaded.ids, data.ids)
    np.testing.assert_array_equal(loaded.signals, data.signals)


@pytest.mark.parametrize("row, sample, value, kind", [(77, 0, np.nan, "NaN"), (61, 2, np.inf, "infinite"),
                                                      (88, 4, -np.inf, "infinite")])
def test_a_bad_value_in_a_later_part_is_named(tmp_path, four_small_parts, row, sample, value, kind):
    signals = np.tile(GOOD, (30, 1))
    signals[row, sample] = value
    path = competition_csv(tmp_path / "train.csv", signals, labels=[0] * 90, ids=range(1000, 1090))
    fast = wide_csv.read_wide_csv(pa.memory_map(str(path)).read_buffer(), 7, has_labels=True)
    assert fast is not None and not np.isfinite(fast[3]).all(), "the fast path finds it by the samples' range"
    with pytest.raises(DataError, match=rf"row id {1000 + row} \(line {row + 2}\): sample {sample} is {kind}"):
        load_dataset(path, use_cache=False)


def test_parquet_with_text_signals(tmp_path):
    table = pa.table({"id": [7, 8], "heartbeat_signals": ["0.1,0.2,0.3", "0.4,0.5,0.6"], "label": [1.0, 0.0]})
    pq.write_table(table, tmp_path / "train.parquet")
    loaded = load_dataset(tmp_path / "train.parquet")
    np.testing.assert_allclose(loaded.signals, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], rtol=1e-6)
    np.testing.assert_array_equal(loaded.labels, [1, 0])


def _bad_rows(kind):
    """(signals as text per row, labels as text) with one defect each."""
    rows = [",".join(str(v) for v in beat) for beat in GOOD] + ["0.5,0.4,0.3,0.2,0.1"]
    labels = ["0", "1", "2", "3"]
    if kind == "short":
        rows[2] = "0.5,0.4,0.3,0.2"
    elif kind == "token":
        rows[1] = "0.5,abc,0.3,0.2,0.1"
    elif kind == "nan":
        rows[1] = "0.5,0.4,nan,0.2,0.1"
    elif kind == "inf":
        rows[3] = "0.5,0.4,0.3,inf,0.1"
    elif kind == "empty_token":
        rows[0] = "0.5,,0.3,0.2,0.1"
    elif kind == "fraction_label":
        labels[2] = "1.5"
    elif kind == "negative_label":
        labels[3] = "-1"
    elif kind == "text_label":
        labels[1] = "abc"
    elif kind == "missing_label":
        labels[2] = ""
    return rows, labels


BAD_CASES = {
    "short": ("row id 12", "expected 5 samples, got 4"),
    "token": ("row id 11", "sample 1: 'abc' is not a number"),
    "nan": ("row id 11", "sample 2 is NaN"),
    "inf": ("row id 13", "sample 3 is infinite"),
    "empty_token": ("row id 10", "sample 1: '' is not a number"),
    "fraction_label": ("row id 12", "label 1.5 is not an integer"),
    "negative_label": ("row id 13", "label -1 is out of range"),
    "text_label": ("row id 11", "label 'abc' is not a number"),
    "missing_label": ("row id 12", "missing label"),
}


def _write_bad(path, kind):
    rows, labels = _bad_rows(kind)
    lines = ["id,heartbeat_signals,label"] + [f'{10 + i},"{row}",{label}' for i, (row, label) in enumerate(zip(rows, labels))]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("kind", sorted(BAD_CASES))
def test_bad_rows_are_named_with_the_problem(tmp_path, kind):
    path = _write_bad(tmp_path / f"{kind}.csv", kind)
    with pytest.raises(DataError) as caught:
        load_dataset(path)
    message = str(caught.value)
    where, problem = BAD_CASES[kind]
    assert str(path) in message and where in message and problem in message, message


@pytest.mark.parametrize("content, problem", [
    ("", "file is empty"),
    ("id,heartbeat_signals,label\n", "no data rows"),
    ('id,signals,label\n0,"0.1,0.2",1\n', "missing column 'heartbeat_signals' (found: id, signals, label)"),
    ('heartbeat_signals,label\n"0.1,0.2",1\n', "missing column 'id'"),
    ('id,heartbeat_signals,label\n0,"0.1,0.2",1\n1,"0.1,0.2",1,4\n', "line 3: expected 3 fields, got 4"),
    ('id,heartbeat_signals,label\n0,"0.1,0.2",1\n0,"0.3,0.4",0\n', "row id 0 (line 3): duplicate id (first seen at line 2)"),
])
def test_bad_files(tmp_path, content, problem):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="bad.csv") as caught:
        load_dataset(path)
    assert problem in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_dataset(tmp_path / "nowhere.csv")


def test_corrupt_gzip_and_parquet(tmp_path):
    (tmp_path / "bad.csv.gz").write_bytes(gzip.compress(b"id,heartbeat_signals\n0,\"0.1\"\n")[:15])
    with pytest.raises(DataError, match="not a readable gzip file"):
        load_dataset(tmp_path / "bad.csv.gz")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_dataset(tmp_path / "bad.parquet")


def test_test_file_must_match_training_length_and_classes(tmp_path):
    competition_csv(tmp_path / "test.csv", GOOD[:, :4])
    with pytest.raises(DataError, match=r"test.csv: beats have 4 samples, expected 5 \(the training data's length\)"):
        load_dataset(tmp_path / "test.csv", signal_length=5)
    competition_csv(tmp_path / "val.csv", GOOD, labels=[0, 4, 1])
    with pytest.warns(DataWarning, match="no rows of class 2, 3"), \
            pytest.raises(DataError, match=r"row id 1 \(line 3\): label 4 is out of range 0..3"):
        load_dataset(tmp_path / "val.csv", n_classes=4)
    with pytest.raises(DataError, match="no 'label' column"):
        load_dataset(tmp_path / "test.csv", require_labels=True)


def test_values_outside_unit_range_warn_but_load(tmp_path):
    signals = GOOD.copy()
    signals[1, 2] = 1.7
    path = competition_csv(tmp_path / "train.csv", signals, labels=[0, 1, 0])
    with pytest.warns(DataWarning, match=r"1 rows have values outside \[0, 1\].*first: id 1"):
        loaded = load_dataset(path)
    assert loaded.signals[1, 2] == pytest.approx(1.7)


def _cli(*args, cache_dir):
    env = {"ECGTUNE_CACHE_DIR": str(cache_dir), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "ecgtune", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("kind", ["short", "token", "nan", "fraction_label"])
def test_cli_reports_bad_input_in_one_line_with_exit_code_2(tmp_path, kind):
    path = _write_bad(tmp_path / f"{kind}.csv", kind)
    result = _cli("inspect", path, cache_dir=tmp_path / "cache")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and BAD_CASES[kind][1] in lines[0]


def test_cli_inspect_test_file_against_training_file(tmp_path):
    competition_csv(tmp_path / "train.csv", GOOD, labels=[0, 1, 2])
    competition_csv(tmp_path / "test.csv", GOOD[:, :4])
    result = _cli("inspect", tmp_path / "test.csv", "--train", tmp_path / "train.csv", cache_dir=tmp_path / "c")
    assert result.returncode == 2
    assert "beats have 4 samples, expected 5" in result.stderr and "Traceback" not in result.stderr
    ok = _cli("inspect", tmp_path / "train.csv", cache_dir=tmp_path / "c")
    assert ok.returncode == 0 and "3 rows, 5 samples per beat" in ok.stdout
    competition_csv(tmp_path / "test.csv", GOOD)
    matched = _cli("inspect", tmp_path / "test.csv", "--train", tmp_path / "train.csv", cache_dir=tmp_path / "c")
    assert matched.returncode == 0 and f"matches the training file {tmp_path / 'train.csv'}: 5 samples per beat" in \
        matched.stdout


def test_cli_make_data_writes_competition_files(tmp_path):
    result = _cli("make-data", "--n", 200, "--out", tmp_path / "train.csv", "--test-out", tmp_path / "testA.csv.gz",
                  "--test-n", 50, cache_dir=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    header, first = (tmp_path / "train.csv").read_text().splitlines()[:2]
    assert header == "id,heartbeat_signals,label"
    assert first.startswith('0,"') and first.count(",") == 205 + 1
    test = load_dataset(tmp_path / "testA.csv.gz", signal_length=205)
    assert test.labels is None and list(test.ids[[0, -1]]) == [200, 249]
    again = _cli("make-data", "--n", 200, "--out", tmp_path / "again.csv", cache_dir=tmp_path / "c")
    assert again.returncode == 0
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "train.csv").read_bytes()


def test_an_absurd_label_is_refused_without_allocating_for_it(tmp_path):
    path = competition_csv(tmp_path / "train.csv", GOOD, labels=[0, 100000000, 1])
    with pytest.raises(DataError, match=r"row id 1 \(line 3\): label 1e\+08 is out of range"):
        load_dataset(path)


def test_cli_make_data_into_a_folder_is_a_clear_error(tmp_path):
    result = _cli("make-data", "--n", 10, "--out", tmp_path, cache_dir=tmp_path / "c")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    previous = os.umask(0o022)
    try:
        write_dataset(make_synthetic(10), tmp_path / "train.csv")
    finally:
        os.umask(previous)
    assert (tmp_path / "train.csv").stat().st_mode & 0o777 == 0o644


def test_write_is_atomic(tmp_path):
    with pytest.raises(DataError, match="cannot write"):
        write_dataset(make_synthetic(10), tmp_path / "missing-folder" / "train.csv")
    data = HeartbeatData(np.arange(2), np.zeros((2, 3), np.float32), None, "x")
    write_dataset(data, tmp_path / "ok.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["ok.csv"]


RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
HEADER = "id,heartbeat_signals,label\n"


def _rows(first, count):
    return "".join(f'{i},"0.1,0.2,0.3,0.4",{i % 2}\n' for i in range(first, first + count))


def _parquet(path, columns):
    pq.write_table(pa.table(columns), path)


HOSTILE = {  # kind: (file name, how to write it, what the one line must say)
    "parquet_without_rows": ("e.parquet", lambda p: _parquet(p, {
        "id": pa.array([], pa.int64()), "heartbeat_signals": pa.array([], pa.list_(pa.float64()))}), "no data rows"),
    "parquet_text_without_rows": ("e.parquet", lambda p: _parquet(p, {
        "id": pa.array([], pa.int64()), "heartbeat_signals": pa.array([], pa.string())}), "no data rows"),
    "parquet_nested_lists": ("n.parquet", lambda p: _parquet(p, {"id": [0], "heartbeat_signals": [[[0.1]]]}),
                             ("column 'heartbeat_signals' has type list<element: list<element: double>>; "
                              "expected text (comma-separated numbers) or a list of numbers")),
    "parquet_list_ids": ("i.parquet", lambda p: _parquet(p, {"id": [[0], [1]], "heartbeat_signals": [[0.1], [0.2]]}),
                         "column 'id' has type list<element: int64>; expected text or a number"),
    "csv_named_parquet": ("c.parquet", lambda p: p.write_text(HEADER + _rows(0, 2)), "not a Parquet file"),
    "terminal_escapes_in_header": ("t.csv", lambda p: p.write_text("id,heartbeat_signals\x1b]0;title\x07\x1b[2J,label\n"
                                                                   + _rows(0, 2)),
                                   "(found: id, heartbeat_signals\\x1b]0;title\\x07"),
    "terminal_escapes_in_id": ("t.csv", lambda p: p.write_text(HEADER + 'a\x1b[2J,"0.1",0\n' * 2),
                               "row id a\\x1b[2J (line 3): duplicate id (first seen at line 2)"),
    "header_of_5_mb": ("h.csv", lambda p: p.write_text("id," + "x" * 5_000_000 + ",label\n" + _rows(0, 2)),
                       "the header line is longer than 1,048,576 bytes"),
    "header_of_200_kb": ("h.csv", lambda p: p.write_text("id," + "x" * 200_000 + ",label\n" + _rows(0, 2)),
                         "(found: id, " + "x" * 76 + "... (200,011 characters))"),
    "token_of_1_mb": ("k.csv", lambda p: p.write_text(HEADER + '0,"0.1,' + "9" * 1_000_000 + 'x",0\n'),
                      "sample 1: '" + "9" * 80 + "... (1,000,001 characters)' is not a number"),
    "blank_line_before_a_bad_sample": ("b.csv", lambda p: p.write_text(
        HEADER + _rows(0, 2) + "\n" + _rows(2, 1) + '3,"0.1,abc,0.3,0.4",1\n'), "row id 3 (line 6): sample 1"),
    "blank_lines_before_a_malformed_row": ("b.csv", lambda p: p.write_text(
        HEADER + _rows(0, 2) + "\r\n\n" + '2,"0.1,0.2,0.3,0.4",1,9\n'), "line 6: expected 3 fields, got 4"),
    "quoted_line_break_before_a_bad_sample": ("q.csv", lambda p: p.write_text(
        HEADER + '0,"0.1,0.2,\n0.3,0.4",0\n' + _rows(1, 2) + '3,"0.1,x,0.3,0.4",1\n'), "row id 3 (line 6): sample 1"),
    "duplicate_column": ("d.csv", lambda p: p.write_text('id,id,heartbeat_signals\n0,0,"0.1,0.2"\n'),
                         "column 'id' appears 2 times"),
}


def _inspect(path, capsys, monkeypatch):
    """Runs `ecgtune inspect PATH` in this process; returns its exit code and what it wrote to stderr."""
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it
    code = cli.main(["inspect", str(path)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_file_gets_one_clean_line(tmp_path, capsys, monkeypatch, kind):
    name, write, expected = HOSTILE[kind]
    path = tmp_path / name
    write(path)
    code, err = _inspect(path, capsys, monkeypatch)
    assert code == 2
    (line,) = err.splitlines()
    assert line.startswith(f"error: {path}: ") and expected in line, line
    assert not RAW_CONTROL.search(err) and len(line) < 400


@pytest.mark.parametrize("kind", ["terminal_escapes_in_header", "parquet_nested_lists"])
def test_cli_process_prints_no_traceback_and_no_terminal_escapes(tmp_path, kind):
    name, write, expected = HOSTILE[kind]
    write(tmp_path / name)
    result = _cli("inspect", tmp_path / name, cache_dir=tmp_path / "cache")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and expected in result.stderr
    assert not RAW_CONTROL.search(result.stdout + result.stderr)


def test_line_numbers_count_every_line_even_when_read_again(tmp_path):
    """The training classes are checked after loading (maybe from the cache), so the file is read again for the line."""
    path = tmp_path / "val.csv.gz"
    path.write_bytes(gzip.compress((HEADER + _rows(0, 2) + "\n\n" + '2,"0.1,0.2,0.3,0.4",5\n').encode()))
    for _ in range(2):
        with pytest.warns(DataWarning, match="no rows of class"), \
                pytest.raises(DataError, match=r"row id 2 \(line 6\): label 5 is out of range 0..2"):
            load_dataset(path, n_classes=3)


@pytest.mark.parametrize("text, lines", [
    (b"h\na\nb\n", [1, 2, 3]),
    (b"\n\nh\r\n\r\na\r\nb", [3, 5, 6]),
    (b"h\ra\r\rb\r", [1, 2, 4]),
    (b'h\n"a\n\nb",1\n\nc\n"d""\n",2\n', [1, 2, 6, 7]),
])
def test_record_lines_skip_blank_lines_and_follow_quotes(text, lines):
    assert files._record_start_lines(pa.py_buffer(text)).tolist() == lines


def test_parquet_is_known_by_its_bytes_whatever_its_name(tmp_path):
    """The cache is keyed by content, so the name must not change how the same bytes parse."""
    data = make_synthetic(20, seed=2, signal_length=8)
    write_dataset(data, tmp_path / "train.parquet")
    misnamed = tmp_path / "train.csv"
    misnamed.write_bytes((tmp_path / "train.parquet").read_bytes())
    for use_cache in (False, True):
        np.testing.assert_array_equal(load_dataset(misnamed, use_cache=use_cache).signals, data.signals)


def test_parquet_text_stored_as_bytes_or_dictionary_is_read(tmp_path):
    table = pa.table({"id": pa.array([b"a", b"b"]), "label": [1, 0],
                      "heartbeat_signals": pa.array(["0.1,0.2", "0.3,0.4"]).dictionary_encode()})
    pq.write_table(table, tmp_path / "train.parquet")
    loaded = load_dataset(tmp_path / "train.parquet")
    assert loaded.ids.tolist() == ["a", "b"]
    np.testing.assert_allclose(loaded.signals, [[0.1, 0.2], [0.3, 0.4]], rtol=1e-6)


def test_the_submission_writes_whole_numbers_without_decimals_and_probabilities_to_six_digits(tmp_path):
    values = np.array([[1.0, 0.0, 0.0, 0.0], [0.123456789, 0.5, 1e-9, 0.376543211]])
    files.write_submission(tmp_path / "submission.csv", np.array([100000, 100001]), values)
    assert (tmp_path / "submission.csv").read_text().splitlines() == [
        "id,label_0,label_1,label_2,label_3", "100000,1,0,0,0", "100001,0.123457,0.5,1e-09,0.376543"]
