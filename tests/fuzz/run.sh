#!/usr/bin/env bash
# Builds the safetensors-reader fuzz target with clang (libFuzzer + ASan +
# UBSan) and runs it for a bounded time on the seed corpus.
#   tests/fuzz/run.sh [seconds]      (default 60)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
cxx="$(command -v clang++-14 || command -v clang++)"
out=build/fuzz
mkdir -p "$out/corpus"
"$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -ffp-contract=off -Iinclude -Isrc \
  tests/fuzz/fuzz_safetensors.cpp src/io/safetensors_format.cpp src/scalar_type.cpp \
  src/tensor.cpp src/half.cpp -o "$out/fuzz_safetensors"
cp tests/fuzz/corpus/* "$out/corpus/"
"$out/fuzz_safetensors" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -dict=tests/fuzz/safetensors.dict "$out/corpus" 2>&1 | tail -5
