"""Properties of the serving simulator: conservation, capacity, determinism, and the event shortcuts."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tokenfab.deployment import Deployment
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.perf.params import shipped_calibration
from tokenfab.perf.steptimer import StepTimer
from tokenfab.serve.cluster import Pools
from tokenfab.serve.engine import EngineConfig, Replica, Seq
from tokenfab.serve.simulate import ClassInfo, engine_config, simulate
from tokenfab.workload import RequestTable

MODEL, CHIP = load_model("llama-2-7b"), load_chip("h100-sxm")
ONE = [ClassInfo("all", ttft_slo=0.5, tpot_slo=0.05, percentile=90)]


def poisson(n: int, rate: float, isl=512, osl=128, seed: int = 0) -> RequestTable:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / rate, n))
    if np.isscalar(isl):
        isl = np.full(n, isl)
    if np.isscalar(osl):
        osl = np.full(n, osl)
    return RequestTable.single_turn(arrival, isl, osl)


def varied(n: int, rate: float, seed: int = 0) -> RequestTable:
    rng = np.random.default_rng(seed + 7)
    return poisson(n, rate, rng.integers(16, 1500, n), rng.integers(1, 600, n), seed)


def run(table, engine="vllm", pools=None, tmp: Path | None = None, **cfg_changes):
    dep = Deployment(engine=engine)
    cfg = replace(engine_config(MODEL, CHIP, dep), **cfg_changes)
    path = str(tmp / "req.parquet") if tmp else None
    return simulate(MODEL, CHIP, dep, [table], ONE, pools, records_path=path, cfg=cfg)


@pytest.mark.parametrize("engine", ["vllm", "trtllm"])
@pytest.mark.parametrize("preemption", ["recompute", "swap"])
def test_every_request_finishes_once_tokens_conserved_kv_bounded(tmp_path: Path, engine: str, preemption: str) -> None:
    table = varied(600, 40.0)
    res = run(table, engine, tmp=tmp_path, kv_tokens=30_000, preemption=preemption)
    rec = pq.read_table(tmp_path / "req.parquet")
    ids = rec.column("request").to_numpy()
    assert len(ids) == 600 and len(set(ids.tolist())) == 600
    assert rec.column("output_len").to_numpy().sum() == table.output_len.sum()
    assert res.metrics["kv_peak_tokens"] <= 30_000
    first = rec.column("first_token").to_numpy()
    arrival = rec.column("arrival").to_numpy()
    finish = rec.column("finish").to_numpy()
    assert np.all(first > arrival) and np.all(finish >= first)
    if engine == "vllm":
        assert res.metrics["preemptions"] > 0   # the small pool forces evictions on this load
    else:
        assert res.metrics["preemptions"] == 0  # no-evict reservation never preempts


def test_same_seed_same_result() -> None:
    a = run(varied(300, 20.0, seed=3)).metrics
    b = run(varied(300, 20.0, seed=3)).metrics
    assert a == b


def test_decode_runs_equal_step_by_step() -> None:
    table = varied(200, 15.0)
    fast = run(table).metrics
    slow = run(table, max_run=1).metrics
    for key in ("ttft_ms_p50", "tpot_ms_p50", "tpot_ms_p99", "e2e_ms_mean", "energy_j"):
        assert fast[key] == pytest.approx(slow[key], rel=1e-6), key


def test_more_replicas_never_raise_p99_ttft() -> None:
    table = poisson(1500, 30.0)
    p99 = [run(table, pools=Pools(replicas=r)).metrics["ttft_ms_p99"] for r in (1, 2, 4)]
    assert p99[1] <= p99[0] * 1.05 and p99[2] <= p99[1] * 1.05


def test_load_raises_latency_and_saturates_throughput() -> None:
    light, heavy = run(poisson(800, 5.0)).metrics, run(poisson(800, 60.0)).metrics
    assert heavy["tpot_ms_p50"] > light["tpot_ms_p50"]
    assert heavy["mean_decode_batch"] > light["mean_decode_batch"]
    assert light["steady_output_tokens_per_s"] == pytest.approx(5.0 * 128, rel=0.1)


def test_prefix_cache_hits_cut_ttft() -> None:
    table = poisson(400, 10.0, isl=1500, osl=32)
    shared = replace(table, prefix_group=np.zeros(400, dtype=np.int64), prefix_len=np.full(400, 1400))
    cold, warm = run(table).metrics, run(shared).metrics
    assert warm["prefix_cache_hit_tokens"] >= 399 * 1399 * 0.99
    assert warm["ttft_ms_p50"] < 0.5 * cold["ttft_ms_p50"]


def test_disaggregation_moves_decode_off_prefill_pool() -> None:
    table = poisson(600, 20.0, isl=2000, osl=64)
    mixed = run(table, pools=Pools(replicas=2)).metrics
    split = run(table, pools=Pools(prefill=1, decode=1)).metrics
    assert split["requests"] == 600
    # decode steps no longer carry prompt chunks, so inter-token time drops
    assert split["tpot_ms_p50"] < mixed["tpot_ms_p50"]


def test_closed_loop_keeps_concurrency() -> None:
    n, conc = 300, 8
    table = poisson(n, 1.0)
    arrival = np.full(n, np.nan)
    arrival[:conc] = 0.0
    res = run(replace(table, arrival=arrival)).metrics
    assert res["requests"] == n
    assert res["mean_decode_batch"] <= conc + 1e-9
    assert res["mean_decode_batch"] > conc * 0.7


def test_client_cap_holds_requests_in_flight_and_keeps_its_wait_out_of_ttft() -> None:
    table = poisson(400, 200.0, isl=256, osl=64)   # far past what one replica completes
    dep = Deployment(engine="vllm")
    free = simulate(MODEL, CHIP, dep, [table], ONE).metrics
    capped = simulate(MODEL, CHIP, dep, [table], ONE, client_cap=16).metrics
    assert capped["requests"] == free["requests"] == 400
    assert capped["mean_decode_batch"] <= 16 + 1e-9 < free["mean_decode_batch"]
    # the client queue grows without bound; the server's own queue does not, so TTFT stays short
    assert capped["ttft_ms_p90"] < 0.2 * free["ttft_ms_p90"]
    assert capped["tpot_ms_p50"] < free["tpot_ms_p50"]


def test_multi_turn_follow_ups_wait_for_the_previous_turn(tmp_path: Path) -> None:
    # two sessions of three turns; later turns arrive think_s after the previous one finishes
    arrival = np.array([0.0, np.nan, np.nan, 0.5, np.nan, np.nan])
    table = RequestTable(arrival, np.array([100, 300, 500, 100, 300, 500]), np.full(6, 50),
                          np.zeros(6, dtype=np.int64), np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2]),
                          np.array([0.0, 2.0, 2.0, 0.0, 2.0, 2.0]), np.array([-1, 100, 101, -1, 200, 201]),
                          np.array([0, 150, 350, 0, 150, 350]), np.array([100, 101, -1, 200, 201, -1]))
    res = run(table, tmp=tmp_path)
    rec = pq.read_table(tmp_path / "req.parquet").to_pydict()
    by = {(s, t): (a, f) for s, t, a, f in zip(rec["session"], rec["turn"], rec["arrival"], rec["finish"], strict=True)}
    for s in (0, 1):
        for t in (1, 2):
            assert by[(s, t)][0] == pytest.approx(by[(s, t - 1)][1] + 2.0)
    assert res.metrics["prefix_cache_hit_tokens"] > 0


@pytest.mark.parametrize("preemption", ["recompute", "swap"])
def test_a_request_longer_than_the_kv_pool_is_rejected_not_recomputed_for_ever(preemption: str) -> None:
    """On-demand allocation: a sequence whose prompt + output outgrows the whole pool used to be preempted
    and recomputed without end; it is refused at arrival, as vLLM refuses one beyond max_model_len."""
    isl = np.array([400, 3000, 400, 400])
    osl = np.array([300, 2500, 300, 300])       # the second needs 5,500 tokens of a 4,000-token pool
    res = run(poisson(4, 2.0, isl, osl), "vllm", kv_tokens=4_000, preemption=preemption)
    assert res.metrics["rejected"] == 1 and res.metrics["requests"] == 3
    assert res.metrics["kv_peak_tokens"] <= 4_000


@pytest.mark.parametrize("unit", [1, 64])
def test_prompt_chunks_come_in_whole_chunk_units(unit: int) -> None:
    """With a chunk unit, the prompt tokens of every step are a multiple of it (prompts of whole units)."""
    dep = Deployment(engine="trtllm")
    cfg = EngineConfig(kv_tokens=100_000, max_batch=16, token_budget=600, reserve_full=True, chunk_unit=unit)
    timer = StepTimer(MODEL, CHIP, dep, shipped_calibration().for_chip(CHIP), cfg.token_budget + cfg.max_batch)
    logged: list[tuple[int, float]] = []
    replica = Replica(0, timer, cfg, lambda seq, t: None, lambda i, b, ctx, p, pairs, emit, w: logged.append((b, p)))
    for rid in range(12):
        replica.enqueue(Seq(rid, 0.0, 512, 8), 0.0)
    while replica.busy:
        replica.act()
    mixed = [(b, p) for b, p in logged if p]
    assert sum(p for _, p in mixed) == 12 * 512
    off_unit = [p for b, p in mixed if p % 64]
    assert (not off_unit) if unit == 64 else off_unit    # without a unit, a step fills its budget exactly
    assert all(b + p <= cfg.token_budget for b, p in mixed)


def test_an_unsorted_trace_is_named_not_replayed_out_of_time(tmp_path):
    from tokenfab.workload import WorkloadError, iter_trace, read_trace
    f = tmp_path / "t.csv"
    f.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                 "5,ChatGPT,100,20,120,Conversation log\n3,ChatGPT,100,20,120,Conversation log\n")
    with pytest.raises(WorkloadError, match="request 2: timestamp 3 is earlier"):
        list(iter_trace(f))
    assert list(read_trace(f).arrival) == [0.0, 2.0]        # a whole file is sorted instead


def test_pd_on_a_chip_without_a_listed_nic_moves_kv_over_its_host_link():
    from dataclasses import replace

    from tokenfab.model import load_model
    from tokenfab.perf.params import shipped_calibration
    from tokenfab.serve.simulate import kv_transfer_time
    from tokenfab.silicon import resolve_chip
    chip = replace(resolve_chip("l40s"), scaleout_bw=0.0)
    dep = Deployment(tp=1)
    t = kv_transfer_time(load_model("llama-3.1-8b"), chip, dep, shipped_calibration().for_chip(chip))
    assert t(2048) < 1.0          # seconds for a 2k-token prompt's KV, not days


def test_idle_chips_draw_idle_power_between_steps():
    from tokenfab.predict import predict_one
    from tokenfab.queries import parse_query
    from tokenfab.silicon import resolve_chip
    out = predict_one(parse_query({"scenario": "server", "hardware": "h100-sxm", "model": "llama-3.1-8b",
                                   "input_len": 100, "output_len": 1, "rate": 2}))
    assert "tpot_ms_mean" not in out["predicted"]            # one output token: answered without TPOT
    idle = resolve_chip("h100-sxm").energy.static_w
    assert idle <= out["predicted"]["avg_power_w"] < 2 * idle


def test_class_energy_adds_up_and_follows_the_tokens_each_class_puts_through():
    """Two classes on one replica: long prompts with short answers, short prompts with long answers. Their
    energies sum to the run's, and the class with more tokens through the model carries more of it."""
    dep = Deployment(engine="vllm")
    rng = np.random.default_rng(3)
    n = 300
    docs = rng.random(n) < 0.5
    table = replace(poisson(n, 8.0, isl=np.where(docs, 2048, 256), osl=np.where(docs, 32, 256)),
                    class_id=docs.astype(np.int64))
    classes = [ClassInfo("chat"), ClassInfo("docs")]
    m = simulate(MODEL, CHIP, dep, [table], classes, None).metrics
    c = m["classes"]
    assert c["chat"]["energy_j"] + c["docs"]["energy_j"] == pytest.approx(m["energy_j"], rel=1e-9)
    assert c["docs"]["energy_j"] > c["chat"]["energy_j"]        # 2,080 tokens a request against 512
    # per output token the prompt-heavy class is the dearer by far
    assert c["docs"]["joules_per_output_token"] > 3 * c["chat"]["joules_per_output_token"]
