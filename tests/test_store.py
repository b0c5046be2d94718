"""The results store: runs, idempotent points, export."""

from pathlib import Path

import pyarrow.parquet as pq

from tokenfab.store import Store


def test_points_are_idempotent_on_key_and_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    run = store.start_run("fleet", {"plan": "x"})
    assert store.write_points(run, [{"key": "a", "v": 1.0}, {"key": "b", "v": 2.0, "w": "x"}]) == 2
    assert store.write_points(run, [{"key": "a", "v": 9.0}, {"key": "c", "v": 3.0}]) == 1
    assert store.done_keys(run) == {"a", "b", "c"}
    table = store.points(run)
    assert table.column("v").to_pylist() == [1.0, 2.0, 3.0] and table.column("w").to_pylist() == [None, "x", None]
    store.finish_run(run, {"ok": True})
    (info,) = Store(tmp_path / "t.duckdb").runs()
    assert info["kind"] == "fleet" and info["config"] == {"plan": "x"} and info["summary"] == {"ok": True}
    store.export(run, tmp_path / "p.parquet")
    assert pq.read_table(tmp_path / "p.parquet").num_rows == 3
