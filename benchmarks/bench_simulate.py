"""Serving-simulator speed, side by side with Microsoft's Vidur on the same workload, plus a 1M-request trace.

    python benchmarks/bench_simulate.py [--vidur PATH/TO/vidur.sh] [--requests 10000] [--skip-million]

Workload (the peer harness's default): Llama-2-7B on one H100, fixed 512 input / 128 output tokens,
Poisson 10 req/s. Both tools run as whole processes (start-up included) and their wall time and peak
memory are measured the same way; Vidur runs through its own script and virtualenv (it is never a
dependency of tokenfab). The TTFT/TPOT medians of both are printed next to each other (Vidur's
attention profile in that harness is synthetic, so its latencies are indicative only).
The second part writes a 1,000,000-row trace in the Azure LLM-inference CSV format and simulates it.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TOKENFAB = [str(Path(sys.executable).parent / "tokenfab")]
DEFAULT_VIDUR = ROOT.parent / "shared" / "peers" / "vidur" / "vidur.sh"


def timed(cmd: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system), peak RSS (MiB; GNU time's %M, as the Vidur script
    measures it) and stdout. CPU time is the fairer figure when other work shares the machine."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as rss:
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", rss.name, *cmd], capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
        peak_kib, user, system = rss.read().strip().splitlines()[-1].split()
    return wall, float(user) + float(system), int(peak_kib) / 1024.0, proc.stdout


def run_tokenfab(requests: int, repeats: int) -> dict[str, float]:
    """Median wall and CPU time of `repeats` whole-process runs (a run takes well under a second, so one
    sample is at the mercy of the scheduler); the largest peak memory."""
    # A pip install compiles the package's bytecode once (Vidur's virtualenv has it too); an editable checkout
    # under PYTHONDONTWRITEBYTECODE has none and would recompile every module on each run.
    compileall.compile_dir(ROOT / "src" / "tokenfab", quiet=1)
    cmd = TOKENFAB + ["simulate", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--input-len", "512",
                      "--output-len", "128", "--rate", "10", "--requests", str(requests), "--json"]
    runs = [timed(cmd) for _ in range(repeats)]
    m = json.loads(runs[0][3])
    return {"wall_s": float(np.median([r[0] for r in runs])), "cpu_s": float(np.median([r[1] for r in runs])),
            "peak_mib": max(r[2] for r in runs), "ttft_p50_ms": m["ttft_ms_p50"], "tpot_p50_ms": m["tpot_ms_p50"],
            "repeats": repeats}


def run_vidur(script: Path, requests: int) -> dict[str, float] | None:
    """Vidur's own wall time and peak RSS (from /usr/bin/time -v in its script) and its latency medians."""
    if not script.exists() or shutil.which("bash") is None:
        return None
    proc = subprocess.run(["bash", str(script), str(requests), "10"], capture_output=True, text=True, check=False)
    if proc.returncode:
        print(f"vidur failed: {proc.stdout[-400:]} {proc.stderr[-400:]}", file=sys.stderr)
        return None
    text = proc.stdout
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    out: dict[str, float] = {}
    where = re.search(r"^output: (.+)$", text, re.MULTILINE)
    times = Path(where.group(1).strip() + ".time") if where else None
    detail = times.read_text() if times and times.exists() else text
    cpu = [re.search(rf"{k} time \(seconds\): ([\d.]+)", detail) for k in ("User", "System")]
    if all(cpu):
        out["cpu_s"] = sum(float(c.group(1)) for c in cpu if c)
    if wall:
        h, m, s = wall.groups()
        out["wall_s"] = int(h or 0) * 3600 + int(m) * 60 + float(s)
    if rss:
        out["peak_mib"] = int(rss.group(1)) / 1024.0
    for key, name in (("ttft_p50_ms", "ttft_s"), ("tpot_p50_ms", "tpot_s")):   # the summary's JSON, in seconds
        hit = re.search(rf'"{name}": {{\s*"p50": ([\d.eE+-]+)', text)
        if hit:
            out[key] = float(hit.group(1)) * 1e3
    log = Path(where.group(1).strip() + ".log") if where else None
    stamps = re.findall(r"(\d+):(\d+):(\d+) simulator\.py:\d+\] (?:Starting simulation|Simulation ended)",
                        log.read_text() if log and log.exists() else "")
    if len(stamps) == 2:
        (h0, m0, s0), (h1, m1, s1) = ((int(x) for x in st) for st in stamps)
        out["loop_s"] = float((h1 * 3600 + m1 * 60 + s1) - (h0 * 3600 + m0 * 60 + s0))
    return out


