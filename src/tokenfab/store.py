"""Results store: every evaluated point of a search or plan in one embedded DuckDB file.

Why DuckDB: one file, no server, transactions (a killed run leaves only whole batches behind) and
SQL for ad-hoc questions over millions of points. A run's id is a stable hash of what it was asked,
so starting the same run again resumes it: callers skip `done_keys` and `write_points` ignores keys
already stored, so a run killed at any moment finishes without recomputing or duplicating a point.

The file is opened per call and closed again, so a second process (``tokenfab results``) can read
while a run writes between batches, and a store that is never written to is never created.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    config VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    created VARCHAR NOT NULL,
    finished VARCHAR,
    summary VARCHAR
);
CREATE TABLE IF NOT EXISTS points (
    run_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    data VARCHAR NOT NULL,
    PRIMARY KEY (run_id, key)
);
"""

# Typed columns for what a user asks of a store in SQL (`SELECT label, usd_per_mtok FROM design_points ...`); the
# rows themselves stay whole in `points.data` (JSON text), whatever fields a run's kind gives them.
# (view, run kind, point kind or None, ((column, JSON field, SQL type), ...))
_VIEWS: tuple[tuple[str, str, str | None, tuple[tuple[str, str, str], ...]], ...] = (
    ("design_points", "design", None, (
        ("label", "label", "VARCHAR"), ("custom", "custom", "BOOLEAN"), ("feasible", "feasible", "BOOLEAN"),
        ("reason", "reason", "VARCHAR"), ("usd_per_mtok", "usd_per_mtok", "DOUBLE"),
        ("user_tokens_per_s", "user_tps", "DOUBLE"), ("tokens_per_j", "tokens_per_j", "DOUBLE"),
        ("chips", "chips", "DOUBLE"), ("capex_usd", "capex_usd", "DOUBLE"), ("unit_usd", "unit_usd", "DOUBLE"),
        ("nre_usd", "nre_usd", "DOUBLE"), ("tdp_w", "tdp_w", "DOUBLE"))),
    ("fleet_months", "fleet", "month", (
        ("scenario", "scenario", "VARCHAR"), ("month", "month", "VARCHAR"), ("usd_per_mtok", "usd_per_mtok", "DOUBLE"),
        ("cost_usd", "cost_usd", "DOUBLE"), ("custom_share", "custom_share", "DOUBLE"),
        ("provisioned_mw", "provisioned_mw", "DOUBLE"), ("capacity_mw", "capacity_mw", "DOUBLE"),
        ("tokens", "tokens", "DOUBLE"))),
    ("fleet_chips", "fleet", "fleet", (
        ("scenario", "scenario", "VARCHAR"), ("month", "month", "VARCHAR"), ("hardware", "option", "VARCHAR"),
        ("how", "option_kind", "VARCHAR"), ("chips", "chips", "DOUBLE"), ("delivered", "delivered", "DOUBLE"))),
)


def _view_sql(name: str, run_kind: str, point_kind: str | None, cols: tuple[tuple[str, str, str], ...]) -> str:
    """One typed view over the points of a run kind (a value that does not convert reads as NULL)."""
    select = ", ".join(f"TRY_CAST(p.data->>'{field}' AS {sql}) AS {column}" for column, field, sql in cols)
    where = f" AND p.data->>'kind' = '{point_kind}'" if point_kind else ""
    return (f"CREATE OR REPLACE VIEW {name} AS SELECT p.run_id, p.key, {select} FROM points p "
            f"JOIN runs r ON r.id = p.run_id WHERE r.kind = '{run_kind}'{where};\n")


_VIEWS_SQL = "".join(_view_sql(*view) for view in _VIEWS)
_HAS_VIEWS = (f"SELECT count(*) FROM duckdb_views() WHERE view_name IN "
              f"({', '.join(repr(view[0]) for view in _VIEWS)})")

_LOCK_RETRY_S = 30.0


class StoreError(ValueError):
    """A store call that cannot be honoured (unknown run, bad export path)."""


