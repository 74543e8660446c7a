# Flashbook — the two commands a newcomer needs are `make run` and `make test`.
# Everything else here is what those two stand on; every step is idempotent.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.flashbook-installed

# cargo installed by rustup lives in ~/.cargo/bin, which a non-login shell may not have on PATH.
ifeq ($(shell command -v cargo 2>/dev/null),)
  ifneq ($(wildcard $(HOME)/.cargo/bin/cargo),)
    export PATH := $(HOME)/.cargo/bin:$(PATH)
  endif
endif

# Rebuild the engine extension (pip install -e) only when these change.
ENGINE_SOURCES := $(shell find engine_rs/src -name '*.rs' 2>/dev/null) \
	$(wildcard engine_rs/Cargo.toml Cargo.toml Cargo.lock)
PYTHON_PACKAGE := $(shell find python -type f ! -name '*.so' ! -name '*.pyd' ! -name '*.pyc' \
	! -path '*/__pycache__/*' 2>/dev/null)

.PHONY: help setup venv run test lint py-test rust-test bench-engine redis stop-redis clean

help:
	@echo "Flashbook"
	@echo "  make run           set everything up, then start the site on http://127.0.0.1:$(PORT)/"
	@echo "  make test          lint, Rust tests and Python tests (and on PostgreSQL, if one answers)"
	@echo "  make pg-test       the Python tests on PostgreSQL (TEST_POSTGRES_URL)"
	@echo "  make compose-check validate docker-compose.yml (needs docker)"
	@echo "  make bench-engine  the matching-engine benchmark (release build)"
	@echo "  make bench-api     the REST API under load (gunicorn, engine worker, recorder)"
	@echo "  make bench-ws      the WebSocket API under the same load"
	@echo "  make bench-fix     FIX 4.4 order entry under load (QuickFIX initiators, the whole stack)"
	@echo "  make bench-sim     the research simulator: a full day of the RMSC04-sized preset"
	@echo "  make realism       stylized facts of the default population over 10 seeds"
	@echo "  make bench-worker  the engine worker against raw Redis XADD"
	@echo "  make bench-agents  the agents runner's sustained order rate (engine and recorder running)"
	@echo "  make bench-agents-floor  the same agents with only the journal and engine: the ceiling"
	@echo "  make bench-feed    the live feed: 10k orders/s in, WebSocket frames out"
	@echo "  make bench-idle    the demo market as \`make run\` starts it: CPU per process at rest"
	@echo "  make venv          only the virtualenv, the engine build and .env"
	@echo "  make clean         remove the virtualenv, build output and var/"

# --- Set-up -------------------------------------------------------------------------------------

setup: venv web-assets
venv: $(STAMP) .env

# The pages' charting libraries from npm, copied into static/vendor/ (no CDN at run time).
.PHONY: web-assets chromium
web-assets:
	@scripts/web_assets.sh

# The browser tests drive the system's Chromium; installed from the Debian packages if missing.
chromium:
	@scripts/ensure_chromium.sh

