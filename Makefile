# Every target sets up what it needs: a fresh clone needs only python3 (3.11+) and npm.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LEAFLET := node_modules/leaflet/dist/leaflet.js

.PHONY: setup demo test bench check lint audit format clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(LEAFLET): package.json
	npm install --no-audit --no-fund --no-package-lock --loglevel=error
	@touch $(LEAFLET)

BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

setup: $(STAMP) $(LEAFLET)
	@$(BIN)/python -m optimizer._lagrange_kernel

demo: setup  ## generate the synthetic merged municipality, import it, plan, write out/demo/{plan.json,layers.gpkg,map.html}
	$(BIN)/branchnet demo --out out/demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup $(BENCH_STAMP)  ## speed and quality targets, against baselines measured in the same run
	$(BIN)/python -m benchmarks.matrix
	$(BIN)/python -m benchmarks.travel_times
	$(BIN)/python -m benchmarks.orlib summary
	$(BIN)/python -m benchmarks.orlib caplike
	$(BIN)/python -m benchmarks.orlib pmedlike
	$(BIN)/python -m benchmarks.location_scale
	$(BIN)/python -m benchmarks.cvrp summary
	$(BIN)/python -m benchmarks.orienteering summary
	$(BIN)/python -m benchmarks.mctp summary
	$(BIN)/python -m benchmarks.replan
	$(BIN)/python -m benchmarks.planner
	$(BIN)/python -m benchmarks.planner_exactness
	$(BIN)/python -m benchmarks.roadmap
	$(BIN)/python -m benchmarks.api
	$(BIN)/python -m benchmarks.api_fuzz
	$(BIN)/python -m benchmarks.load
	$(BIN)/python -m benchmarks.batch

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

audit: setup  ## known vulnerabilities in the installed dependencies (pip-audit); fails on any not in .ci/pip-audit-ignore.txt
	$(BIN)/python .ci/audit_deps.py

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint test

clean:
	rm -rf $(VENV) node_modules out .pytest_cache .mypy_cache .ruff_cache
