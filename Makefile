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

# llama.cpp is built once, portably, into a wheel of our own: CPU backends for
# several instruction sets, the best one chosen at run time (as Ollama and
# llama.cpp's releases build it), never -march=native. The wheel's folder is
# named after its flags, so a wheel built with other flags (or one pip cached
# from a native build) is never picked up by mistake. GPU=cuda adds CUDA.
LLAMA_CPP_VERSION := 0.3.36
GPU ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_BACKEND_DIR:STRING=llama_cpp/lib -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
ifeq ($(GPU),cuda)
LLAMA_CMAKE_ARGS += -DGGML_CUDA=ON
endif
WHEELHOUSE := .cache/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(shell echo '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
LLAMA_WHEEL_STAMP := $(WHEELHOUSE)/.built
PIP_INSTALL := $(PY) -m pip install --quiet --find-links $(WHEELHOUSE) --only-binary llama-cpp-python
# The wheel just built replaces whatever llama-cpp-python the venv had (pip
# keeps an installed version that satisfies the pin, whatever its flags).
INSTALL_LLAMA := $(PY) -m pip install --quiet --no-deps --force-reinstall $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl

$(LLAMA_WHEEL_STAMP): | $(PY)
	$(MAKE) system-deps
	@echo "building llama.cpp (llama-cpp-python $(LLAMA_CPP_VERSION)) with $(LLAMA_CMAKE_ARGS); this takes a while on first setup"
	mkdir -p $(WHEELHOUSE)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	  $(PY) -m pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
	  -w $(WHEELHOUSE) llama-cpp-python==$(LLAMA_CPP_VERSION)
	touch $@

$(STAMP).runtime: pyproject.toml $(LLAMA_WHEEL_STAMP) | $(PY)
	$(MAKE) system-deps
	$(INSTALL_LLAMA)
	$(PIP_INSTALL) -e .
	touch $@

$(STAMP).dev: pyproject.toml $(LLAMA_WHEEL_STAMP) | $(PY)
	$(MAKE) system-deps
	$(INSTALL_LLAMA)
	$(PIP_INSTALL) -e ".[dev]"
	touch $@ $(STAMP).runtime

$(STAMP).desktop: pyproject.toml $(LLAMA_WHEEL_STAMP) | $(PY)
	$(MAKE) system-deps
	$(INSTALL_LLAMA)
	$(PIP_INSTALL) -e ".[desktop]"
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