def write_azure_trace(path: Path, rows: int, rate: float, seed: int = 0) -> None:
    """An Azure-format trace (TIMESTAMP, ContextTokens, GeneratedTokens) with chat-like lengths."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0 / rate, rows))
    ctx = np.clip(rng.lognormal(np.log(1000) - 0.5, 1.0, rows), 2, 8000).astype(np.int64)
    gen = np.clip(rng.lognormal(np.log(200) - 0.5, 1.0, rows), 1, 1000).astype(np.int64)
    base = np.datetime64("2023-11-16T18:15:46.680590")
    stamps = (base + (t * 1e6).astype("timedelta64[us]")).astype(str)
    with open(path, "w") as fh:
        fh.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for lo in range(0, rows, 100_000):
            hi = min(lo + 100_000, rows)
            fh.write("".join(f"{s.replace('T', ' ')}0,{c},{g}\n"
                             for s, c, g in zip(stamps[lo:hi], ctx[lo:hi], gen[lo:hi], strict=True)))


def run_million(rows: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "azure_1m.csv"
        write_azure_trace(trace, rows, rate=40.0)
        cmd = TOKENFAB + ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--devices", "8",
                          "--workload", str(trace), "--json"]
        wall, cpu, peak, out = timed(cmd)
    m = json.loads(out)
    return {"wall_s": wall, "cpu_s": cpu, "peak_mib": peak, "requests": m["requests"], "ttft_p50_ms": m["ttft_ms_p50"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vidur", type=Path, default=Path(os.environ.get("VIDUR_SH", DEFAULT_VIDUR)))
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--million", type=int, default=1_000_000)
    ap.add_argument("--skip-million", action="store_true")
    ap.add_argument("--repeats", type=int, default=5, help="tokenfab runs to take the median of")
    args = ap.parse_args()

    tf = run_tokenfab(args.requests, args.repeats)
    print(f"tokenfab simulate, {args.requests:,} requests (median of {args.repeats}): {tf['wall_s']:.2f} s wall, "
          f"{tf['cpu_s']:.2f} s CPU, "
          f"{tf['peak_mib']:.0f} MiB peak; "
          f"TTFT p50 {tf['ttft_p50_ms']:.1f} ms, TPOT p50 {tf['tpot_p50_ms']:.2f} ms")
    vd = run_vidur(args.vidur, args.requests)
    if vd is None:
        print(f"vidur: not run ({args.vidur} missing or failed)")
    else:
        nan = float("nan")
        print(f"vidur 0.0.26,      {args.requests:,} requests: {vd.get('wall_s', nan):.2f} s wall, "
              f"{vd.get('cpu_s', nan):.2f} s CPU, "
              f"{vd.get('peak_mib', nan):.0f} MiB peak; TTFT p50 {vd.get('ttft_p50_ms', nan):.1f} ms, "
              f"TPOT p50 {vd.get('tpot_p50_ms', nan):.2f} ms")
        if "loop_s" in vd:
            print(f"    vidur's own simulation loop (its log's start/end stamps, 1 s resolution): {vd['loop_s']:.0f} s")
        if "wall_s" in vd:
            print(f"speed ratio (vidur / tokenfab): wall {vd['wall_s'] / tf['wall_s']:.1f}x, "
                  f"CPU {vd.get('cpu_s', nan) / tf['cpu_s']:.1f}x; "
                  f"memory ratio {vd.get('peak_mib', nan) / tf['peak_mib']:.1f}x")
    if not args.skip_million:
        mm = run_million(args.million)
        print(f"tokenfab simulate, {mm['requests']:,.0f}-request Azure-format trace (8 x H100, llama-3.1-8b): "
              f"{mm['wall_s']:.1f} s wall, {mm['cpu_s']:.1f} s CPU, {mm['peak_mib']:.0f} MiB peak")


if __name__ == "__main__":
    main()
