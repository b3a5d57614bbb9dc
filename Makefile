# Hearth: two commands.
#   make serve   set up (first run) and run the server with the default model
#   make test    set up (first run) and run every test
#   make desktop set up (first run) and open the desktop window
# Both are idempotent: a second run skips what is already in place.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HEARTH := $(VENV)/bin/hearth
STAMP  := $(VENV)/.stamp
NODE_CLIENT := tests/node

# Debian packages the build and the tests need: a C++ toolchain and cmake for
# llama.cpp, Node.js for the cross-language gRPC client test, Xvfb for the
# desktop window's headless test.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test desktop install dev system-deps node-deps stubs check-stubs clean

serve: install
	$(HEARTH) pull-default --if-missing
	$(HEARTH) serve

test: dev node-deps
	$(PY) -m pytest

desktop: $(STAMP).desktop
	$(HEARTH) pull-default --if-missing
	$(HEARTH) desktop

system-deps:
	@missing=""; \
	command -v c++ >/dev/null || missing="$$missing build-essential"; \
	command -v cmake >/dev/null || missing="$$missing cmake"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v xvfb-run >/dev/null || missing="$$missing xvfb xauth"; \
	ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || missing="$$missing libgl1 libgl1-mesa-dri"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# llama-cpp-python builds llama.cpp from source on first install (minutes);
# pip caches the wheel, so later installs on this machine are quick.
$(STAMP).runtime: pyproject.toml | $(PY)
	$(MAKE) system-deps
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP).dev: pyproject.toml | $(PY)
	$(MAKE) system-deps
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(STAMP).runtime

$(STAMP).desktop: pyproject.toml | $(PY)
	$(MAKE) system-deps
	$(PY) -m pip install --quiet -e ".[desktop]"
	touch $@ $(STAMP).runtime

install: $(STAMP).runtime

dev: $(STAMP).dev

$(NODE_CLIENT)/node_modules/.stamp: $(NODE_CLIENT)/package.json $(NODE_CLIENT)/package-lock.json
	$(MAKE) system-deps
	cd $(NODE_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

node-deps: $(NODE_CLIENT)/node_modules/.stamp

stubs: dev
	$(PY) tools/gen_protos.py

check-stubs: dev
	$(PY) tools/gen_protos.py --check

clean:
	rm -rf $(VENV) .cache .pytest_cache $(NODE_CLIENT)/node_modules
