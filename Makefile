# Entry points; README.md explains each. Everything runs from the repository root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK := bash compose/native/stack.sh

.PHONY: help venv stack-up stack-down stack-status migrate demo test loadtest bench

help:
	@echo "make demo          start the stack and run the API, worker and beat (Ctrl-C stops)"
	@echo "make test          start the stack and run the test suite"
	@echo "make stack-up      start PostgreSQL, Redis, Kafka and OpenSearch on 127.0.0.1"
	@echo "make stack-down    stop the services that stack-up started"
	@echo "make stack-status  show each service, its address and whether it answers"
	@echo "make loadtest      run Locust against the running demo, then the consistency audit"
	@echo "make bench         run every benchmark under bench/ and print the ratios"

# The stamp file re-installs only when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

stack-up:
	$(STACK) up

stack-down:
	$(STACK) down

stack-status:
	$(STACK) status

migrate: venv stack-up
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py migrate --no-input --database analytics

demo: venv
	bash scripts/demo.sh

test: venv stack-up
	$(BIN)/pytest

# Runs against the API that `make demo` serves; reports land in .loadtest/.
USERS ?= 50
DURATION ?= 2m
SPAWN_RATE ?= 10
API_PORT ?= 28000
loadtest: venv
	mkdir -p .loadtest
	$(BIN)/locust -f loadtest/locustfile.py --headless --users $(USERS) --spawn-rate $(SPAWN_RATE) \
		--run-time $(DURATION) --host http://127.0.0.1:$(API_PORT) \
		--csv .loadtest/run --html .loadtest/report.html --only-summary || true
	$(BIN)/python manage.py audit_consistency --settle 60

# Every benchmark under bench/, each printing its ratio against the raw ceiling
# measured in the same run; a few minutes in all. Needs the stack up.
bench: venv stack-up
	$(BIN)/python bench/inventory_hot_sku.py --workers 8 --duration 4 --rounds 2
	$(BIN)/python bench/cdc_relay.py --events 10000 --latency-events 1000 --rate 300 --batch-size 1000
	$(BIN)/python bench/product_detail_cache.py --products 200 --seconds 5 --rounds 2
	$(BIN)/python bench/search_indexing.py --products 1000
