# Two entry points, each doing all of the set-up on a fresh machine:
#   make demo   - create .venv, install, run the demo on the embedded model (runs/demo/report.html)
#   make test   - same set-up, run the test suite
# CPU torch is pinned; on a GPU machine override it, e.g. make demo TORCH_SPEC="torch==2.13.0 --index-url ..."
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN = $(VENV)/bin

.PHONY: demo test test-fast browser bench docs clean

$(BIN)/.steplens-installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e .
	touch $@

# the tests also need the diffusers backends, Ray, pytest/playwright/hypothesis and the docs tools
$(BIN)/.steplens-test-installed: $(BIN)/.steplens-installed
	$(BIN)/python -m pip install -q -e ".[wan,test,ray,docs]"
	touch $@

# first a family whose early x̂0 holds several right answers and commits late (symmetry-open), then mazes
demo: $(BIN)/.steplens-installed
	$(BIN)/steplens demo --model tiny-reasoner --task symmetry-open,maze --count 2 --out runs/demo

# the suite on every core (pytest-xdist; TEST_WORKERS=0: one process); a test module runs whole on one worker (tests/conftest.py)
TEST_WORKERS ?= auto
test: $(BIN)/.steplens-test-installed browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# the browser test drives Debian's Chromium; installed where we may (root, apt), else that test is skipped with the reason
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: the browser test will be skipped (apt-get install chromium)"

# the inner loop: unit tests on tiny models, no end-to-end runs, no Wan pipelines, no torchrun processes
test-fast: $(BIN)/.steplens-test-installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow and not wan and not distributed"

# the docs site (mkdocs Material): site/index.html
docs: $(BIN)/.steplens-test-installed
	$(BIN)/python -m mkdocs build --strict

bench: $(BIN)/.steplens-installed
	$(BIN)/python benchmarks/solve_rate.py

clean:
	rm -rf $(VENV) runs/demo
