# Every target creates .venv and installs what it needs on its own.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint check bench bench-quick format clean ui screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU build on our machines, never a range.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,postgres,torch,tune,models,serve,bench]'
	touch $@

# The web UI's pages: npm installs exactly what ui/package-lock.json pins, esbuild bundles
# them into the package (src/hone/server/static/, shipped in the wheel; never committed).
UI_BUILT := src/hone/server/static/index.html
UI_SOURCES := ui/package.json ui/package-lock.json ui/build.mjs ui/index.html ui/docs.html \
	$(wildcard ui/src/*.js ui/src/*.css ui/src/pages/*.js)

$(UI_BUILT): $(UI_SOURCES)
	cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

ui: $(UI_BUILT)

# The README's pictures of the UI, from the quickstart's workspace (Debian's chromium).
screenshots: $(STAMP) $(UI_BUILT)
	test -f demo-workspace/hone.toml || $(VENV)/bin/hone quickstart --workspace demo-workspace
	$(PY) docs/screenshots.py demo-workspace

demo: $(STAMP) $(UI_BUILT)
	$(VENV)/bin/hone quickstart --workspace demo-workspace

test: $(STAMP) $(UI_BUILT)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

check: lint test

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Full run (about an hour on 2 idle cores, plus .venv-mlflow's first install): hone
# and MLflow interleaved, writes benchmarks/results/DATE-COMMIT.json.
# BENCH_ARGS=--only=search,kill9 (say) runs some of it; see benchmarks/run_all.py.
bench: $(STAMP)
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

# Smoke run (~2 min): every benchmark once at small sizes; not figures to quote.
bench-quick: $(STAMP)
	$(PY) benchmarks/run_all.py --quick $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-mlflow ui/node_modules src/hone/server/static .mypy_cache .ruff_cache .pytest_cache demo-workspace benchmarks/out
