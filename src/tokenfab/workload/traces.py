"""Trace readers: Azure LLM-inference and BurstGPT CSV, Mooncake JSONL, streamed as `RequestTable`s.

A malformed row is a `WorkloadError` naming its file, line and field."""

from __future__ import annotations

import csv
import json
import math
import warnings
from array import array
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from tokenfab.workload.errors import WorkloadError, _check, _finite
from tokenfab.workload.table import RequestTable

TRACE_FORMATS = ("azure", "burstgpt", "mooncake")
MOONCAKE_BLOCK = 512            # tokens per hash_ids block in the Mooncake traces
_AZURE_COLS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
_BURST_COLS = ("Timestamp", "Request tokens", "Response tokens")


def _sniff(path: Path) -> str:
    with path.open(newline="") as fh:
        first = ""
        for line in fh:
            if line.strip():
                first = line.strip()
                break
    if first.startswith("{"):
        return "mooncake"
    if first.startswith("["):
        raise WorkloadError(f"{path}: a JSON list (ShareGPT conversations?) has no arrival times, so it is not a "
                            "trace; serve it with `tokenfab simulate --workload FILE --rate R`")
    header = next(csv.reader([first]), [])
    header = [h.strip() for h in header]
    if all(c in header for c in _AZURE_COLS):
        return "azure"
    if all(c in header for c in _BURST_COLS):
        return "burstgpt"
    raise WorkloadError(
        f"{path}: trace format not recognised: expected an Azure CSV ({', '.join(_AZURE_COLS)}), a BurstGPT CSV "
        f"({', '.join(_BURST_COLS)}, ...) or Mooncake JSONL (timestamp, input_length, output_length, hash_ids)")


def _int_column(values: list[str], lines: np.ndarray, name: str, path: Path) -> np.ndarray:
    try:
        arr = np.array(values).astype(np.int64) if values else np.empty(0, np.int64)
    except (ValueError, OverflowError):
        arr = None
    if arr is None or (arr < 0).any():
        for v, ln in zip(values, lines, strict=True):
            try:
                ok = int(v) >= 0
            except ValueError:
                ok = False
            if not ok:
                raise WorkloadError(f"{path}:{ln}: field {name!r} is {v!r}: expected an integer >= 0") from None
    return arr


def _float_column(values: list[str], lines: np.ndarray, name: str, path: Path) -> np.ndarray:
    try:
        arr = np.array(values).astype(np.float64) if values else np.empty(0)
        if np.isfinite(arr).all():
            return arr
    except ValueError:
        pass
    for v, ln in zip(values, lines, strict=True):
        try:
            ok = math.isfinite(float(v))
        except ValueError:
            ok = False
        if not ok:
            raise WorkloadError(f"{path}:{ln}: field {name!r} is {v!r}: expected a number of seconds")
    raise AssertionError("unreachable")


def _frac_and_offset(rest: str) -> float:
    """Seconds to add for the part of an ISO timestamp after HH:MM:SS ('.6805900', '+00:00', 'Z')."""
    tz = 0.0
    if rest.endswith("Z"):
        rest = rest[:-1]
    elif len(rest) >= 6 and rest[-6] in "+-" and rest[-3] == ":":
        sign = 1.0 if rest[-6] == "+" else -1.0
        tz = sign * (int(rest[-5:-3]) * 3600 + int(rest[-2:]) * 60)
        rest = rest[:-6]
    if not rest:
        return -tz
    if rest[0] != "." or not rest[1:].isdigit():
        raise ValueError(rest)
    return float(rest) - tz


def _datetime_column(values: list[str], lines: np.ndarray, name: str, path: Path) -> np.ndarray:
    """Seconds since the epoch of 'YYYY-MM-DD HH:MM:SS[.fffffff][+HH:MM|Z]' strings, as float64."""
    def bad(v: str, ln: int) -> WorkloadError:
        return WorkloadError(f"{path}:{ln}: field {name!r} is {v!r}: expected a datetime like 2023-11-16 18:15:46.68")

    if values and min(map(len, values)) >= 19:
        try:   # fast path: NumPy parses the whole column (no time-zone suffix)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                ns = np.array(values, dtype="datetime64[ns]").astype(np.int64)
            return ns / 1e9
        except (ValueError, UserWarning, DeprecationWarning):
            pass
    out = np.empty(len(values))
    for i, v in enumerate(values):
        try:
            _check(len(v) >= 19 and v[10] in " T", "")
            out[i] = float(np.datetime64(v[:19], "s").astype(np.int64)) + _frac_and_offset(v[19:])
        except (ValueError, WorkloadError):
            raise bad(v, int(lines[i])) from None
    return out


