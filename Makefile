# CryoTRANS for ChimeraX: `make test`, `make demo`, `make bench` on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_ARGS ?=

.PHONY: all test demo bench data clean

all: $(STAMP)

$(STAMP): requirements.txt tools/develop.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) tools/develop.py
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q tests

demo: $(STAMP)
	$(PY) tools/demo.py $(DEMO_ARGS)

bench: $(STAMP)
	$(PY) tools/bench.py

# Regenerate the committed AdK maps from the MDAnalysisTests structures (downloads ~60 MB).
data: $(STAMP)
	$(PY) tools/adk_maps.py --out data/adk

clean:
	rm -rf $(VENV) build demo_out bench_out
