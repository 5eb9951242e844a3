# Two commands: `make study` (set up everything, then run the whole study) and `make test`.
# Both create .venv, install the package with its dependencies, and install the Debian
# packages the study needs (graphviz for the Bayes-net drawings, dataset-fashion-mnist for the VAEs).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS ?=

.PHONY: study quick report test test-fast lint bench system-deps clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-compile -e '.[dev]'
	touch $(STAMP)

system-deps:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

study: $(STAMP) system-deps
	$(VENV)/bin/pyro-latent study $(ARGS)

quick: $(STAMP) system-deps
	$(VENV)/bin/pyro-latent study --quick $(ARGS)

report: $(STAMP)
	$(VENV)/bin/pyro-latent report $(ARGS)

# Everything, slow tests included: what CI runs. One pytest worker per core (at most 4): every
# test runs with one torch thread, so the workers do not compete for threads.
PYTEST_WORKERS ?= --numprocesses=auto --maxprocesses=4

test: $(STAMP) system-deps
	$(PY) -m pytest -q $(PYTEST_WORKERS) $(ARGS)

# The quick checks while editing (under two minutes): no test marked slow.
test-fast: $(STAMP) system-deps
	$(PY) -m pytest -q $(PYTEST_WORKERS) -m "not slow" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check pyro_latent experiments tests benchmarks
	$(VENV)/bin/ruff format --check pyro_latent experiments tests benchmarks

bench: $(STAMP) system-deps
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
