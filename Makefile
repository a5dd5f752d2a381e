# hepnn: two commands on a fresh machine (only Python >= 3.10 and make needed)
#   make demo   create .venv, install, run the demo analysis, write a report
#   make test   create .venv if needed, install with test extras, run pytest (all but `slow`; what CI runs)
#   make test-fast   the developer tier: no `slow` tests, no `integration` files (see tests/conftest.py)
#   make test-all    everything, the `slow` benchmarks and full modes included (make test + make test-slow)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hepnn-installed
DEMO_OUT ?= demo_run
PYTEST_ARGS ?=
# the suite runs in two pytest-xdist worker processes, a test file per worker at a time (most
# tests wait on subprocesses, TensorFlow start-up and Slurm jobs rather than compute): about
# 1.7x faster on two cores. The files are handed out in collection order, the longest first
# (tests/conftest.py, LONG_FILES). PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder)

.PHONY: demo test lint precompile test-fast test-slow test-all bench clean venv default-config notebooks docs

venv: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "hepnn needs Python >= 3.10; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pip byte-compiles the ~18k modules of the dependencies one by one (about a minute); compileall
# does it on every core (the .pyc files are needed: with PYTHONDONTWRITEBYTECODE set, as on some
# CI machines, every process would otherwise compile TensorFlow's modules again; a file pip would
# not compile either, e.g. a Python 2 example in a package, is no error)
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --no-compile -e '.[generate,test]'
	$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c 'import sysconfig as s; print(*{s.get_path("purelib"), s.get_path("platlib")})') > /dev/null || true
	@touch $@

demo: $(STAMP)
	$(BIN)/hepnn run analyses/top_tagging --quick --jobs auto --out $(DEMO_OUT) $(DEMO_ARGS)

# `slow` tests (quick runs of the benchmarks, second end-to-end runs of a model family, the
# strategy and kill variants a cheaper test already covers) run in `make test-slow`/`make bench`:
# the suite stays within its time budget on 2 cores (CONTRIBUTING.md)
test: $(STAMP) lint precompile
	@$(BIN)/python -m pytest -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

test-slow: $(STAMP) precompile
	@$(BIN)/python -m pytest -m slow $(PYTEST_PARALLEL) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

test-all: $(STAMP) lint precompile
	@$(BIN)/python -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

# hepnn's own modules compiled once before the tests: with PYTHONDONTWRITEBYTECODE set (some CI
# machines) each of the suite's ~150 Python subprocesses would compile them again
precompile: $(STAMP)
	@$(BIN)/python -m compileall -q hepnn analyses > /dev/null || true

# ruff (ruff.toml) and the layer contract of the package (import-linter, [importlinter] in setup.cfg)
lint: $(STAMP)
	$(BIN)/ruff check hepnn tests bench tutorials analyses docs
	$(BIN)/lint-imports

test-fast: $(STAMP) precompile
	@$(BIN)/python -m pytest -m "not slow and not integration" $(PYTEST_PARALLEL) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

bench: test-slow
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache $(DEMO_OUT)

# regenerate hepnn/config/default.yaml after changing hepnn/config/schema.py
default-config: $(STAMP)
	$(BIN)/python -c "from hepnn.config import dump_config, load_config; open('hepnn/config/default.yaml', 'w').write('# hepnn defaults (generated from hepnn/config/schema.py by make default-config; tests/test_config.py checks it is current)\n' + dump_config(load_config(None)))"

# regenerate tutorials/NN_*.ipynb from the scripts after changing a tutorial (tests/test_tutorials.py checks them)
notebooks: $(STAMP)
	$(BIN)/python tutorials/_notebooks.py

# the documentation site (MkDocs + mkdocstrings; warnings are errors) into build/site
docs: $(STAMP)
	$(BIN)/python -c 'import mkdocs, mkdocstrings' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[docs]'
	$(BIN)/python -m mkdocs build --strict
