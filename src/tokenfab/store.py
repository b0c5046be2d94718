"""Results in an embedded DuckDB file: runs (kind, config, summary) and their points (one JSON row each).

Minimal store with the shared API; writes are idempotent on (run_id, key) so an interrupted run can resume
by skipping `done_keys`.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR PRIMARY KEY, kind VARCHAR, config VARCHAR, summary VARCHAR,
                                 started TIMESTAMP DEFAULT current_timestamp, finished TIMESTAMP);
CREATE TABLE IF NOT EXISTS points (run_id VARCHAR, key VARCHAR, row VARCHAR, PRIMARY KEY (run_id, key));
"""


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=float)


class Store:
    """A DuckDB file of runs and points (default ./tokenfab.duckdb)."""

    def __init__(self, path: str | Path = "tokenfab.duckdb") -> None:
        self.path = str(path)
        with self._connect() as con:
            con.execute(_SCHEMA)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(self.path)

    def start_run(self, kind: str, config: dict) -> str:
        run_id = uuid.uuid4().hex[:12]
        with self._connect() as con:
            con.execute("INSERT INTO runs (run_id, kind, config) VALUES (?, ?, ?)", [run_id, kind, _json(config)])
        return run_id

    def write_points(self, run_id: str, rows: list[dict]) -> int:
        """Insert rows (each with a unique "key"); rows whose key is already stored are skipped."""
        if not rows:
            return 0
        with self._connect() as con:
            before = con.execute("SELECT count(*) FROM points WHERE run_id = ?", [run_id]).fetchone()[0]
            con.execute("BEGIN TRANSACTION")
            con.executemany("INSERT OR IGNORE INTO points VALUES (?, ?, ?)",
                            [[run_id, str(r["key"]), _json(r)] for r in rows])
            con.execute("COMMIT")
            after = con.execute("SELECT count(*) FROM points WHERE run_id = ?", [run_id]).fetchone()[0]
        return int(after - before)

    def done_keys(self, run_id: str) -> set[str]:
        with self._connect() as con:
            return {k for (k,) in con.execute("SELECT key FROM points WHERE run_id = ?", [run_id]).fetchall()}

    def finish_run(self, run_id: str, summary: dict) -> None:
        with self._connect() as con:
            con.execute("UPDATE runs SET summary = ?, finished = current_timestamp WHERE run_id = ?",
                        [_json(summary), run_id])

    def runs(self) -> list[dict]:
        with self._connect() as con:
            rows = con.execute("SELECT run_id, kind, config, summary, started, finished FROM runs "
                               "ORDER BY started, run_id").fetchall()
        return [{"run_id": r[0], "kind": r[1], "config": json.loads(r[2]),
                 "summary": json.loads(r[3]) if r[3] else None, "started": r[4], "finished": r[5]} for r in rows]

    def points(self, run_id: str) -> pa.Table:
        with self._connect() as con:
            rows = con.execute("SELECT row FROM points WHERE run_id = ? ORDER BY key", [run_id]).fetchall()
        dicts = [json.loads(r) for (r,) in rows]
        names = list(dict.fromkeys(k for d in dicts for k in d))   # every column any row has, in first-seen order
        return pa.table({k: [d.get(k) for d in dicts] for k in names})

    def export(self, run_id: str, path: str | Path) -> None:
        """Points of a run to Parquet (or CSV when the path ends in .csv)."""
        table = self.points(run_id)
        if str(path).endswith(".csv"):
            import pyarrow.csv as pcsv
            pcsv.write_csv(table, str(path))
        else:
            import pyarrow.parquet as pq
            pq.write_table(table, str(path))