def _jsonable(value: Any) -> Any:
    """NumPy scalars and arrays into plain Python so rows survive a JSON round trip exactly."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def run_id_for(kind: str, config: dict) -> str:
    """Stable id of a run: the same kind and config (key order irrelevant) always give the same id."""
    return hashlib.sha256(_dumps([kind, config]).encode()).hexdigest()[:16]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class Store:
    """Runs and their points in one DuckDB file (default ``./tokenfab.duckdb``)."""

    def __init__(self, path: str | Path = "tokenfab.duckdb") -> None:
        self.path = Path(path)

    # -- connection -------------------------------------------------------------------------------

    @contextmanager
    def _connect(self, create: bool = True) -> Iterator[Any]:
        """A short-lived connection; waits for another process's write to finish instead of failing."""
        import duckdb

        if not create and not self.path.exists():
            yield None
            return
        deadline = time.monotonic() + _LOCK_RETRY_S
        while True:
            try:
                con = duckdb.connect(str(self.path))
                break
            except duckdb.IOException as exc:  # held by another process's connection
                if "lock" in str(exc).lower() and time.monotonic() <= deadline:
                    time.sleep(0.05)
                    continue
                if "lock" in str(exc).lower():
                    raise
                # not a DuckDB file (corrupt, truncated, something else): say so, and leave it as it is
                raise StoreError(f"store {str(self.path)!r} is not a readable DuckDB file; move it aside or name "
                                 "another with --store") from None
        try:
            con.execute(_SCHEMA)
            # the views once per file (replacing them at every connection would write the catalog on every read)
            if con.execute(_HAS_VIEWS).fetchone()[0] < len(_VIEWS):
                con.execute(_VIEWS_SQL)
            yield con
        finally:
            con.close()

    def check(self) -> None:
        """Raise `StoreError` now, before any work, if an existing file is not a readable store."""
        if self.path.exists():
            with self._connect():
                pass

    # -- runs -------------------------------------------------------------------------------------

    def start_run(self, kind: str, config: dict, fresh: bool = False) -> str:
        """Create the run, or find it again: the same (kind, config) resumes the same run id. `fresh` starts it
        over instead: the points and summary stored under the id are dropped (in one transaction with the new
        record), for a caller that recomputes rather than trusts them."""
        run_id = run_id_for(kind, config)
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                if fresh:
                    con.execute("DELETE FROM points WHERE run_id = ?", [run_id])
                    con.execute("DELETE FROM runs WHERE id = ?", [run_id])
                con.execute(
                    "INSERT INTO runs (id, kind, config, status, created) VALUES (?, ?, ?, 'running', ?) "
                    "ON CONFLICT (id) DO NOTHING",
                    [run_id, kind, _dumps(config), _now()],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return run_id

    def finish_run(self, run_id: str, summary: dict) -> None:
        """Mark the run done and keep its summary (replaces an earlier summary of the same run)."""
        with self._connect() as con:
            self._require(con, run_id)
            con.execute(
                "UPDATE runs SET status = 'done', finished = ?, summary = ? WHERE id = ?",
                [_now(), _dumps(summary), run_id],
            )

    def runs(self) -> list[dict]:
        """Every run, oldest first: id, kind, status, created, finished, points, config, summary."""
        with self._connect(create=False) as con:
            if con is None:
                return []
            rows = con.execute(
                "SELECT r.id, r.kind, r.status, r.created, r.finished, r.config, r.summary, "
                "(SELECT count(*) FROM points p WHERE p.run_id = r.id) "
                "FROM runs r ORDER BY r.created, r.id"
            ).fetchall()
        return [
            {
                "id": r[0],
                "kind": r[1],
                "status": r[2],
                "created": r[3],
                "finished": r[4],
                "config": json.loads(r[5]),
                "summary": json.loads(r[6]) if r[6] is not None else None,
                "points": int(r[7]),
            }
            for r in rows
        ]

    def run(self, run_id: str) -> dict:
        """One run's record (as in `runs`); StoreError if unknown."""
        for r in self.runs():
            if r["id"] == run_id or (len(run_id) >= 4 and r["id"].startswith(run_id)):
                return r
        raise StoreError(f"run: no run with id {run_id!r} in {self.path}")

    @staticmethod
    def _require(con: Any, run_id: str) -> None:
        if con.execute("SELECT 1 FROM runs WHERE id = ?", [run_id]).fetchone() is None:
            raise StoreError(f"run: no run with id {run_id!r}")

    # -- points -----------------------------------------------------------------------------------

    def write_points(self, run_id: str, rows: list[dict]) -> int:
        """Store rows keyed by ``row["key"]``; keys already stored are skipped. One transaction per call."""
        if not rows:
            return 0
        fresh: dict[str, str] = {}
        for row in rows:
            if "key" not in row:
                raise StoreError("write_points: every row needs a 'key'")
            key = str(row["key"])
            if key not in fresh:
                fresh[key] = _dumps(row)
        with self._connect() as con:
            self._require(con, run_id)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("CREATE TEMP TABLE incoming (key VARCHAR, data VARCHAR, i BIGINT)")
                con.executemany(
                    "INSERT INTO incoming VALUES (?, ?, ?)",
                    [[k, d, i] for i, (k, d) in enumerate(fresh.items())],
                )
                base = con.execute("SELECT coalesce(max(seq), -1) + 1 FROM points WHERE run_id = ?", [run_id])
                start = int(base.fetchone()[0])
                new = con.execute(
                    "SELECT count(*) FROM incoming WHERE key NOT IN (SELECT key FROM points WHERE run_id = ?)",
                    [run_id],
                ).fetchone()[0]
                con.execute(
                    "INSERT INTO points SELECT ?, key, ? + i, data FROM incoming "
                    "WHERE key NOT IN (SELECT key FROM points WHERE run_id = ?)",
                    [run_id, start, run_id],
                )
                con.execute("DROP TABLE incoming")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return int(new)

    def done_keys(self, run_id: str) -> set[str]:
        """Keys of the points this run already holds: what a resumed run must not recompute."""
        with self._connect(create=False) as con:
            if con is None:
                return set()
            return {r[0] for r in con.execute("SELECT key FROM points WHERE run_id = ?", [run_id]).fetchall()}

    def point_rows(self, run_id: str) -> list[dict]:
        """The run's rows as dicts, ordered by key (the same table whatever order they were written in)."""
        with self._connect(create=False) as con:
            if con is None:
                return []
            data = con.execute("SELECT data FROM points WHERE run_id = ? ORDER BY key", [run_id]).fetchall()
        return [json.loads(d[0]) for d in data]

    def points(self, run_id: str) -> pa.Table:
        """The run's points as an Arrow table (one column per row field), ordered by key."""
        rows = self.point_rows(run_id)
        if not rows:
            return pa.table({"key": pa.array([], pa.string())})
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        cols = {n: [row.get(n) for row in rows] for n in names}
        return pa.table({n: _column(v) for n, v in cols.items()})

    def export(self, run_id: str, path: str | Path) -> None:
        """Write the run's points to .parquet or .csv (temp file + rename: never a half-written file)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise StoreError(f"export: path must end in .parquet or .csv, got {path.name!r}")
        table = self.points(run_id)
        fd, tmp = tempfile.mkstemp(prefix=".tokenfab-", suffix=suffix, dir=path.parent if str(path.parent) else ".")
        os.close(fd)
        try:
            if suffix == ".parquet":
                import pyarrow.parquet as pq

                pq.write_table(table, tmp)
            else:
                import pyarrow.csv as pcsv

                pcsv.write_csv(_flat(table), tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _column(values: list[Any]) -> pa.Array:
    """An Arrow column; mixed or nested values fall back to JSON text rather than failing."""
    if any(isinstance(v, float) for v in values) and all(v is None or isinstance(v, int | float) for v in values):
        values = [None if v is None else float(v) for v in values]
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else _dumps(v) for v in values], pa.string())


def _flat(table: pa.Table) -> pa.Table:
    """CSV holds no nested values: lists and structs become JSON text."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_nested(col.type):
            cols[name] = pa.array([None if v is None else _dumps(v) for v in col.to_pylist()], pa.string())
        else:
            cols[name] = col
    return pa.table(cols)


def finite(x: float) -> float | None:
    """NaN and infinities become None so that exported tables stay readable by every tool."""
    return x if math.isfinite(x) else None