def _split_rows(lines: list[str], width: int, first_line: int, path: Path,
                header: list[str]) -> tuple[list[list[str]], np.ndarray]:
    """Columns of a slice of CSV lines, with their line numbers. Fast path: one join and split in C
    when no line is blank or quoted; otherwise the csv module, row by row."""
    numbers = first_line + np.arange(len(lines))
    if not any('"' in ln for ln in lines):
        text = "".join(lines).replace("\r\n", "\n")
        flat = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
        if all(flat):
            fields_ = ",".join(flat).split(",")
            if len(fields_) == width * len(flat):
                return [[v.strip() for v in fields_[k::width]] for k in range(width)], numbers
    rows, kept = [], []
    for row, ln in zip(csv.reader(lines), numbers, strict=True):
        if not row:
            continue
        if len(row) != width:
            raise WorkloadError(f"{path}:{ln}: expected {width} fields ({', '.join(header)}), got {len(row)}")
        rows.append(row)
        kept.append(ln)
    if not rows:
        return [[] for _ in range(width)], np.empty(0, np.int64)
    return [[v.strip() for v in col] for col in zip(*rows, strict=True)], np.array(kept)


def _csv_chunks(path: Path, fmt: str, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(timestamp seconds, input, output) per chunk of a CSV trace, rows with 0 input or output dropped.
    Line numbers assume one line per row, which holds for these formats (no quoted newlines)."""
    cols = _AZURE_COLS if fmt == "azure" else _BURST_COLS
    with path.open(newline="") as fh:
        header_line = fh.readline()
        _check(header_line.strip() != "", f"{path}: empty trace file")
        header = [h.strip() for h in next(csv.reader([header_line]))]
        missing = [c for c in cols if c not in header]
        _check(not missing, f"{path}:1: header lacks {', '.join(missing)}: a {fmt} trace has columns {', '.join(cols)}")
        idx = [header.index(c) for c in cols]
        first_line = 2
        while True:
            lines = list(islice(fh, chunk))
            if not lines:
                return
            columns, numbers = _split_rows(lines, len(header), first_line, path, header)
            first_line += len(lines)
            if not len(numbers):
                continue
            ts, ins, outs = (columns[k] for k in idx)
            t = (_datetime_column if fmt == "azure" else _float_column)(ts, numbers, cols[0], path)
            i_arr = _int_column(ins, numbers, cols[1], path)
            o_arr = _int_column(outs, numbers, cols[2], path)
            keep = (i_arr > 0) & (o_arr > 0)
            yield t[keep], i_arr[keep], o_arr[keep]


def _mooncake_chunks(path: Path, chunk: int) -> Iterator[tuple[np.ndarray, ...]]:
    """(timestamp seconds, input, output, prefix_group, prefix_len, row id) per chunk of a Mooncake JSONL."""
    owner = array("q")          # hash id -> first row whose prompt holds that block (-1 = unseen)
    row = 0
    with path.open() as fh:
        lineno = 0
        while True:
            cols: list[list[Any]] = [[], [], [], [], [], []]
            for line in fh:
                lineno += 1
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as err:
                    raise WorkloadError(f"{path}:{lineno}: not valid JSON: {err.msg}") from None
                _check(isinstance(rec, dict), f"{path}:{lineno}: expected a JSON object")
                vals = []
                for name in ("timestamp", "input_length", "output_length"):
                    v = rec.get(name)
                    ok = _finite(v) and v >= 0 and (name == "timestamp" or float(v).is_integer())
                    _check(ok, f"{path}:{lineno}: field {name!r} is {v!r}: expected "
                               f"{'a number of milliseconds' if name == 'timestamp' else 'an integer >= 0'}")
                    vals.append(v)
                ids = rec.get("hash_ids", [])
                _check(isinstance(ids, list) and all(isinstance(h, int) and not isinstance(h, bool) and h >= 0
                                                     for h in ids),
                       f"{path}:{lineno}: field 'hash_ids' is {ids!r}: expected a list of integers >= 0")
                t, n_in, n_out = float(vals[0]), int(vals[1]), int(vals[2])
                if n_in <= 0 or n_out <= 0:
                    continue
                top = max(ids, default=-1)
                if top >= len(owner):
                    owner.extend([-1] * (top + 1 - len(owner) + len(owner) // 2))
                m = 0
                while m < len(ids) and owner[ids[m]] >= 0:
                    m += 1
                group = owner[ids[m - 1]] if m else -1
                for h in ids[m:]:
                    owner[h] = row
                for col, v in zip(cols, (t / 1000.0, n_in, n_out, group, min(m * MOONCAKE_BLOCK, n_in), row),
                                  strict=True):
                    col.append(v)
                row += 1
                if len(cols[0]) >= chunk:
                    break
            if not cols[0]:
                return
            yield (np.array(cols[0], np.float64), *(np.array(c, np.int64) for c in cols[1:]))


def iter_trace(path: str | Path, format: str | None = None, chunk: int = 65536,
               ordered: bool = True) -> Iterator[RequestTable]:
    """A trace file as RequestTables of up to `chunk` rows, in file order, streaming (bounded memory).

    Arrivals are seconds after the file's first row. Rows with 0 input or 0 output tokens are dropped:
    they are failed requests (BurstGPT marks failures by 0 response tokens) and nothing can be served
    for them. Each row is its own single-turn session of class 0. Mooncake hash_ids (512-token prefix
    blocks) give prefix_group = the first earlier row holding the longest already-seen run of leading
    blocks and prefix_len = that run in tokens (capped at input_len); every Mooncake row publishes its
    context as cache_group = its own row id. Azure and BurstGPT rows carry no prefix information (-1).
    `ordered`: a row earlier than the one before is an error naming it (a stream cannot be sorted); `read_trace`
    reads whole files and sorts them instead.
    """
    p = Path(path)
    _check(p.is_file(), f"trace file {str(p)!r} not found")
    fmt = format or _sniff(p)
    _check(fmt in TRACE_FORMATS, f"trace format {fmt!r} unknown: allowed {', '.join(TRACE_FORMATS)}")
    source = _mooncake_chunks(p, chunk) if fmt == "mooncake" else _csv_chunks(p, fmt, chunk)
    t0: float | None = None
    last = -math.inf
    row = 0
    for parts in source:
        t, n_in, n_out = parts[0], parts[1], parts[2]
        n = len(t)
        if n == 0:
            continue
        if t0 is None:
            t0 = float(t[0])
        # a stream is replayed in file order: a row earlier than the one before would be served out of time
        back = np.flatnonzero(np.diff(np.concatenate(([last], t))) < 0) if ordered else np.array([], np.int64)
        if back.size:
            i = int(back[0])
            _check(False, f"{p}: request {row + i + 1}: timestamp {float(t[i]):g} is earlier than the request "
                          "before it; sort the trace by time (the simulator replays it in order)")
        last = float(t[-1])
        ids = np.arange(row, row + n, dtype=np.int64)
        if fmt == "mooncake":
            group, plen, cache_group = parts[3], parts[4], parts[5]
        else:
            group, plen, cache_group = np.full(n, -1, np.int64), np.zeros(n, np.int64), np.full(n, -1, np.int64)
        yield RequestTable(arrival=t - t0, input_len=n_in, output_len=n_out, class_id=np.zeros(n, np.int64),
                           session=ids, turn=np.zeros(n, np.int64), think_s=np.zeros(n), prefix_group=group,
                           prefix_len=plen, cache_group=cache_group)
        row += n


def read_trace(path: str | Path, format: str | None = None) -> RequestTable:
    """A whole trace file as one RequestTable (format sniffed from the header / first line when not
    given: azure, burstgpt or mooncake). Rows are sorted by arrival (stably, only if the file is not)
    and arrivals shifted so that the earliest is 0. See `iter_trace` for the row rules."""
    table = RequestTable.concat(iter_trace(path, format, ordered=False))
    if len(table) and (np.diff(table.arrival) < 0).any():
        table = table[np.argsort(table.arrival, kind="stable")]
    if len(table) and table.arrival[0] != 0.0:
        table = replace(table, arrival=table.arrival - table.arrival[0])
    return table
