"""The design run end to end on a small problem: answer, determinism, resume after SIGKILL, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.search.problem import DesignProblem
from tokenfab.search.run import SearchOptions, design
from tokenfab.store import Store

OPTS = SearchOptions(exhaustive=True, top_k=3, sim_requests=300, samples=50)


def test_small_design_answers_and_stores_every_point(small_file, tmp_path):
    prob = DesignProblem.load(small_file)
    store = Store(tmp_path / "r.duckdb")
    s = design(prob, store, OPTS, jobs=1)
    assert s["custom"]["feasible"] and s["custom"]["usd_per_mtok"] > 0
    assert s["gpu"]["label"] and s["custom_band"][0] <= s["custom_band"][1] <= s["custom_band"][2]
    assert s["search"]["custom_evaluated"] == s["search"]["custom_space"] == 12
    assert s["tiers"]["k"] == 3 and len(s["tornado"]) == 5 and s["roofline"]["ops"]
    assert any(p["front"] for p in s["pareto"])
    (run,) = store.runs()
    assert run["status"] == "done" and run["points"] == 12 + len(s["catalog"]) + 3
    # the same question again is read back, not recomputed, and answers the same
    again = design(prob, store, OPTS, jobs=1)
    assert again["custom"] == s["custom"] and store.runs()[0]["points"] == run["points"]


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-c", "from tokenfab.cli import app; app()", "design", *args]


def test_resume_after_sigkill_equals_uninterrupted_run(small_file, tmp_path):
    args = ["--problem", str(small_file), "--exhaustive", "--top", "3", "--sim-requests", "300", "--samples",
            "50", "--jobs", "1"]
    clean = tmp_path / "clean.duckdb"
    subprocess.run(_cli([*args, "--store", str(clean), "--report", str(tmp_path / "a.html")]), check=True,
                   capture_output=True)
    db = tmp_path / "killed.duckdb"
    proc = subprocess.Popen(_cli([*args, "--store", str(db), "--report", str(tmp_path / "b.html")]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(db)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        runs = store.runs() if db.exists() else []
        if runs and runs[0]["points"] > 0:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = store.runs()[0]["points"]
    full = Store(clean).runs()[0]["points"]
    assert 0 < partial < full, "the kill landed after the run finished; nothing was resumed"
    subprocess.run(_cli([*args, "--store", str(db), "--report", str(tmp_path / "b.html")]), check=True,
                   capture_output=True)
    (a,), (b,) = Store(clean).runs(), store.runs()
    assert a["id"] == b["id"] and b["status"] == "done"
    ta, tb = Store(clean).points(a["id"]), store.points(b["id"])
    assert tb.num_rows == ta.num_rows == len(set(tb.column("key").to_pylist()))
    assert ta.equals(tb)


@pytest.mark.parametrize("change, needle", [
    ({"constraints": {"node": "n3", "power_w": 50, "max_chiplets": 2}}, "constraints.power_w"),
    ({"constraints": {"node": "n3", "power_w": 1500, "max_chiplets": 1}, "space_cores": [2048]}, "max_chiplets"),
    ({"demand_output_tokens_per_day": 1e9, "traffic": {"mix": {"chat": 1.0}}, "tpot_override": True}, "TPOT SLO"),
])
def test_infeasible_question_exits_2_and_leaves_store_unchanged(tmp_path, small_raw, change, needle):
    raw = {**small_raw, **{k: v for k, v in change.items() if k not in ("tpot_override", "space_cores")}}
    if "space_cores" in change:
        raw["space"]["cores"] = change["space_cores"]
    if change.get("tpot_override"):
        wl = tmp_path / "wl.yaml"
        wl.write_text(yaml.safe_dump({"arrival": {"kind": "poisson", "rate": 1.0}, "classes": [{
            "name": "fast", "share": 1.0, "input_len": 500, "output_len": 100,
            "slo": {"ttft_s": 1.0, "tpot_s": 0.0001, "percentile": 99}}]}))
        raw["traffic"] = {"file": str(wl)}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    db = tmp_path / "r.duckdb"
    res = CliRunner().invoke(app, ["design", "--problem", str(path), "--store", str(db), "--exhaustive", "--jobs", "1",
                                   "--report", str(tmp_path / "r.html")])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], res.output
    assert not db.exists() and not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("args, needle", [
    (["--workload", "chat+nosuch"], "preset 'nosuch' unknown"),
    (["--traffic", "chat+nosuch"], "preset 'nosuch' unknown"),   # the older name, still taken
    (["--top-k", "2"], "--top = 2: at least 3"),
    (["--node", "n1"], "constraints.node"),
    (["--backend", "spark"], "--backend"),
])
def test_bad_flags_exit_2(tmp_path, args, needle):
    db = tmp_path / "r.duckdb"
    res = CliRunner().invoke(app, ["design", "--store", str(db), *args])
    assert res.exit_code == 2 and needle in res.output
    assert not db.exists()


def test_results_lists_and_exports(small_file, tmp_path):
    db = tmp_path / "r.duckdb"
    design(DesignProblem.load(small_file), Store(db), OPTS, jobs=1)
    runner = CliRunner()
    res = runner.invoke(app, ["results", "--store", str(db)])
    assert res.exit_code == 0 and "design" in res.output and "done" in res.output
    rid = Store(db).runs()[0]["id"]
    for ext in ("parquet", "csv"):
        res = runner.invoke(app, ["results", rid[:6], "--store", str(db), "--export", str(tmp_path / f"p.{ext}")])
        assert res.exit_code == 0 and (tmp_path / f"p.{ext}").stat().st_size > 0
    res = runner.invoke(app, ["results", "zzzz", "--store", str(db)])
    assert res.exit_code == 2


def test_a_custom_chips_links_domain_and_nic_speed_are_priced_by_the_network_model(small_file):
    """More scale-up links, a larger domain or a faster NIC put more switches, optics and watts on each chip."""
    from tokenfab.constants import Draws
    from tokenfab.search.chips import custom_candidate
    from tokenfab.search.problem import DesignProblem
    from tokenfab.search.screen import network_share
    prob = DesignProblem.load(small_file)
    base = {"cores": 64, "clock_ghz": 1.4, "memory": "HBM3E:4x36", "sram_shared_mb": 128, "scaleup_links": 16,
            "scaleup_domain": 32, "scaleout_gbps": 400}
    d = Draws()

    def share(**axes):
        cand = custom_candidate(prob, {**base, **axes})
        return network_share(cand, d, 1024)

    ref = share()
    for bigger in ({"scaleup_links": 32}, {"scaleup_domain": 128}, {"scaleout_gbps": 800}):
        other = share(**bigger)
        assert float(other.usd(())) > float(ref.usd(())) and float(other.w) > float(ref.w), bigger
    assert float(share(scaleup_domain=128).pod_usd) > 0 == float(ref.pod_usd)     # beyond a rack: optics, 2 tiers


def test_the_pareto_front_is_the_same_whatever_order_the_points_come_in():
    from tokenfab.search.run import pareto
    rows = [{"label": name, "custom": name == "c", "feasible": True,
             "tiers": [{"floor": f, "usd_per_mtok": usd, "user_tps": tps, "tokens_per_j": tpj}
                       for f, usd, tps, tpj in tiers]}
            for name, tiers in (("a", [(10, 1.0, 20, 3), (30, 1.5, 35, 2)]), ("b", [(10, 0.5, 10, 2)]),
                                ("c", [(10, 0.7, 25, 1), (30, 2.0, 40, 4)]))]
    assert pareto(rows) == pareto(rows[::-1]) == pareto(rows[1:] + rows[:1])
