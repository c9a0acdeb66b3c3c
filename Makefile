# Two commands do all the set-up on a fresh machine:
#   make book   executes every chapter (PROFILE=quick by default) and builds _build/html
#   make test   unit tests + nbval over every notebook (smoke) + a strict (unexecuted) book build + the app in a browser
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
PROFILE ?= quick
export PATH := $(BIN):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# Executed chapters are saved as pages: a progress bar there would stay at its first frame.
export MEDVIT_PROGRESS := 0

.PHONY: install book test lint format unit nbval book-strict browser dashboard app-models clean help
.PHONY: data publish linkcheck verify gpu-check

help:
	@echo "make book       build the book (PROFILE=smoke|quick|full, default quick) into _build/html"
	@echo "make verify     every chapter at quick on the shared real data; fails on any claim that does not hold"
	@echo "make test       all tests: lint, unit, nbval (smoke), strict book build, browser test of the app"
	@echo "make lint       ruff check + ruff format --check (seconds; make format rewrites the files)"
	@echo "make dashboard  serve the classifier app with Voila on localhost (trains small models first if none exist)"
	@echo "make app-models train one small model per task for the app (minutes on a CPU)"
	@echo "make data       download the free datasets the chapters read (MedMNIST, mini-MIAS) into the cache"
	@echo "make publish    build the book and push _build/html to the gh-pages branch (GitHub Pages by hand)"
	@echo "make linkcheck  check the book's external links (needs the internet)"
	@echo "make bench      one table of performance figures (CHAPTERS=smoke,quick also times every chapter)"
	@echo "make gpu-check  one full-profile training step of every chapter's model on CUDA: images/s, peak memory"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Every page is executed and the whole HTML is built even when a cell fails: a failed page shows its
# error under the cell and a warning at its top (helpers.bookbuild). The build then prints the
# claims' ledger and ends non-zero naming each failed page and cell, last (as annotations under
# GitHub Actions); a failed claim (helpers.claims) is shown on its page and named by the ledger.
# The log is _build/book.log; an interrupted or failed build removes nothing it built.
BUILD_ID := book-$(shell date -u +%Y%m%dT%H%M%SZ)
# Chapters train with PyTorch at BOOK_THREADS threads (one by default): a run's numbers depend on its
# thread count, and on a machine that other work shares, two threads per process spin against each
# other many times slower (measured: ResNet-10-T 0.079 s per training image at two threads, 0.0045 s
# at one, load average 4); the chapters' plans are measured at one thread.
BOOK_THREADS ?= 1
# Pages executed at once (helpers.bookexec), each at BOOK_THREADS: two fill a 2-core machine; 1 executes them
# one after another as Sphinx reads them. A page's numbers are the same either way.
BOOK_JOBS ?= 2
book: install
	@mkdir -p _build
	@export MEDVIT_BUILD=$(BUILD_ID) OMP_NUM_THREADS=$(BOOK_THREADS) MEDVIT_BOOK_JOBS=$(BOOK_JOBS); \
	MEDVIT_PROFILE=$(PROFILE) MEDVIT_CLAIMS=record $(BIN)/python -m helpers site build . _build/book.log; built=$$?; \
	if [ -f _build/html/index.html ]; then \
	  echo; echo "The book ($(PROFILE) profile) is at: file://$(CURDIR)/_build/html/index.html"; echo; fi; \
	$(BIN)/python -m helpers.claims report --fail; claimed=$$?; \
	if [ $$built != 0 ]; then echo; $(BIN)/python -m helpers site failures; exit 1; fi; exit $$claimed

# Every chapter at quick on real data (the shared samples by default; VERIFY_DATA=<root> for another),
# failing on any claim that does not hold; prints the ledger and the time per chapter.
VERIFY_DATA ?= $(abspath ../shared/data)
verify: install
	@test -d "$(VERIFY_DATA)" || { echo "make verify: no data root at $(VERIFY_DATA) (set VERIFY_DATA=<root>)"; exit 2; }
	MEDVIT_DATA=$(VERIFY_DATA) $(MAKE) --no-print-directory book PROFILE=quick

# The strict build: the book's markup, cross-references and citations, warnings are errors. It never
# executes a chapter. `make book-strict` alone checks the text (no outputs); in `make test`
# STRICT_FROM names the chapters nbval just executed, saved with their outputs, and the build renders
# those, so that tests/test_pages.py can check the pages as a reader meets them.
STRICT := _build/strict
STRICT_FROM ?=
book-strict: install
ifeq ($(STRICT_FROM),)
	$(BIN)/python -m helpers site unexecuted-config $(STRICT)/_config.yml
	MEDVIT_PROFILE=smoke $(BIN)/jupyter-book build . --builder html -W -n --keep-going \
	  --config $(STRICT)/_config.yml --path-output $(STRICT)
else
	$(BIN)/python -m helpers site stage-executed $(STRICT_FROM) $(STRICT)/src
	MEDVIT_PROFILE=smoke $(BIN)/jupyter-book build $(STRICT)/src --builder html -W -n --keep-going \
	  --path-output $(STRICT)
endif

