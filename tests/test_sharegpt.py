"""ShareGPT reader: token counts, vLLM's filters, the request stream, bad files, and `simulate --workload`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tokenfab import sharegpt
from tokenfab.cli import app
from tokenfab.sharegpt import looks_like_sharegpt, read_sharegpt
from tokenfab.workload import Closed, Poisson, RequestTable, WorkloadError, iter_trace

DATA = Path(__file__).resolve().parent / "data"
SAMPLE = DATA / "sharegpt_sample.json"
BASE = ["simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"]
cli = CliRunner()


def _conv(prompt: str, reply: str, **extra: Any) -> dict[str, Any]:
    return {"conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": reply}], **extra}


def _write(tmp_path: Path, data: Any, name: str = "sg.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_sample_file_counts_four_characters_per_token() -> None:
    data = read_sharegpt(SAMPLE)
    raw = json.loads(SAMPLE.read_text())
    assert (data.records, data.pairs, len(data.input_len)) == (24, 22, 20)   # 2 without a pair, 2 too short
    assert "4 characters per token" in data.counted_by
    first = raw[0]["conversations"]                    # kept, and first in file order
    assert data.input_len[0] == math.ceil(len(first[0]["value"]) / 4)
    assert data.output_len[0] == math.ceil(len(first[1]["value"]) / 4)
    assert (data.input_len >= 4).all() and (data.output_len >= 4).all()


def test_a_tokenizer_counts_when_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Words:
        def encode(self, text: str) -> list[str]:
            return text.split()
    monkeypatch.setattr(sharegpt, "_load_tokenizer", lambda name: Words())
    path = _write(tmp_path, [_conv("one two three four five", "a b c d e f g")])
    data = read_sharegpt(path, tokenizer="words")
    assert (data.input_len.tolist(), data.output_len.tolist(), data.counted_by) == ([5], [7], "tokenizer words")


def test_a_named_tokenizer_that_cannot_load_is_an_error() -> None:
    # without transformers: "not installed"; with it: "not in the local Hugging Face cache" (nothing downloaded)
    with pytest.raises(WorkloadError, match="tokenizer 'no/such-model'"):
        read_sharegpt(SAMPLE, tokenizer="no/such-model")


def test_vllm_filters_drop_short_long_and_unpaired(tmp_path: Path) -> None:
    c = lambda n: "x" * (4 * n)     # noqa: E731 - exactly n tokens by the 4-characters rule
    records = [
        _conv(c(4), c(4)),                                     # kept: both at the 4-token minimum
        _conv(c(3), c(10)),                                    # prompt < 4
        _conv(c(10), c(3)),                                    # output < 4
        _conv(c(1024), c(100)),                                # kept: prompt at the 1024 maximum
        _conv(c(1025), c(100)),                                # prompt > 1024
        _conv(c(1000), c(1048)),                               # kept: total exactly 2048
        _conv(c(1000), c(1049)),                               # total > 2048
        {"conversations": [{"from": "human", "value": c(10)}]},   # one turn
        {"conversations": []},
        {"conversations": [{"from": "human", "value": c(10)}, {"from": "human", "value": c(10)}]},  # no reply
        {"conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": c(6)},
                           {"from": "gpt", "value": c(7)}]},   # kept: the system turn is skipped
        {"conversation": [{"from": "user", "value": c(8)}, {"from": "assistant", "value": c(9)}]},
        {"items": [{"role": "user", "content": c(5)}, {"role": "assistant", "content": c(5)}]},
    ]
    data = read_sharegpt(_write(tmp_path, records))
    assert data.records == 13 and data.pairs == 10
    assert data.input_len.tolist() == [4, 1024, 1000, 6, 8, 5]
    assert data.output_len.tolist() == [4, 100, 1048, 7, 9, 5]


def test_stream_is_seeded_shuffled_cycled_and_poisson() -> None:
    data = read_sharegpt(SAMPLE)
    table = RequestTable.concat(data.chunks(50, seed=3, arrival=Poisson(5.0), chunk=7))
    assert len(table) == 50 and table.arrival[0] == 0.0 and (np.diff(table.arrival) > 0).all()
    assert table.session.tolist() == list(range(50)) and (table.turn == 0).all() and (table.cache_group == -1).all()
    pairs = set(zip(data.input_len.tolist(), data.output_len.tolist(), strict=True))
    served = list(zip(table.input_len.tolist(), table.output_len.tolist(), strict=True))
    assert set(served) <= pairs
    assert served[:20] != list(zip(data.input_len.tolist(), data.output_len.tolist(), strict=True))  # shuffled
    assert served[20:40] == served[:20] and served[40:] == served[:10]                            # cycled
    again = RequestTable.concat(data.chunks(50, seed=3, arrival=Poisson(5.0), chunk=7))
    assert table.equals(again)
    longer = RequestTable.concat(data.chunks(5000, seed=3, arrival=Poisson(5.0), chunk=7))
    assert longer[:50].equals(table)                                        # a longer run starts the same
    assert np.mean(np.diff(longer.arrival)) == pytest.approx(1 / 5.0, rel=0.05)


def test_closed_loop_issues_the_first_concurrency_at_zero() -> None:
    table = RequestTable.concat(read_sharegpt(SAMPLE).chunks(30, seed=0, arrival=Closed(4)))
    assert (table.arrival[:4] == 0).all() and np.isnan(table.arrival[4:]).all()


@pytest.mark.parametrize(("text", "words"), [
    ("this is not json", "not JSON (line 1"),
    ('{"conversations": []}', "a JSON list of records, this one is a dict"),
    (json.dumps([_conv("a" * 40, "b" * 40), _conv("a" * 40, "b" * 40), {"id": "x", "turns": []}]), "record 2: no list"),
    (json.dumps([_conv("a" * 40, "b" * 40), "just text"]), "record 1: a record must be a JSON object"),
    (json.dumps([{"conversations": ["hello", "there"]}]), "record 0 turn 0: a turn must be a JSON object"),
    (json.dumps([{"conversations": [{"from": "human", "value": 3}, {"from": "gpt", "value": "hi"}]}]),
     "record 0 turn 0: the turn has no text"),
    (json.dumps([_conv("Hi", "Ok")]), "no conversation left to serve"),
])
def test_malformed_files_name_the_file_and_record(tmp_path: Path, text: str, words: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(WorkloadError, match="sg.json") as info:
        read_sharegpt(path)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_recognised_by_content(tmp_path: Path) -> None:
    assert looks_like_sharegpt(SAMPLE)
    assert looks_like_sharegpt(_write(tmp_path, "[]", "list.txt"))            # a JSON list, whatever the name
    assert looks_like_sharegpt(_write(tmp_path, "garbage", "broken.json"))    # reported by this reader
    assert not looks_like_sharegpt(DATA / "mooncake_sample.jsonl")
    assert not looks_like_sharegpt(_write(tmp_path, (DATA / "mooncake_sample.jsonl").read_text(), "mc.json"))
    assert not looks_like_sharegpt(DATA / "azure_sample.csv")
    assert not looks_like_sharegpt("chat")
    with pytest.raises(WorkloadError, match="ShareGPT"):
        next(iter_trace(SAMPLE))                       # not a trace: it has no arrival times


def _fails_with_one_line(args: list[str], *words: str) -> None:
    res = cli.invoke(app, [*BASE, *args])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_simulate_serves_a_sharegpt_file() -> None:
    res = cli.invoke(app, [*BASE, "--workload", str(SAMPLE), "--rate", "5", "--requests", "50", "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["requests"] == 50 and m["rejected"] == 0 and list(m["classes"]) == ["sharegpt"]
    assert m["sharegpt"]["kept"] == 20 and "4 characters" in m["sharegpt"]["tokens_counted_by"]
    closed = cli.invoke(app, [*BASE, "--workload", str(SAMPLE), "--concurrency", "3", "--requests", "40"])
    assert closed.exit_code == 0, closed.output
    assert "20 of 24 conversations kept" in closed.stdout


def test_simulate_refuses_without_a_rate_and_on_a_bad_file(tmp_path: Path) -> None:
    _fails_with_one_line(["--workload", str(SAMPLE), "--requests", "50"], "--rate", "ShareGPT")
    _fails_with_one_line(["--workload", str(SAMPLE), "--rate", "0"], "--rate")
    bad = _write(tmp_path, json.dumps([_conv("a" * 40, "b" * 40), {"text": "no turns"}]))
    rec = tmp_path / "req.parquet"
    _fails_with_one_line(["--workload", str(bad), "--rate", "5", "--records", str(rec)], "sg.json", "record 1")
    _fails_with_one_line(["--workload", str(_write(tmp_path, "{oops", "b.json")), "--rate", "5"], "b.json", "not JSON")
    assert not rec.exists()
    _fails_with_one_line(["--workload", "chat", "--rate", "2", "--tokenizer", "gpt2"], "--tokenizer")
