# `make train` and `make test` set up .venv from pyproject.toml on first use.
# Extra flags go through ARGS: `make train ARGS=--resume` continues an interrupted run.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The shared checkout's copy of Tiny Shakespeare when it is there; otherwise the default path, which is
# downloaded on first use.
DATA ?= $(firstword $(wildcard ../shared/data/tinyshakespeare/input.txt) data/tinyshakespeare/input.txt)
KWS_DATA ?= $(firstword $(wildcard ../shared/data/speech_commands) data/speech_commands)
KWS_TEST ?= $(firstword $(wildcard ../shared/data/speech_commands_test) data/speech_commands_test)

.PHONY: train test train-kws evaluate-kws bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

train: $(VENV)/.installed
	$(PY) train.py lm --config configs/lm_cpu.json --data $(DATA) $(ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest

train-kws: $(VENV)/.installed
	$(PY) train.py kws --config configs/kws_cpu.json --data $(KWS_DATA)
	$(PY) evaluate.py kws --checkpoint runs/kws/best.pt --data $(KWS_TEST)

bench: $(VENV)/.installed
	$(PY) bench/bench_lm.py --data $(DATA)

clean:
	rm -rf runs build *.egg-info
