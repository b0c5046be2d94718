"""`tokenfab simulate --timeline`: a Chrome/Perfetto trace with named replica tracks, request lanes and counters."""

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.deployment import Deployment
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.serve.cluster import Pools
from tokenfab.serve.simulate import ClassInfo, simulate
from tokenfab.workload import RequestTable

BASE = ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--json"]
PHASES = ("queue", "prefill", "decode")
MAX_BATCH = 8


def _trace(tmp_path: Path, *args: str) -> tuple[list[dict], dict[int, dict], dict]:
    """Run the CLI with --timeline and --records: the trace's events, the records by request, the metrics."""
    trace, rec = tmp_path / "timeline.json", tmp_path / "req.parquet"
    res = CliRunner().invoke(app, [*BASE, *args, "--timeline", str(trace), "--records", str(rec)])
    assert res.exit_code == 0, res.output
    events = json.loads(trace.read_text())    # valid JSON: the Trace Event Format's array form
    assert isinstance(events, list) and not list(tmp_path.glob("*.part"))
    rows = {r["request"]: r for r in pq.read_table(rec).to_pylist()}
    return events, rows, json.loads(res.stdout)


def _slices(events: list[dict]) -> dict[int, dict[str, dict]]:
    """Each request's slices by phase name."""
    out: dict[int, dict[str, dict]] = defaultdict(dict)
    for e in events:
        if e["ph"] == "X":
            rid = e["args"]["request"]
            assert e["name"] not in out[rid], f"request {rid} has two {e['name']} slices"
            out[rid][e["name"]] = e
    return out


def _process_names(events: list[dict]) -> dict[int, str]:
    return {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}


def _counters(events: list[dict], name: str) -> dict[int, list[dict]]:
    by_pid: dict[int, list[dict]] = defaultdict(list)
    for e in events:
        if e["ph"] == "C" and e["name"] == name:
            by_pid[e["pid"]].append(e)
    return by_pid


