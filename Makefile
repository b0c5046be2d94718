# The two set-up commands of the README: `make demo` (main job) and `make test` (ruff + pytest).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# torch is pinned first so the gpu extra's `torch>=2.1` is already met by the CPU build (no CUDA download).
install-dev: $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,gpu]'

demo: install
	$(BIN)/tokenfab compare --model llama-3.1-70b --input-len 2048 --output-len 512

test: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

bench: install-dev
	$(BIN)/python benchmarks/bench_step_cost.py
	$(BIN)/python benchmarks/bench_predict.py
	$(BIN)/python benchmarks/bench_fleet.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
