"""ShareGPT conversations as serving traffic, the way `vllm bench serve --dataset-name sharegpt` samples them.

A ShareGPT file is a JSON list of records, each with a list of turns under "conversations" (some variants:
"conversation" or "items"), a turn being {"from": "human" | "gpt" | "user" | "assistant" | "system", "value":
text} ({"role", "content"} is read too). A file has prompts and replies but no arrival times, so the requests
arrive by a process the caller picks (Poisson at a rate, or a closed loop).

What vLLM does (vllm/benchmarks/datasets.py, `ShareGPTDataset` and `is_valid_sequence`,
https://github.com/vllm-project/vllm/blob/main/vllm/benchmarks/datasets.py), and what this module does:
- keep records with at least 2 turns; the prompt is the first turn and the output length is the second
  turn's length. Here: the first human/user turn and the turn after it, which must be gpt/assistant (the same
  pair for the usual conversation that opens with the human; a leading system turn is skipped here).
- shuffle the records with the run's seed (`random.shuffle`, seed 0 by default). Here: a NumPy permutation
  with the run's seed, so the order differs from vLLM's for the same seed but is as reproducible.
- drop pairs whose prompt or output is under 4 tokens, whose prompt is over 1024 tokens or whose prompt +
  output is over 2048 tokens (`is_valid_sequence` defaults).
- when more requests are asked for than remain, vLLM repeats randomly chosen ones; here the shuffled pairs
  are cycled in the same order, so every kept conversation is served equally often.

Token counts: vLLM tokenizes with the served model's tokenizer. No tokenizer can be downloaded here, so by
default a text of c characters counts ceil(c / 4) tokens, OpenAI's rule of thumb for English text (about 4
characters per token, https://help.openai.com/en/articles/4936856-what-are-tokens-and-how-to-count-them).
Given a tokenizer name, `transformers` (if installed) loads it from the local Hugging Face cache only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tokenfab.workload import Closed, Poisson, RequestTable, WorkloadError
from tokenfab.workload.arrivals import closed_loop_times, open_loop_times

TURN_KEYS = ("conversations", "conversation", "items")
HUMAN = ("human", "user")
ASSISTANT = ("gpt", "assistant", "chatgpt", "bard", "bing", "model")
CHARS_PER_TOKEN = 4
# vLLM's is_valid_sequence defaults (min_len, max_prompt_len, max_total_len)
MIN_LEN, MAX_PROMPT_LEN, MAX_TOTAL_LEN = 4, 1024, 2048
APPROX = f"about {CHARS_PER_TOKEN} characters per token (approximation, no tokenizer)"


def looks_like_sharegpt(path: str | Path) -> bool:
    """Whether a `--workload` path is to be read as ShareGPT: a file holding a JSON list (first non-blank
    character "["), or a .json file that is not Mooncake JSON Lines (one {"timestamp": ...} object a line), so
    that a broken .json file is reported by this reader rather than as an unknown trace format."""
    p = Path(path)
    if not p.is_file() or p.suffix.lower() in (".yaml", ".yml", ".csv"):
        return False
    with p.open("rb") as fh:
        head = fh.read(1 << 16).lstrip()
    if head.startswith(b"["):
        return True
    if p.suffix.lower() != ".json":
        return False
    try:
        first = json.loads(head.split(b"\n", 1)[0])
    except ValueError:
        return True
    return not (isinstance(first, dict) and "timestamp" in first)


def char_tokens(text: str) -> int:
    """Tokens of `text` by the 4-characters-per-token rule (rounded up: any text is at least one token)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _load_tokenizer(name: str) -> Any:
    """A Hugging Face tokenizer from the local cache (never downloaded); WorkloadError if there is none."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise WorkloadError(f"tokenizer {name!r}: the transformers package is not installed; leave the tokenizer "
                            f"out to count {CHARS_PER_TOKEN} characters per token") from None
    try:
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as e:   # noqa: BLE001 - transformers raises OSError, ValueError, ... for a missing model
        raise WorkloadError(f"tokenizer {name!r} is not in the local Hugging Face cache (nothing is downloaded): "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _counter(tokenizer: str | None) -> tuple[Callable[[str], int], str]:
    if tokenizer is None:
        return char_tokens, APPROX
    tok = _load_tokenizer(tokenizer)
    return (lambda text: len(tok.encode(text))), f"tokenizer {tokenizer}"


@dataclass(frozen=True)
class ShareGPT:
    """A ShareGPT file's (prompt, output) token pairs after vLLM's filters, in file order."""

    path: str
    records: int             # records in the file
    pairs: int               # records with a human turn followed by an assistant turn (before length filters)
    input_len: np.ndarray    # kept prompts, tokens
    output_len: np.ndarray   # kept outputs, tokens
    counted_by: str          # how tokens were counted

    def summary(self) -> dict[str, Any]:
        return {"file": self.path, "records": self.records, "pairs": self.pairs, "kept": len(self.input_len),
                "tokens_counted_by": self.counted_by,
                "filters": f"prompt and output >= {MIN_LEN}, prompt <= {MAX_PROMPT_LEN}, "
                           f"prompt + output <= {MAX_TOTAL_LEN} tokens (vLLM's)"}

    def chunks(self, n: int, seed: int, arrival: Poisson | Closed, chunk: int = 65536) -> Iterator[RequestTable]:
        """`n` single-turn requests in pieces of `chunk` rows: the kept pairs shuffled with `seed` and cycled,
        arriving Poisson from t = 0 or, closed loop, the first `concurrency` at 0 and the rest as others finish
        (NaN). Gaps are drawn a whole chunk at a time, so a run of n requests is a prefix of a longer one."""
        rng = np.random.Generator(np.random.PCG64(seed))
        order = rng.permutation(len(self.input_len))
        t = 0.0
        for start in range(0, n, chunk):
            rows = np.arange(start, min(start + chunk, n))
            pick = order[rows % len(order)]
            if isinstance(arrival, Poisson):
                times, t = open_loop_times(arrival, rng, chunk, t)
                times = times[: len(rows)]
            else:
                times = closed_loop_times(arrival, rows)
            table = RequestTable.single_turn(times, self.input_len[pick], self.output_len[pick])
            yield replace(table, session=rows.astype(np.int64))   # one session per request, numbered across chunks


def _turns(record: Any, where: str) -> list[Any]:
    if not isinstance(record, dict):
        raise WorkloadError(f"{where}: a record must be a JSON object with a 'conversations' list, "
                            f"got {type(record).__name__}")
    for key in TURN_KEYS:
        if isinstance(record.get(key), list):
            return record[key]
    raise WorkloadError(f"{where}: no list of turns under {', '.join(repr(k) for k in TURN_KEYS)} "
                        f"(keys: {', '.join(map(str, record)) or 'none'})")


def _speaker(turn: Any, where: str) -> str:
    if not isinstance(turn, dict):
        raise WorkloadError(f"{where}: a turn must be a JSON object {{from, value}}, got {type(turn).__name__}")
    who = turn.get("from", turn.get("role"))
    return who.lower() if isinstance(who, str) else ""


def _text(turn: dict[str, Any], where: str) -> str:
    text = turn.get("value", turn.get("content"))
    if not isinstance(text, str):
        raise WorkloadError(f"{where}: the turn has no text (a string under 'value')")
    return text


def _pair(turns: list[Any], where: str) -> tuple[str, str] | None:
    """The first human turn and the assistant turn right after it (None: no such pair, vLLM-style drop)."""
    if len(turns) < 2:
        return None
    for i, turn in enumerate(turns[:-1]):
        if _speaker(turn, f"{where} turn {i}") in HUMAN:
            if _speaker(turns[i + 1], f"{where} turn {i + 1}") not in ASSISTANT:
                return None
            return _text(turn, f"{where} turn {i}"), _text(turns[i + 1], f"{where} turn {i + 1}")
    return None


def read_sharegpt(path: str | Path, tokenizer: str | None = None) -> ShareGPT:
    """Parse and filter a ShareGPT file (see the module docstring for the rules and how tokens are counted).
    A file that is not JSON, not a list, or has a record without turns raises WorkloadError naming the file
    and the record index (0-based); so does a file of which no conversation passes the filters."""
    p = Path(path)
    if not p.is_file():
        raise WorkloadError(f"ShareGPT file {str(p)!r} not found")
    try:
        with p.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except UnicodeDecodeError as e:
        raise WorkloadError(f"{p}: not UTF-8 text (byte {e.start}); a ShareGPT file is a JSON list") from None
    except json.JSONDecodeError as e:
        raise WorkloadError(f"{p}: not JSON (line {e.lineno} column {e.colno}: {e.msg}); a ShareGPT file is a JSON "
                            "list of records with 'conversations'") from None
    if not isinstance(data, list):
        raise WorkloadError(f"{p}: a ShareGPT file is a JSON list of records, this one is a {type(data).__name__}")
    count, counted_by = _counter(tokenizer)
    pairs = 0
    inp: list[int] = []
    out: list[int] = []
    for i, record in enumerate(data):
        pair = _pair(_turns(record, f"{p}: record {i}"), f"{p}: record {i}")
        if pair is None:
            continue
        pairs += 1
        n_in, n_out = count(pair[0]), count(pair[1])
        if min(n_in, n_out) >= MIN_LEN and n_in <= MAX_PROMPT_LEN and n_in + n_out <= MAX_TOTAL_LEN:
            inp.append(n_in)
            out.append(n_out)
    result = ShareGPT(str(p), len(data), pairs, np.array(inp, np.int64), np.array(out, np.int64), counted_by)
    if not inp:
        raise WorkloadError(f"{p}: no conversation left to serve: {len(data)} records, {pairs} with a human turn "
                            f"and a reply, none within {result.summary()['filters']} (tokens: {counted_by})")
    return result
