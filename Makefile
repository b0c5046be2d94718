# The two set-up commands of the README: `make demo` (main job) and `make test` (ruff + pytest).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev bench clean chromium

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# torch is pinned first so the gpu extra's `torch>=2.1` is already met by the CPU build (no CUDA download).
install-dev: $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,gpu,cluster]'

# the report test opens report.html in headless Debian Chromium; install it when missing (needs root)
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium not installed: the browser test will be skipped"

demo: install
	$(BIN)/tokenfab design --report report.html

test: install-dev chromium
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

bench: install-dev
	$(BIN)/python benchmarks/bench_step_cost.py
	$(BIN)/python benchmarks/bench_predict.py
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_fleet.py
	$(BIN)/python benchmarks/bench_screen.py
	$(BIN)/python benchmarks/bench_search.py
	$(BIN)/python benchmarks/bench_tiers.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
