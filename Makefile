# make demo / make test work on a fresh machine: the venv is created and filled on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-fast lint install bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/egt demo

test: $(STAMP) lint
	$(PY) -m pytest -q -n 2 --dist loadgroup

# The development loop: everything but the tests marked slow (process launches, multi-step training,
# whole pipelines); `make test` runs those too.
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not slow"

# Style (ruff) and the package layers (import-linter contract in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/lint-imports --no-cache --no-logo

bench: $(STAMP)
	for s in benchmark_batching rm_batching entropy_memory teacher_forced_entropy scoring_overhead sft_step \
		rl_step_time rl_stable_reinforce math_verifier gpu_check; do echo "== bench/$$s.py --quick"; $(PY) bench/$$s.py --quick || exit 1; done

clean:
	rm -rf runs .pytest_cache
