#!/usr/bin/env bash
# Builds llama.cpp's llama-server and llama-bench from the llama.cpp that the
# installed llama-cpp-python's source package vendors, so that benchmarks
# compare Hearth with the very same llama.cpp. Idempotent; prints the bin folder.
#
#   tools/build_llama_server.sh [VERSION]     (default: the installed llama-cpp-python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
VERSION=${1:-$($PY -c 'import llama_cpp; print(llama_cpp.__version__)')}
ROOT=.cache/llama-server/$VERSION
BIN=$ROOT/build/bin
if [[ -x $BIN/llama-server && -x $BIN/llama-bench ]]; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$ROOT"
if [[ ! -d $ROOT/src ]]; then
  $PY -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$ROOT" >&2
  tar -xzf "$ROOT"/llama_cpp_python-"$VERSION".tar.gz -C "$ROOT"
  mv "$ROOT/llama_cpp_python-$VERSION/vendor/llama.cpp" "$ROOT/src"
  rm -rf "$ROOT/llama_cpp_python-$VERSION"
fi
# The same build options llama-cpp-python uses by default on this machine: native CPU, Release.
cmake -S "$ROOT/src" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF >&2
cmake --build "$ROOT/build" --target llama-server llama-bench -j "$(nproc)" >&2
echo "$BIN"
