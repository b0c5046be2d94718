"""Results store: stable run ids, idempotent writes, resume, listing and export."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest

from tokenfab.store import Store, StoreError, run_id_for


def _rows(keys: range) -> list[dict]:
    return [{"key": f"p{k:03d}", "x": float(k) / 3.0, "n": k, "tag": "a" if k % 2 else "b"} for k in keys]


def test_run_id_is_stable_and_order_free(tmp_path):
    s = Store(tmp_path / "r.duckdb")
    a = s.start_run("design", {"a": 1, "b": [1, 2]})
    b = s.start_run("design", {"b": [1, 2], "a": 1})
    assert a == b == run_id_for("design", {"a": 1, "b": [1, 2]})
    assert s.start_run("design", {"a": 2, "b": [1, 2]}) != a
    assert s.start_run("fleet", {"a": 1, "b": [1, 2]}) != a
    assert len(s.runs()) == 3


def test_write_points_idempotent_and_counts_new(tmp_path):
    s = Store(tmp_path / "r.duckdb")
    rid = s.start_run("design", {"seed": 0})
    assert s.write_points(rid, _rows(range(10))) == 10
    assert s.write_points(rid, _rows(range(5, 15))) == 5
    assert s.write_points(rid, _rows(range(15))) == 0
    assert s.write_points(rid, _rows(range(15, 16)) * 3) == 1  # duplicates within one call
    assert s.done_keys(rid) == {f"p{k:03d}" for k in range(16)}
    t = s.points(rid)
    assert t.num_rows == 16
    assert t.column("key").to_pylist() == sorted(f"p{k:03d}" for k in range(16))
    assert t.column("x").to_pylist()[7] == 7 / 3.0  # exact float round trip


def test_points_order_independent_of_write_order(tmp_path):
    a, b = Store(tmp_path / "a.duckdb"), Store(tmp_path / "b.duckdb")
    ra, rb = a.start_run("k", {}), b.start_run("k", {})
    a.write_points(ra, _rows(range(20)))
    for chunk in (range(10, 20), range(0, 5), range(5, 10)):
        b.write_points(rb, _rows(chunk))
    assert a.points(ra).equals(b.points(rb))


def test_write_is_atomic_per_call(tmp_path):
    s = Store(tmp_path / "r.duckdb")
    rid = s.start_run("k", {})
    bad = _rows(range(3)) + [{"key": "bad", "v": object()}]
    with pytest.raises(TypeError):
        s.write_points(rid, bad)
    assert s.done_keys(rid) == set()
    with pytest.raises(StoreError):
        s.write_points(rid, [{"no_key": 1}])
    with pytest.raises(StoreError):
        s.write_points("nope", _rows(range(2)))
    assert s.done_keys(rid) == set()


def test_runs_listing_and_finish(tmp_path):
    s = Store(tmp_path / "r.duckdb")
    rid = s.start_run("design", {"m": "x"})
    s.write_points(rid, _rows(range(4)))
    (r,) = s.runs()
    assert (r["id"], r["kind"], r["status"], r["points"], r["summary"]) == (rid, "design", "running", 4, None)
    s.finish_run(rid, {"best": 1.5, "arr": np.array([1.0, 2.0])})
    (r,) = s.runs()
    assert r["status"] == "done" and r["summary"] == {"best": 1.5, "arr": [1.0, 2.0]}
    assert r["config"] == {"m": "x"} and r["created"]
    assert s.run(rid[:6])["id"] == rid
    with pytest.raises(StoreError):
        s.run("zzzzzz")
    # resuming a finished run keeps it finished and its points
    assert s.start_run("design", {"m": "x"}) == rid
    assert s.runs()[0]["status"] == "done"


def test_reading_never_creates_the_file(tmp_path):
    p = tmp_path / "none.duckdb"
    s = Store(p)
    assert s.runs() == [] and s.done_keys("x") == set() and s.point_rows("x") == []
    assert not p.exists()


def test_export_parquet_and_csv(tmp_path):
    s = Store(tmp_path / "r.duckdb")
    rid = s.start_run("k", {})
    rows = _rows(range(6))
    rows[0]["nested"] = {"a": 1}
    rows[1]["nested"] = {"a": 2}
    s.write_points(rid, rows)
    s.export(rid, tmp_path / "o.parquet")
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.num_rows == 6 and set(t.column_names) >= {"key", "x", "n", "tag", "nested"}
    s.export(rid, tmp_path / "o.csv")
    with open(tmp_path / "o.csv") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 6 and got[2]["key"] == "p002" and float(got[2]["x"]) == pytest.approx(2 / 3)
    with pytest.raises(StoreError):
        s.export(rid, tmp_path / "o.xlsx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "o.parquet", "r.duckdb"]


def test_second_store_object_sees_writes(tmp_path):
    p = tmp_path / "r.duckdb"
    rid = Store(p).start_run("k", {"z": 1})
    Store(p).write_points(rid, _rows(range(3)))
    assert Store(p).done_keys(rid) == {"p000", "p001", "p002"}


def test_a_corrupt_store_is_one_line_and_left_as_it_is(tmp_path):
    import hashlib

    from typer.testing import CliRunner

    from tokenfab.cli import app
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(bytes(range(256)) * 20)
    before = hashlib.sha256(bad.read_bytes()).hexdigest()
    for args in (["results", "--db", str(bad)], ["design", "--db", str(bad)]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2 and "not a readable DuckDB file" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == before


def test_typed_views_answer_sql_over_design_and_fleet_points(tmp_path):
    import duckdb
    store = Store(tmp_path / "r.duckdb")
    design = store.start_run("design", {"q": 1})
    store.write_points(design, [
        {"key": "a", "label": "custom-a", "custom": True, "feasible": True, "usd_per_mtok": 0.31, "user_tps": 40.0},
        {"key": "b", "label": "h100-sxm", "custom": False, "feasible": False, "reason": "too slow",
         "usd_per_mtok": None}])
    fleet = store.start_run("fleet", {"plan": "p"})
    store.write_points(fleet, [
        {"key": "month/base/000", "kind": "month", "scenario": "base", "month": "2026-01", "usd_per_mtok": 0.5,
         "provisioned_mw": 12.5},
        {"key": "fleet/base/000/h200", "kind": "fleet", "scenario": "base", "month": "2026-01", "option": "h200",
         "option_kind": "buy", "chips": 1024.0, "delivered": 0.0}])
    con = duckdb.connect(str(tmp_path / "r.duckdb"))
    try:
        rows = con.execute("SELECT label, custom, usd_per_mtok, user_tokens_per_s FROM design_points "
                           "WHERE feasible ORDER BY usd_per_mtok").fetchall()
        assert rows == [("custom-a", True, 0.31, 40.0)]
        assert con.execute("SELECT count(*) FROM design_points WHERE usd_per_mtok IS NULL").fetchone() == (1,)
        assert con.execute("SELECT month, provisioned_mw FROM fleet_months").fetchall() == [("2026-01", 12.5)]
        assert con.execute("SELECT hardware, how, chips FROM fleet_chips").fetchall() == [("h200", "buy", 1024.0)]
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'design_points'").fetchall())
        assert types["usd_per_mtok"] == "DOUBLE" and types["custom"] == "BOOLEAN"
    finally:
        con.close()