$(VPY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
		echo "Flashbook needs Python >= 3.11; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." >&2; \
		echo "Run: make PYTHON=/path/to/python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml $(ENGINE_SOURCES) $(PYTHON_PACKAGE) | $(VPY)
	@command -v cargo >/dev/null 2>&1 || { \
		echo "cargo not found: install a stable Rust toolchain (https://rustup.rs) first." >&2; exit 1; }
	@echo "Installing Flashbook and building the engine extension (this takes a while the first time)..."
	$(VPY) -m pip install --quiet -e '.[dev]'
	@touch $@

# Local development settings (git-ignored). Real environment variables always take precedence.
.env:
	@printf '%s\n' \
		'# Written by make for local development; git-ignored. Environment variables win over it.' \
		'DEBUG=1' \
		"SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "Wrote .env (DEBUG=1 and a random SECRET_KEY) for local development."

# --- Running ------------------------------------------------------------------------------------

run: setup
	$(VPY) manage.py migrate --no-input
	$(VPY) manage.py seed_demo
	@url="$$(scripts/ensure_redis.sh)"; \
	echo; \
	echo "  Flashbook is starting on  http://127.0.0.1:$(PORT)/   (API docs: /api/v1/docs/)"; \
	echo "  Log in as  admin / $${FLASHBOOK_ADMIN_PASSWORD:+(FLASHBOOK_ADMIN_PASSWORD)}$${FLASHBOOK_ADMIN_PASSWORD:-admin}  (staff, admin site at /admin/)"; \
	echo "         or  demo / $${FLASHBOOK_DEMO_PASSWORD:+(FLASHBOOK_DEMO_PASSWORD)}$${FLASHBOOK_DEMO_PASSWORD:-demo}"; \
	echo "  Redis: $$url.  Stop with Ctrl-C."; \
	echo; \
	REDIS_URL="$$url" PORT=$(PORT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec $(VENV)/bin/honcho start

# --- Tests --------------------------------------------------------------------------------------

test: lint compose-check rust-test js-test py-test pg-test

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	@if cargo clippy --version >/dev/null 2>&1; then \
		cargo clippy --workspace --all-targets -- -D warnings; \
		cargo clippy --workspace --all-targets --features engine_rs/python -- -D warnings; \
	else \
		echo "cargo clippy is not installed; skipping the Rust lint (rustup component add clippy)."; \
	fi

rust-test:
	cargo test --workspace

# The pages' own formatting (numbers to the tick, times and zones): Node's built-in test runner.
.PHONY: js-test
js-test:
	node --test tests/js/

py-test: setup chromium
	@url="$$(scripts/ensure_redis.sh)"; \
		echo "Using Redis at $$url"; \
		REDIS_URL="$$url" $(VENV)/bin/pytest

# docker-compose.yml through Compose's own validation, when Docker is installed (no engine needed).
.PHONY: compose-check pg-test
compose-check:
	@scripts/check_compose.sh

# The suite once more on PostgreSQL when one answers at TEST_POSTGRES_URL (default: the local
# postgres://postgres@127.0.0.1:5432/postgres, only if it answers); pytest-django creates the test
# database. Left out, as they would only run a second time: the browser tests (their stack runs on
# an SQLite file of its own whatever DATABASE_URL says) and the files whose tests never open the
# database (the engine, its worker, the simulator's own tests: about 5 minutes of the suite).
NO_DB_TESTS := tests/browser tests/engine tests/worker tests/cluster/test_engine_on_cluster.py \
	$(filter-out tests/research/test_command.py tests/research/test_fork.py, \
		$(wildcard tests/research/test_*.py))
pg-test: setup
	@pg="$$(scripts/ensure_postgres.sh $(VPY))"; \
	if [[ -z "$$pg" ]]; then echo "No PostgreSQL answers: the suite ran on SQLite only."; exit 0; fi; \
	url="$$(scripts/ensure_redis.sh)"; \
	echo "Running the tests on PostgreSQL ($$pg), Redis at $$url"; \
	REDIS_URL="$$url" DATABASE_URL="$$pg" TEST_POSTGRES_URL="$$pg" \
		$(VENV)/bin/pytest $(addprefix --ignore=,$(NO_DB_TESTS))

redis:
	@scripts/ensure_redis.sh

stop-redis:
	@scripts/ensure_redis.sh stop

# --- Benchmarks ---------------------------------------------------------------------------------

bench-engine:
	cargo run --release -p engine_rs --bin bench_engine

# The engine worker against Redis: drain rate vs Redis's own XADD rate, and latency at 20k cmds/s.
.PHONY: bench-worker
bench-worker: setup
	@url="$$(scripts/ensure_redis.sh)"; \
		REDIS_URL="$$url" $(VPY) bench/bench_worker.py

# The REST API under load: gunicorn (2 uvicorn workers), engine worker and recorder, 32 clients, 20 s.
.PHONY: bench-api
bench-api: setup
	@url="$$(scripts/ensure_redis.sh)"; \
		REDIS_URL="$$url" $(VPY) bench/bench_api.py

# The WebSocket API under the same load and stack as bench-api: 32 programs, one connection each.
.PHONY: bench-ws
bench-ws: setup
	@url="$$(scripts/ensure_redis.sh)"; \
		REDIS_URL="$$url" $(VPY) bench/bench_ws.py

# FIX order entry under load: QuickFIX initiators, the FIX acceptor, bridge, engine, recorder, 20 s.
.PHONY: bench-fix
bench-fix: setup
	@url="$$(scripts/ensure_redis.sh)"; \
		REDIS_URL="$$url" $(VPY) bench/bench_fix.py

# The live feed: 10,000 orders/s into the engine, a WebSocket client subscribed to the bridge.
.PHONY: bench-feed
bench-feed: setup
	@url="$$(scripts/ensure_redis.sh)"; \
		REDIS_URL="$$url" $(VPY) bench/bench_feed.py

# Cost at rest: the stack of `make run` (its roles, the demo data, a database and key prefix of
# its own), 60 s of the demo market, the CPU share of one core each process uses.
.PHONY: bench-idle
bench-idle: setup
	@url="$$(scripts/ensure_redis.sh)"; \
		REDIS_URL="$$url" $(VPY) bench/bench_idle.py

# The agents runner's order rate: 400 noise agents at 50 wakes/s through the gateway, 20 s.
.PHONY: bench-agents
bench-agents: setup
	@url="$$(scripts/ensure_redis.sh)"; \
		REDIS_URL="$$url" $(VPY) bench/bench_agents.py

# The same agents with only the journal and the engine behind them: this machine's ceiling.
.PHONY: bench-agents-floor
bench-agents-floor: setup
	@url="$$(scripts/ensure_redis.sh)"; \
		REDIS_URL="$$url" $(VPY) bench/bench_agents_floor.py

# Research mode: the RMSC04-sized preset over a full day (median of 3), and the stylized facts
# of the default population pooled over 10 seeds (fails unless all four are met).
.PHONY: bench-sim realism
bench-sim: setup
	$(VPY) bench/bench_sim.py

realism: setup
	$(VPY) manage.py simulate --preset rmsc04 --seed 1 --runs 10 --out var/realism --check-facts

clean:
	-@scripts/ensure_redis.sh stop
	rm -rf $(VENV) target var .pytest_cache .ruff_cache node_modules static/vendor
	find python -name '*.so' -delete
