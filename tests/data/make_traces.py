"""Write the small sample traces the workload tests read, in the exact public formats.

    python tests/data/make_traces.py

Synthetic rows (seeded, nothing fetched): azure_sample.csv (Azure LLM inference trace 2023 schema),
burstgpt_sample.csv (BurstGPT schema, with a few failed requests of 0 response tokens) and
mooncake_sample.jsonl (Mooncake FAST'25 schema, with prefix blocks shared between requests).
"""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = 300
BLOCK = 512


def _lengths(rng: random.Random, mean_in: float, mean_out: float) -> tuple[int, int]:
    return (max(1, round(rng.lognormvariate(math.log(mean_in) - 0.5, 1.0))),
            max(1, round(rng.lognormvariate(math.log(mean_out) - 0.5, 1.0))))


def azure(rng: random.Random) -> None:
    t = datetime(2023, 11, 16, 18, 15, 46, 680590)
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for _ in range(ROWS):
        n_in, n_out = _lengths(rng, 1000, 200)
        # 7 fractional digits like the published file (the 7th is a tick of 100 ns)
        lines.append(f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond:06d}{rng.randrange(10)},{n_in},{n_out}")
        t += timedelta(seconds=rng.expovariate(5.0))
    (HERE / "azure_sample.csv").write_text("\n".join(lines) + "\n")


def burstgpt(rng: random.Random) -> None:
    t = 5.0
    lines = ["Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"]
    for i in range(ROWS):
        n_in, n_out = _lengths(rng, 600, 250)
        if i % 30 == 7:
            n_out = 0          # a failed request, as BurstGPT records them
        model = "GPT-4" if rng.random() < 0.2 else "ChatGPT"
        log = "API log" if rng.random() < 0.3 else "Conversation log"
        lines.append(f"{round(t)},{model},{n_in},{n_out},{n_in + n_out},{log}")
        t += rng.expovariate(1.0)
    (HERE / "burstgpt_sample.csv").write_text("\n".join(lines) + "\n")


def mooncake(rng: random.Random) -> None:
    next_id = 0
    chains: list[list[int]] = []     # block chains seen so far (system prompts and earlier requests)
    for _ in range(8):
        chains.append(list(range(next_id, next_id + rng.randint(2, 6))))
        next_id += len(chains[-1])
    t = 0
    out = []
    for _ in range(ROWS):
        base = rng.choice(chains)
        keep = base[: rng.randint(1, len(base))] if rng.random() < 0.8 else []
        fresh = rng.randint(1, 6)
        ids = keep + list(range(next_id, next_id + fresh))
        next_id += fresh
        chains.append(ids)
        n_in = (len(ids) - 1) * BLOCK + rng.randint(1, BLOCK)
        n_out = max(1, round(rng.lognormvariate(4.5, 1.0)))
        out.append(json.dumps({"timestamp": t, "input_length": n_in, "output_length": n_out, "hash_ids": ids}))
        t += int(rng.expovariate(1 / 400.0))
    (HERE / "mooncake_sample.jsonl").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    azure(random.Random(1))
    burstgpt(random.Random(2))
    mooncake(random.Random(3))