# ruff (config in pyproject.toml) over helpers, tests, benchmarks, scripts and the chapters, and
# actionlint over the GitHub workflows: seconds.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/actionlint .github/workflows/*.yml

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: install
	MEDVIT_PROFILE=smoke $(BIN)/python -m pytest tests -q

nbval: install
	MEDVIT_PROFILE=smoke $(BIN)/python -m pytest --nbval-lax book -q -p no:cacheprovider

browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The classifier app (book/tools/app.ipynb) served by Voila on localhost only, through
# helpers.serving: the websocket limit raised to the app's upload limit (a 50 MB DICOM fits), the
# kernel of a closed tab shut down, orphaned idle kernels culled, and at most DASHBOARD_KERNELS
# pages (about 1 GB each) at once.
DASHBOARD_PORT ?= 8866
DASHBOARD_KERNELS ?= 4
dashboard: install
	$(BIN)/python -m helpers app-models --if-missing
	@echo
	@echo "The classifier app: http://127.0.0.1:$(DASHBOARD_PORT)/  (Ctrl-C stops it)"
	@echo
	$(BIN)/python -m helpers.serving book/tools/app.ipynb --ip=127.0.0.1 --port=$(DASHBOARD_PORT) \
	  --max-kernels=$(DASHBOARD_KERNELS)

# One small model per app task, trained on whatever data is present (MEDVIT_DATA), saved as
# checkpoints under runs/ where the app finds them.
app-models: install
	$(BIN)/python -m helpers app-models

# The datasets the chapters read that can be downloaded (small and free); the others come from
# $MEDVIT_DATA or a synthetic stand-in. Downloads go to $MEDVIT_CACHE/downloads, checksummed.
DATA ?= mias covid bloodmnist pneumoniamnist breastmnist
data: install
	$(BIN)/python -m helpers data download $(DATA)

# Publishing by hand: build the book as `make book` does, then push _build/html to the gh-pages
# branch of the `origin` remote (GitHub Pages: Settings > Pages > Deploy from a branch > gh-pages).
# The book workflow (.github/workflows/book.yml) publishes with GitHub Actions instead.
publish: book
	$(BIN)/ghp-import --no-jekyll --push --force \
	  --message "Publish the book built from $$(git rev-parse --short HEAD) ($(PROFILE) profile)" _build/html
	@echo "Pushed to gh-pages; GitHub Pages serves it at $$($(BIN)/python -m helpers site url)"

# External links of the book, checked on the internet (the book workflow's linkcheck job). Hosts that
# turn robots away are in _config.yml (linkcheck_ignore). Chapters are not executed for it.
linkcheck: install
	$(BIN)/python -m helpers site online
	$(BIN)/python -m helpers site unexecuted-config _build/linkcheck/_config.yml
	$(BIN)/jupyter-book build . --builder linkcheck --config _build/linkcheck/_config.yml --path-output _build/linkcheck

# Performance figures in one table (benchmarks/bench.py): loader, training-loop overhead, app
# latency, GPU throughput when there is one; CHAPTERS=smoke,quick also times every chapter;
# BENCH_JSON=<file> also writes the table (the appendix shows benchmarks/results/cpu-2core.json).
CHAPTERS ?=
BENCH_JSON ?=
bench: install
	$(BIN)/python benchmarks/bench.py $(if $(CHAPTERS),--chapters $(CHAPTERS)) $(if $(BENCH_JSON),--json $(BENCH_JSON))

# One full-profile training step (mixed precision) of every chapter's model on the GPU, through the
# project's learner: images/s and peak memory per model, under 10 minutes on one GPU
# (benchmarks/gpu_check.py). Weights it cannot fetch offline are replaced by random ones, and the
# table says so. Without CUDA it says so and runs the steps at toy size on the CPU (exit 0).
# GPU_JSON=<file> also writes the table.
GPU_JSON ?=
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py $(if $(GPU_JSON),--json $(GPU_JSON))

# Two pytest workers (pytest-xdist), each taking a whole test file or notebook at a time, each torch
# at one thread: two torch processes side by side at two threads each slow each other down many
# times over (their OpenMP threads spin), at one thread each they share the two cores. The virtual
# environment and Debian's chromium install side by side first. Every chapter is executed once, by
# nbval at smoke (each cell a test), and saved with its outputs (helpers.executed); the strict build
# renders those, and tests/test_pages.py checks the built pages (paths, stderr, warnings, citations,
# blank figures, and in Chromium the width of every table).
EXECUTED := _build/executed
TEST_WORKERS ?= 2
test:
	$(MAKE) --no-print-directory -j2 install browser
	$(MAKE) --no-print-directory lint
	rm -rf $(EXECUTED)
	MEDVIT_PROFILE=smoke OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests --nbval-lax book -q -p no:cacheprovider \
	  --durations=30 -n $(TEST_WORKERS) --dist loadfile -p helpers.executed --executed-dir $(EXECUTED)
	$(MAKE) --no-print-directory book-strict STRICT_FROM=$(EXECUTED)
	MEDVIT_BUILT_HTML=$(STRICT)/_build/html $(BIN)/python -m pytest tests/test_pages.py -q -p no:cacheprovider

clean:
	rm -rf _build .pytest_cache
