# Two entry points (see README): `make demo` and `make test`. Both set up .venv first, once.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rlkit-installed

.PHONY: setup demo test lint clean

setup: $(STAMP)

# Re-installs only when the project's requirements change (idempotent: a second call does nothing).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt torch
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,box2d,video,bench,ray]'
	touch $(STAMP)

# Quick end-to-end job: train SARSA and Q-learning on cliff walking, evaluate both, plot the curves.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) demo .pytest_cache
