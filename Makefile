# Entry points; README.md explains each. Everything runs from the repository root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK := bash compose/native/stack.sh

.PHONY: help venv stack-up stack-down stack-status migrate demo test

help:
	@echo "make demo          start the stack and run the API, worker and beat (Ctrl-C stops)"
	@echo "make test          start the stack and run the test suite"
	@echo "make stack-up      start PostgreSQL, Redis, Kafka and OpenSearch on 127.0.0.1"
	@echo "make stack-down    stop the services that stack-up started"
	@echo "make stack-status  show each service, its address and whether it answers"

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

demo: venv
	bash scripts/demo.sh

test: venv stack-up
	$(BIN)/pytest
