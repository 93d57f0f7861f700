# Two commands: `make run` and `make test`. Everything else is set up on the way.
# While developing: `make test-unit` (seconds, nothing running), `make test-integration`,
# `make lint`, and `make fmt` to format and fix what ruff can.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit test-integration lint fmt setup clean deploy-check browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/tcr stack --demo

lint: setup
	$(BIN)/ruff check services tests bench
	$(BIN)/ruff format --check services tests bench
	$(BIN)/mypy

fmt: setup
	$(BIN)/ruff format services tests bench
	$(BIN)/ruff check --fix services tests bench

# The production compose file must stay valid; Debian's docker-compose checks it offline.
deploy-check:
	@command -v docker-compose >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null)
	docker-compose -f deploy/compose.yaml config -q

# The audit report's page and the finance page are checked in Debian's chromium (Playwright
# cannot download its own browsers here); fonts-noto-cjk makes their Chinese legible.
browser:
	@command -v chromium >/dev/null && fc-list | grep -q "Noto Sans CJK" || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null)

test: lint deploy-check browser
	$(BIN)/pytest --durations=15

test-unit: setup
	$(BIN)/pytest tests/unit

# Real SQLite files, PostgreSQL (skipped, saying why, when there is none) and the bundled broker.
test-integration: setup browser
	$(BIN)/pytest tests/integration

clean:
	rm -rf $(VENV) var/*.db
