"""Traffic module: sampling, mixes, sessions, arrivals, presets, workload files and trace readers."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenfab import catalog
from tokenfab.workload import (
    SLO,
    Closed,
    Gamma,
    LengthDist,
    Offline,
    Poisson,
    RequestClass,
    RequestTable,
    Trace,
    Workload,
    WorkloadError,
    fixed,
    iter_trace,
    load_workload,
    preset,
    preset_names,
    read_trace,
)

DATA = Path(__file__).resolve().parent / "data"
AZURE, BURST, MOONCAKE = DATA / "azure_sample.csv", DATA / "burstgpt_sample.csv", DATA / "mooncake_sample.jsonl"
INT_COLS = ("input_len", "output_len", "class_id", "session", "turn", "prefix_group", "prefix_len", "cache_group")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def _two_class(arrival=None) -> Workload:
    chat = RequestClass("chat", 7, LengthDist.lognormal(800, std=600, max=8000), LengthDist.normal(200, 80, min=1),
                        SLO(0.5, 0.05, 99.0))
    agent = RequestClass("agent", 3, LengthDist.empirical([100, 300, 500], [1, 2, 1]), LengthDist.fixed(50), None,
                         shared_prefix=400, turns=LengthDist.lognormal(4, sigma=0.6, max=12),
                         think_s=LengthDist.lognormal(2.0, sigma=1.0, min=0.1, max=30))
    return Workload((chat, agent), arrival or Poisson(10.0))


# ---- length distributions -------------------------------------------------------------------------


@pytest.mark.parametrize("dist", [
    LengthDist.fixed(128),
    LengthDist.normal(900, 400, min=80, max=2500),
    LengthDist.lognormal(1155, std=1109, min=2, max=14050),
    LengthDist.lognormal(4043, sigma=0.9, min=16, max=32768),
    LengthDist.empirical([10, 20, 1000], [0.5, 0.3, 0.2]),
    LengthDist.normal(3, 10),  # mostly clipped to 1
])
def test_sample_mean_matches_distribution_mean(dist):
    x = dist.sample(_rng(), 200_000)
    assert x.dtype == np.int64 and x.min() >= 1
    if dist.max is not None:
        assert x.max() <= dist.max
    assert x.mean() == pytest.approx(dist.mean, rel=0.015)


@settings(max_examples=25, deadline=None)
@given(mean=st.floats(5, 5000), spread=st.floats(0.05, 1.5), kind=st.sampled_from(["normal", "lognormal"]),
       lo=st.one_of(st.none(), st.floats(1, 50)), hi_factor=st.one_of(st.none(), st.floats(1.2, 5)))
def test_clipped_mean_property(mean, spread, kind, lo, hi_factor):
    hi = None if hi_factor is None else max(mean, lo or 0) * hi_factor
    dist = (LengthDist.normal(mean, spread * mean, min=lo, max=hi) if kind == "normal"
            else LengthDist.lognormal(mean, sigma=spread, min=lo, max=hi))
    x = dist.sample(_rng(1), 40_000)
    tol = 5 * x.std() / np.sqrt(len(x)) + 0.5  # sampling error plus rounding to whole tokens
    assert abs(x.mean() - dist.mean) <= tol


def test_think_times_are_float_seconds():
    d = LengthDist.lognormal(2.0, sigma=1.0, min=0.1, max=30)
    x = d.sample_seconds(_rng(), 100_000)
    assert x.dtype == np.float64 and x.min() >= 0.1 and x.max() <= 30
    assert x.mean() == pytest.approx(d.mean_seconds, rel=0.02)


def test_lognormal_std_and_sigma_agree():
    a = LengthDist.lognormal(100, std=100)
    assert a.sigma == pytest.approx(np.sqrt(np.log(2)))
    assert LengthDist.lognormal(100, sigma=a.sigma).mean == pytest.approx(100)


# ---- workload generation ---------------------------------------------------------------------------


def test_same_seed_same_rows_other_seed_other_rows():
    wl = _two_class()
    a, b, c = wl.requests(5000, 7), wl.requests(5000, 7), wl.requests(5000, 8)
    assert a.equals(b) and not a.equals(c)
    for name in INT_COLS:
        assert getattr(a, name).dtype == np.int64
    assert a.arrival.dtype == np.float64 and a.think_s.dtype == np.float64


def test_requests_is_a_prefix_of_a_longer_run():
    wl = _two_class()
    short, long = wl.requests(20_000, 3), wl.requests(40_000, 3)
    head = long[:20_000]
    assert np.array_equal(short.input_len, head.input_len)
    assert np.array_equal(short.arrival, head.arrival, equal_nan=True)
    assert np.array_equal(short.cache_group[:-1], head.cache_group[:-1]) and short.cache_group[-1] == -1


@pytest.mark.parametrize("chunk", [1, 999, 4096, 65536])
def test_chunks_concatenate_to_requests_and_keep_sessions_whole(chunk):
    wl = _two_class()
    n = 30_000 if chunk > 1 else 300
    parts = list(wl.chunks(n, 11, chunk=chunk))
    assert RequestTable.concat(parts).equals(wl.requests(n, 11))
    assert all(p.turn[0] == 0 for p in parts)  # a chunk never starts inside a session
    assert all(len(p) <= chunk + 12 for p in parts)  # at most one session (<= 12 turns) beyond the target


def test_shares_are_normalised_and_respected():
    wl = _two_class()
    assert [c.share for c in wl.classes] == pytest.approx([0.7, 0.3])
    r = wl.requests(60_000, 5)
    first = r[r.turn == 0]
    assert np.mean(first.class_id == 0) == pytest.approx(0.7, abs=0.01)


def test_multi_turn_history_grows_and_prefix_points_at_the_previous_turn():
    wl = _two_class()
    r = wl.requests(20_000, 2)
    k = np.flatnonzero(r.turn > 0)
    prev = k - 1
    assert np.all(r.session[k] == r.session[prev]) and np.all(r.turn[k] == r.turn[prev] + 1)
    history = r.input_len[prev] + r.output_len[prev]
    assert np.all(r.input_len[k] >= history + 1)
    assert np.array_equal(r.prefix_len[k], history)
    assert np.array_equal(r.prefix_group[k], r.cache_group[prev])
    assert np.array_equal(r.prefix_group[k], len(wl.classes) + r.session[k])
    assert np.isnan(r.arrival[k]).all() and (r.think_s[k] >= 0.1).all()
    first = r.turn == 0
    assert not np.isnan(r.arrival[first]).any() and (r.think_s[first] == 0).all()
    assert np.all(np.diff(r.arrival[first]) >= 0)  # open loop: sessions in arrival order
    # turn 0 of the agent class starts with its 400-token system prompt, shared class-wide
    agent0 = first & (r.class_id == 1)
    assert (r.prefix_group[agent0] == 1).all() and (r.prefix_len[agent0] == 400).all()
    assert (r.input_len[agent0] >= 401).all()
    chat = r.class_id == 0
    assert (r.prefix_group[chat] == -1).all() and (r.cache_group[chat] == -1).all() and (r.turn[chat] == 0).all()
    assert (r.prefix_len <= r.input_len).all()


def test_gamma_burstier_than_poisson_and_cv_zero_is_even():
    def gaps(arrival):
        return np.diff(fixed(100, 10).with_arrival(arrival).requests(50_000, 1).arrival)

    poisson_gaps, bursty = gaps(Poisson(5.0)), gaps(Gamma(5.0, 4.0))
    assert poisson_gaps.mean() == pytest.approx(0.2, rel=0.02)
    assert bursty.mean() == pytest.approx(0.2, rel=0.1)
    assert bursty.var() > 4 * poisson_gaps.var()
    assert poisson_gaps.std() / poisson_gaps.mean() == pytest.approx(1.0, abs=0.03)
    assert np.allclose(gaps(Gamma(5.0, 0.0)), 0.2)
    assert gaps(Gamma(5.0, 1.0)).std() / 0.2 == pytest.approx(1.0, abs=0.03)


def test_closed_and_offline_arrivals():
    r = fixed(10, 10, concurrency=8).requests(100, 0)
    assert (r.arrival[:8] == 0).all() and np.isnan(r.arrival[8:]).all()
    assert (fixed(10, 10).requests(50, 0).arrival == 0).all()
    assert isinstance(fixed(10, 10).arrival, Offline)
    r = fixed(2048, 512, rate=3.0).requests(10, 0)
    assert (r.input_len == 2048).all() and (r.output_len == 512).all() and (r.prefix_group == -1).all()


def test_trace_arrivals_replay_and_repeat():
    times = read_trace(AZURE).arrival
    r = fixed(10, 10).with_arrival(Trace(str(AZURE), speedup=2.0)).requests(2 * len(times), 0)
    assert np.allclose(r.arrival[: len(times)], times / 2)
    assert np.all(np.diff(r.arrival) > 0)


def test_with_rate_keeps_the_arrival_family():
    assert preset("code", rate=9.0).arrival == Gamma(9.0, 10.0)
    assert preset("chat", rate=9.0).arrival == Poisson(9.0)
    assert preset("chat", concurrency=16).arrival == Closed(16)
    with pytest.raises(WorkloadError, match="poisson or gamma"):
        fixed(1, 1, concurrency=2).with_rate(3.0)


# ---- presets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat", "rag", "reasoning", "agentic", "summarisation", "code"])
def test_presets_load_with_slos(name):
    wl = preset(name)
    assert name in preset_names()
    for c in wl.classes:
        assert c.slo is not None and c.slo.percentile in (90.0, 99.0)
    r = wl.requests(2000, 0)
    assert len(r) == 2000 and (r.input_len >= 1).all() and (r.output_len >= 1).all()


def test_every_preset_figure_has_a_source_or_is_a_marked_assumption():
    for name, rec in catalog.workloads().items():
        for cls in rec["classes"]:
            for key in ("input_len", "output_len", "slo", "turns", "think_s"):
                fig = cls.get(key)
                if fig is None:
                    continue
                sourced = fig.get("source") or fig.get("sources")
                assumed = fig.get("assumption") and "low" in fig and "high" in fig
                assert sourced or assumed, f"{name}.{cls['name']}.{key} has no source"


def test_preset_means_reproduce_their_sources():
    assert preset("chat").classes[0].input_len.mean == pytest.approx(1155, rel=0.02)
    assert preset("reasoning").classes[0].output_len.mean == pytest.approx(4043, rel=0.02)
    agent = preset("agentic").requests(100_000, 0)  # Mooncake tool-and-agent trace: 8,596 in / 182 out
    assert agent.input_len.mean() == pytest.approx(8596, rel=0.03)
    assert agent.output_len.mean() == pytest.approx(182, rel=0.03)


# ---- bad input --------------------------------------------------------------------------------------


def _write(tmp_path: Path, data) -> Path:
    p = tmp_path / "wl.yaml"
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


GOOD_CLASS = {"name": "c", "share": 1, "input_len": {"kind": "normal", "mean": 500, "std": 100},
              "output_len": 100, "slo": {"ttft_s": 1, "tpot_s": 0.05, "percentile": 90}}


def test_load_workload_file(tmp_path):
    agent = dict(GOOD_CLASS, name="a", share=3, shared_prefix=64, turns={"kind": "fixed", "value": 3},
                 think_s=1.5)
    trace_copy = tmp_path / "t.csv"
    trace_copy.write_bytes(AZURE.read_bytes())
    wl = load_workload(_write(tmp_path, {"arrival": {"kind": "trace", "path": "t.csv"},
                                         "classes": [GOOD_CLASS, agent]}))
    assert [c.share for c in wl.classes] == [0.25, 0.75]
    assert wl.classes[1].think_s == LengthDist.fixed(1.5) and isinstance(wl.arrival, Trace)
    assert wl.requests(100, 0).turn.max() == 2
    from_preset = load_workload(_write(tmp_path, {"preset": "rag", "arrival": {"kind": "closed", "concurrency": 4}}))
    assert from_preset.arrival == Closed(4) and from_preset.classes == preset("rag").classes


@pytest.mark.parametrize("data, match", [
    ({"preset": "chatt"}, r"preset 'chatt' unknown: allowed chat, code, rag"),
    ({"arrival": {"kind": "poisson", "rate": 1}, "classes": [dict(GOOD_CLASS, slo={"ttft_s": 1})]},
     r"classes\[0\]\.slo\.percentile is required"),
    ({"arrival": {"kind": "poisson", "rate": 0}, "classes": [GOOD_CLASS]}, r"arrival\.rate must be > 0"),
    ({"arrival": {"kind": "gamma", "rate": -2, "cv": 2}, "classes": [GOOD_CLASS]}, r"arrival\.rate must be > 0"),
    ({"arrival": {"kind": "gamma", "rate": 2}, "classes": [GOOD_CLASS]}, r"arrival\.cv is required"),
    ({"arrival": {"kind": "poisson", "rate": 1}, "classes": [dict(GOOD_CLASS, share=-1)]},
     r"classes\[0\]\.share must be >= 0"),
    ({"arrival": {"kind": "poisson", "rate": 1},
      "classes": [dict(GOOD_CLASS, input_len={"kind": "zipf", "mean": 3})]},
     r"classes\[0\]\.input_len\.kind: Input should be 'fixed', 'normal', 'lognormal' or 'empirical'"),
    ({"arrival": {"kind": "uniform", "rate": 1}, "classes": [GOOD_CLASS]},
     r"arrival\.kind: Input should be 'poisson', 'gamma', 'closed', 'offline' or 'trace'"),
    ({"arrival": {"kind": "poisson", "rate": 1},
      "classes": [dict(GOOD_CLASS, input_len={"kind": "normal", "mean": 3})]},
     r"classes\[0\]\.input_len\.std is required"),
    ({"arrival": {"kind": "poisson", "rate": 1}, "classes": [dict(GOOD_CLASS, inputlen=3)]},
     r"classes\[0\]\.inputlen: unknown field: allowed .*input_len"),
    ({"arrival": {"kind": "poisson", "rate": 1}, "classes": [dict(GOOD_CLASS, slo={"ttft_s": 1, "percentile": 120})]},
     r"slo\.percentile must be in \(0, 100\]"),
    ({"arrival": {"kind": "closed", "concurrency": 0}, "classes": [GOOD_CLASS]}, r"arrival\.concurrency must be"),
    ({"arrival": {"kind": "trace", "path": "nope.csv"}, "classes": [GOOD_CLASS]}, r"arrival\.path: trace file"),
    ({"classes": [GOOD_CLASS]}, r"arrival: required: kind is one of poisson"),
    ({"arrival": {"kind": "offline"}, "classes": [dict(GOOD_CLASS, share=0)]}, r"shares must have a positive sum"),
    ("classes: [unclosed", r"not valid YAML at line"),
])
def test_bad_workload_files_name_the_field(tmp_path, data, match):
    with pytest.raises(WorkloadError, match=match) as err:
        load_workload(_write(tmp_path, data))
    assert "\n" not in str(err.value)


def test_bad_python_arguments():
    with pytest.raises(WorkloadError, match="preset 'x' unknown: allowed chat"):
        preset("x")
    with pytest.raises(TypeError):
        SLO(1.0, 0.1)  # the percentile is not optional
    with pytest.raises(WorkloadError, match="percentile is required"):
        SLO(1.0, 0.1, None)
    with pytest.raises(WorkloadError, match="rate must be > 0"):
        Poisson(-1)
    with pytest.raises(WorkloadError, match="cv must be >= 0"):
        Gamma(1, -1)
    with pytest.raises(WorkloadError, match="share must be >= 0"):
        RequestClass("a", -0.1, LengthDist.fixed(1), LengthDist.fixed(1))
    with pytest.raises(WorkloadError, match="kind 'zipf' unknown: allowed fixed, normal, lognormal, empirical"):
        LengthDist("zipf")
    with pytest.raises(WorkloadError, match="exactly one of std or sigma"):
        LengthDist.lognormal(10)
    with pytest.raises(WorkloadError, match="give rate or concurrency, not both"):
        fixed(1, 1, rate=1, concurrency=1)
    with pytest.raises(WorkloadError, match="class names must be unique"):
        Workload((RequestClass("a", 1, LengthDist.fixed(1), LengthDist.fixed(1)),) * 2, Poisson(1))


# ---- trace readers ----------------------------------------------------------------------------------


def test_azure_reader_converts_datetimes_to_seconds_from_the_first_row():
    r = read_trace(AZURE)
    with AZURE.open() as fh:
        rows = list(csv.DictReader(fh))
    stamps = [datetime.fromisoformat(row["TIMESTAMP"][:26]) for row in rows]
    expected = np.array([(s - stamps[0]).total_seconds() for s in stamps])
    assert len(r) == len(rows) == 300
    assert np.allclose(r.arrival, expected, atol=1e-6) and r.arrival[0] == 0
    assert np.array_equal(r.input_len, [int(row["ContextTokens"]) for row in rows])
    assert np.array_equal(r.output_len, [int(row["GeneratedTokens"]) for row in rows])
    assert (r.prefix_group == -1).all() and (r.turn == 0).all() and np.array_equal(r.session, np.arange(300))


def test_azure_reader_accepts_the_2024_timezone_format(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2024-05-12 00:00:00.001163+00:00,1452,3\n"
                 "2024-05-12 00:00:00+00:00,584,3\n2024-05-12 00:00:01.5+01:00,9,9\n")
    r = read_trace(p)  # the +01:00 row is an hour earlier: rows are sorted and shifted to start at 0
    assert np.allclose(r.arrival, [0.0, 3598.5, 3598.501163]) and np.array_equal(r.input_len, [9, 584, 1452])


def test_burstgpt_reader_drops_failed_requests():
    r = read_trace(BURST)
    with BURST.open() as fh:
        rows = list(csv.DictReader(fh))
    ok = [row for row in rows if int(row["Response tokens"]) > 0]
    assert len(rows) == 300 and len(r) == len(ok) == 290
    assert np.array_equal(r.output_len, [int(row["Response tokens"]) for row in ok])
    assert np.allclose(r.arrival, [float(row["Timestamp"]) - float(ok[0]["Timestamp"]) for row in ok])


def test_mooncake_reader_finds_the_longest_seen_prefix():
    r = read_trace(MOONCAKE)
    recs = [json.loads(line) for line in MOONCAKE.read_text().splitlines()]
    owner: dict[int, int] = {}
    for i, rec in enumerate(recs):  # brute force: longest run of leading blocks seen before
        m = 0
        while m < len(rec["hash_ids"]) and rec["hash_ids"][m] in owner:
            m += 1
        assert r.prefix_len[i] == min(512 * m, rec["input_length"])
        assert r.prefix_group[i] == (owner[rec["hash_ids"][m - 1]] if m else -1)
        for h in rec["hash_ids"][m:]:
            owner.setdefault(h, i)
    assert (r.prefix_len > 0).mean() > 0.5 and np.array_equal(r.cache_group, np.arange(len(recs)))
    assert np.allclose(r.arrival, [rec["timestamp"] / 1000 for rec in recs])


def test_format_is_sniffed_or_given(tmp_path):
    odd = tmp_path / "trace.txt"
    odd.write_bytes(MOONCAKE.read_bytes())
    assert read_trace(odd).equals(read_trace(MOONCAKE, format="mooncake"))
    assert sum(len(c) for c in iter_trace(AZURE, chunk=64)) == 300
    assert RequestTable.concat(iter_trace(AZURE, chunk=7)).equals(read_trace(AZURE))
    bad = tmp_path / "x.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(WorkloadError, match="trace format not recognised: expected an Azure CSV"):
        read_trace(bad)
    with pytest.raises(WorkloadError, match="trace format 'parquet' unknown: allowed azure, burstgpt, mooncake"):
        read_trace(AZURE, format="parquet")


def _corrupt(tmp_path: Path, src: Path, line: int, text: str) -> Path:
    lines = src.read_text().splitlines()
    lines[line - 1] = text
    p = tmp_path / src.name
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("src, line, text, match", [
    (AZURE, 57, "2023-11-16 18:16:00.1,12x,4", r":57: field 'ContextTokens' is '12x'"),
    (AZURE, 120, "2023-11-16 18:16:00.1,12,-4", r":120: field 'GeneratedTokens' is '-4'"),
    (AZURE, 9, "2023-11-16 25:16:00.1,12,4", r":9: field 'TIMESTAMP' is '2023-11-16 25:16:00.1'"),
    (AZURE, 200, "2023-11-16 18:16:00.1,12", r":200: expected 3 fields"),
    (BURST, 33, "nan,ChatGPT,1,2,3,API log", r":33: field 'Timestamp' is 'nan'"),
    (BURST, 250, '7,"GPT-4",1,2,3', r":250: expected 6 fields"),
    (MOONCAKE, 12, '{"timestamp": 5, "input_length": 10', r":12: not valid JSON"),
    (MOONCAKE, 40, '{"timestamp": 5, "output_length": 10, "hash_ids": []}', r":40: field 'input_length' is None"),
    (MOONCAKE, 41, '{"timestamp": 5, "input_length": 10, "output_length": 1, "hash_ids": [1, "a"]}',
     r":41: field 'hash_ids'"),
])
def test_malformed_rows_report_file_line_and_field(tmp_path, src, line, text, match):
    with pytest.raises(WorkloadError, match=match) as err:
        read_trace(_corrupt(tmp_path, src, line, text))
    assert "\n" not in str(err.value)


def test_reader_handles_blank_lines_and_many_chunks(tmp_path):
    text = AZURE.read_text().splitlines()
    p = tmp_path / "gaps.csv"
    p.write_text("\n".join(text[:50] + [""] + text[50:]) + "\n")
    assert read_trace(p).equals(read_trace(AZURE))
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(text[:50] + [""] + text[50:60] + ["2023-11-16 18:16:00.1,zz,1"]) + "\n")
    with pytest.raises(WorkloadError, match=r":62: field 'ContextTokens' is 'zz'"):
        read_trace(broken)