def _assert_lanes_never_overlap(events: list[dict]) -> dict[int, int]:
    """No two requests share a lane at once; returns the lane count of each replica (pid)."""
    spans: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            assert e["dur"] >= 0, e
            spans[e["pid"], e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
    for (pid, tid), s in spans.items():
        s.sort()
        for (_, end), (start, _) in zip(s, s[1:], strict=False):
            assert start >= end - 1e-6 * max(abs(end), 1.0), f"replica pid {pid} lane tid {tid}: {end} > {start}"
    lanes: dict[int, int] = defaultdict(int)
    for pid, _ in spans:
        lanes[pid] += 1
    named = {(e["pid"], e["tid"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert set(spans) <= named, "every lane a request uses is a named thread"
    return lanes


def _peak_requests(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (closed intervals: one ending when another starts counts both)."""
    marks = sorted([(a, 0) for a, _ in intervals] + [(b, 1) for _, b in intervals])
    peak = now = 0
    for _, kind in marks:
        now += 1 if kind == 0 else -1
        peak = max(peak, now)
    return peak


def _assert_phases_add_up(slices: dict[int, dict[str, dict]], rows: dict[int, dict]) -> None:
    assert set(slices) == set(rows), "every served request, and only those, is in the trace"
    for rid, row in rows.items():
        phases = slices[rid]
        assert set(phases) == set(PHASES), (rid, phases)
        q, p, d = (phases[name] for name in PHASES)
        scale = max(row["e2e_s"] * 1e6, 1.0)
        assert q["dur"] + p["dur"] + d["dur"] == pytest.approx(row["e2e_s"] * 1e6, rel=1e-9, abs=1e-6 * scale)
        assert q["dur"] + p["dur"] == pytest.approx(row["ttft_s"] * 1e6, rel=1e-9, abs=1e-6 * scale)
        # back to back: each phase starts where the one before ended, at the request's arrival and first token
        assert q["ts"] == pytest.approx(row["arrival"] * 1e6, rel=1e-12)
        assert p["ts"] == pytest.approx(q["ts"] + q["dur"], rel=1e-12)
        assert d["ts"] == pytest.approx(row["first_token"] * 1e6, rel=1e-12)
        args = d["args"]
        assert args["request"] == rid and args["class"] == row["class_name"]
        assert args["prompt_tokens"] == row["input_len"] and args["output_tokens"] == row["output_len"]
        assert args["ttft_ms"] == pytest.approx(row["ttft_s"] * 1e3, rel=1e-12)
        tpot = row["tpot_s"]
        assert (args["tpot_ms"] is None if tpot is None or math.isnan(tpot)
                else args["tpot_ms"] == pytest.approx(tpot * 1e3, rel=1e-12))


def _assert_counters_within_limits(events: list[dict], pids: set[int], kv_capacity: float) -> None:
    batch = _counters(events, "batch")
    assert set(batch) == pids, "every replica has a batch counter"
    for pid, samples in batch.items():
        assert all(s["args"]["decoding"] <= MAX_BATCH for s in samples), pid
        assert all(s["args"]["decoding"] + s["args"]["prefilling"] <= MAX_BATCH for s in samples), pid
        assert samples[-1]["args"] == {"decoding": 0, "prefilling": 0}, "the run ends with every replica idle"
    for name, key in (("batch", None), ("kv cache tokens", None), ("queue", "waiting")):
        for pid, samples in _counters(events, name).items():
            ts = [s["ts"] for s in samples]
            assert ts == sorted(ts), f"{name} samples of pid {pid} in time order"
            # written only when the value changes
            assert all(a["args"] != b["args"] for a, b in zip(samples, samples[1:], strict=False)), (name, pid)
            if key:
                assert all(s["args"][key] >= 0 for s in samples)
    for samples in _counters(events, "kv cache tokens").values():
        assert all(s["args"]["sequences"] >= 0 and s["args"]["sequences"] + s["args"]["cached idle"] <= kv_capacity
                   for s in samples)


def test_timeline_names_replicas_splits_requests_into_phases_and_matches_records(tmp_path: Path) -> None:
    events, rows, m = _trace(tmp_path, "--input-len", "512", "--output-len", "64", "--rate", "60", "--requests",
                             "400", "--devices", "2", "--max-batch", str(MAX_BATCH))
    assert m["requests"] == 400
    assert _process_names(events) == {1: "replica 0", 2: "replica 1"}
    _assert_phases_add_up(_slices(events), rows)
    lanes = _assert_lanes_never_overlap(events)
    # lanes are bounded: a replica has no more lanes than it ever held requests at once (queued ones too)
    for pid, count in lanes.items():
        peak = _peak_requests([(r["arrival"], r["finish"]) for r in rows.values() if r["replica"] == pid - 1])
        assert 1 < count <= peak, (pid, count, peak)
    _assert_counters_within_limits(events, {1, 2}, m["kv_capacity_tokens"])
    batch = [s["args"]["decoding"] + s["args"]["prefilling"] for v in _counters(events, "batch").values() for s in v]
    assert max(batch) == MAX_BATCH, "at this rate the batch fills"
    waiting = [s["args"]["waiting"] for v in _counters(events, "queue").values() for s in v]
    assert max(waiting) > 0, "and requests wait in the queue"


def test_disaggregated_timeline_names_prefill_and_decode_replicas(tmp_path: Path) -> None:
    events, rows, m = _trace(tmp_path, "--input-len", "1024", "--output-len", "32", "--rate", "30", "--requests",
                             "200", "--devices", "3", "--disaggregate", "1:2", "--max-batch", str(MAX_BATCH))
    assert _process_names(events) == {1: "replica 0 (prefill)", 2: "replica 1 (decode)", 3: "replica 2 (decode)"}
    slices = _slices(events)
    _assert_phases_add_up(slices, rows)
    for rid, row in rows.items():
        # queueing and prefill on the prefill replica; decode (with the KV transfer) where the records say
        assert slices[rid]["queue"]["pid"] == slices[rid]["prefill"]["pid"] == 1
        assert slices[rid]["decode"]["pid"] == row["replica"] + 1 in (2, 3)
    _assert_lanes_never_overlap(events)
    _assert_counters_within_limits(events, {1, 2, 3}, m["kv_capacity_tokens"])
    batch = _counters(events, "batch")
    assert all(s["args"]["decoding"] == 0 for s in batch[1]), "the prefill replica decodes nothing"
    assert all(s["args"]["prefilling"] == 0 for pid in (2, 3) for s in batch[pid]), "decode replicas prefill nothing"
    assert any(s["args"]["decoding"] > 1 for pid in (2, 3) for s in batch[pid])


def test_a_failed_run_leaves_no_timeline(tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    n = 50
    table = RequestTable.single_turn(np.arange(n) * 0.05, np.full(n, 128), np.full(n, 16))

    def stop(seq, now) -> None:
        if seq.rid == 20:
            raise RuntimeError("enough")
    with pytest.raises(RuntimeError, match="enough"):
        simulate(load_model("llama-2-7b"), load_chip("h100-sxm"), Deployment(), [table], [ClassInfo("all")],
                 Pools(), trace_path=str(trace), watch=stop)
    assert not list(tmp_path.iterdir())


def test_a_request_takes_the_lowest_lane_free_at_its_start_even_when_it_enters_late(tmp_path: Path) -> None:
    """P/D hand-offs reach a decode replica after their KV transfer, so one whose decode starts earlier can enter
    later than another: a lane let go after its start is not free for it, however low."""
    from types import SimpleNamespace

    from tokenfab.serve.simulate import _Timeline
    cfg = SimpleNamespace(max_batch=4, kv_tokens=1000)
    replicas = [SimpleNamespace(cfg=cfg, outstanding=1) for _ in range(2)]
    cluster = SimpleNamespace(pools=Pools(prefill=1, decode=1), replicas=replicas, on_enter=None, on_handoff=None)
    trace = tmp_path / "t.json"
    tl = _Timeline(str(trace), cluster)
    assert cluster.on_enter == tl.enter and cluster.on_handoff == tl.handoff

    def seq(rid: int, first_t: float) -> SimpleNamespace:
        return SimpleNamespace(rid=rid, replica=1, first_t=first_t)
    a, b, y, x, z = seq(0, 0.0), seq(1, 0.0), seq(2, 2.0), seq(3, 1.55), seq(4, 2.1)
    tl.enter(a, 0.01, True)
    tl.enter(b, 0.01, True)
    assert (tl.lane[0], tl.lane[1]) == (0, 1)
    assert tl.finish(a, 1.5) == (1, 0, 0) and tl.finish(b, 1.6) == (1, 1, 1)
    tl.enter(y, 2.01, True)     # decode from 2.0: both lanes are free by then; the lowest
    tl.enter(x, 2.02, True)     # decode from 1.55: lane 1 is busy until 1.6, so a new lane
    tl.enter(z, 2.11, True)     # decode from 2.1: lane 1 is free again
    assert (tl.lane[2], tl.lane[3], tl.lane[4]) == (0, 2, 1)
    # a step that ends past an arrival reports its finishes before the arrival is routed: the lane a request let
    # go at 5.0 is not free to one arriving at 4.0
    c, d, e = (SimpleNamespace(rid=rid, replica=0, first_t=math.nan) for rid in (5, 6, 7))
    tl.enter(c, 3.0, False)
    tl.finish(c, 5.0)
    tl.enter(d, 4.0, False)
    tl.enter(e, 5.0, False)
    assert (tl.lane[6], tl.lane[7]) == (1, 0)
    tl.close(True)
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in json.loads(trace.read_text())
               if e["name"] == "thread_name"}
    assert threads == {(2, 1): "lane 0", (2, 2): "lane 1", (2, 3): "lane 2", (1, 1): "lane 0", (1, 2): "lane 1"}
