# Two commands do all the set-up on a fresh machine:
#   make book   executes every chapter (PROFILE=quick by default) and builds _build/html
#   make test   unit tests + nbval over every notebook (smoke) + a strict book build + the app in a browser
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
PROFILE ?= quick
export PATH := $(BIN):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: install book test unit nbval book-strict browser dashboard app-models clean help

help:
	@echo "make book       build the book (PROFILE=smoke|quick|full, default quick) into _build/html"
	@echo "make test       all tests: unit, nbval (smoke), strict book build, browser test of the app"
	@echo "make dashboard  serve the classifier app with Voila on localhost"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

book: install
	MEDVIT_PROFILE=$(PROFILE) $(BIN)/jupyter-book build . --builder html
	@echo
	@echo "The book ($(PROFILE) profile) is at: file://$(CURDIR)/_build/html/index.html"

# The strict build CI runs: smoke profile, warnings are errors, a failing cell fails the build.
book-strict: install
	MEDVIT_PROFILE=smoke $(BIN)/jupyter-book build . --builder html -W -n --keep-going --path-output _build/strict

unit: install
	MEDVIT_PROFILE=smoke $(BIN)/python -m pytest tests -q

nbval: install
	MEDVIT_PROFILE=smoke $(BIN)/python -m pytest --nbval-lax book -q -p no:cacheprovider

browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: install browser book-strict
	MEDVIT_PROFILE=smoke $(BIN)/python -m pytest tests --nbval-lax book -q -p no:cacheprovider

clean:
	rm -rf _build .pytest_cache
