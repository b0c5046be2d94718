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

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,cluster]'

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
	$(BIN)/python benchmarks/bench_screen.py
	$(BIN)/python benchmarks/bench_search.py
	$(BIN)/python benchmarks/bench_tiers.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
