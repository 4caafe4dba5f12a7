# `make demo`: the whole failover on this machine (`ocf demo`), in a virtualenv of its own.
# `make test`: lint, types and the whole test suite, in the same virtualenv.
# `make test-unit` / `test-integration` / `test-e2e`: one tier of the suite alone.
# `make config-docs`: regenerate config.example.yaml (both copies) and the README's key
#   reference from the schema (src/openclaw_failover/config/schema.py); tests check they are current.
# `make try`: a dry-run `ocf check` against a throwaway local example.
# `make test-real`: only the real OpenClaw gateway tier (installs Node 24 + openclaw first).
# `make test-real-demo`: `ocf demo --real-gateway`'s gateway-crash scenario (3-5 minutes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo try config-docs test test-unit test-integration test-e2e test-real test-real-demo lint bench clean soak

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[demo,test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/ocf demo

try: $(BIN)/.installed
	$(BIN)/python examples/try_local.py

config-docs: $(BIN)/.installed
	$(BIN)/python -m openclaw_failover.config.example --write

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r src

test: lint
	$(BIN)/pytest -q

# Each tier alone: no I/O / real sshd, PostgreSQL and HTTP / the CLI against the sandbox.
test-unit: $(BIN)/.installed
	$(BIN)/pytest -q tests/unit

test-integration: $(BIN)/.installed
	$(BIN)/pytest -q tests/integration

test-e2e: $(BIN)/.installed
	$(BIN)/pytest -q tests/e2e

# A longer randomized sync-back soak (real PostgreSQL 18 -> 18 and 18 -> 15).
SEEDS ?= 1-20
CYCLES ?= 15
soak: $(BIN)/.installed
	$(BIN)/python -m tests.harness.soak --pairs pg18,mixed --seeds $(SEEDS) --cycles $(CYCLES)

test-real: $(BIN)/.installed
	$(BIN)/python -m openclaw_failover.sandbox.realgw install
	$(BIN)/pytest -q -m real tests/real

test-real-demo: $(BIN)/.installed
	$(BIN)/python -m openclaw_failover.sandbox.realgw install
	$(BIN)/pytest -q -s -m real tests/real/demo_real.py

bench: $(BIN)/.installed
	$(BIN)/python bench/tick.py
	$(BIN)/python bench/syncback.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
