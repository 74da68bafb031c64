# Two commands: `make demo` runs the product offline, `make test` checks everything.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench run check clean lock

# Everything installs from requirements.lock (exact versions, hashes checked), so a new release
# of ruff, mypy or a library cannot change what CI runs; `make lock` refreshes it on purpose.
$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-find-links

# requirements.lock: everything (dev included) for make and CI; requirements.runtime.lock: the
# bot's own dependencies at the same versions, for the Docker image.
lock: $(STAMP)
	$(BIN)/pip-compile $(LOCK_FLAGS) --extra dev -o requirements.lock pyproject.toml
	$(BIN)/pip-compile $(LOCK_FLAGS) -c requirements.lock -o requirements.runtime.lock pyproject.toml

demo: $(STAMP)
	$(BIN)/python -m bot demo

run: $(STAMP)
	$(BIN)/python -m bot

check: $(STAMP)
	$(BIN)/python -m bot check

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

# Two workers (pytest-xdist), whole files each: most tests wait on sockets and processes, and
# the crash sweep's points must stay together on one worker (tests/e2e/test_crash_sweep.py).
test: lint
	$(BIN)/pytest -q -n 2 --dist loadfile

# Every benchmark, the bot as its own process; ends with one `goal <name>: … met|missed` line each.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
