#!/usr/bin/env bash
# Builds the two fuzz targets with clang (libFuzzer + ASan + UBSan) and runs
# each for a bounded time on its seed corpus:
#   fuzz_safetensors  the safetensors header reader (any bytes);
#   fuzz_quantized    quantized checkpoints as inspect / report read them
#                     (the io sources instrumented; the core library from the
#                     release build, so build that first);
#   fuzz_importance   llama.cpp GGUF imatrix files as --importance reads them.
#   tests/fuzz/run.sh [seconds per target]      (default 60)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
cxx="$(command -v clang++-14 || command -v clang++)"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
  -ffp-contract=off -Iinclude -Isrc -Isrc/io)
out=build/fuzz
core=build/release/src/libquantkit.a
[ -f "$core" ] || { echo "run.sh: $core is missing: cmake --workflow --preset release" >&2; exit 1; }
mkdir -p "$out/corpus" "$out/corpus_quantized" "$out/corpus_importance"

"$cxx" "${flags[@]}" tests/fuzz/fuzz_safetensors.cpp src/io/safetensors_format.cpp \
  src/core/scalar_type.cpp src/core/tensor.cpp src/core/half.cpp -o "$out/fuzz_safetensors"
"$cxx" "${flags[@]}" tests/fuzz/fuzz_quantized.cpp src/io/stored_weights.cpp \
  src/io/compressed_tensors.cpp src/io/int32_packing.cpp src/io/schemes.cpp src/io/safetensors_format.cpp \
  src/io/safetensors_file.cpp src/io/output_target.cpp "$core" -lhwy -lgomp \
  -o "$out/fuzz_quantized"

"$cxx" "${flags[@]}" tests/fuzz/fuzz_importance.cpp src/io/gguf_imatrix.cpp \
  src/io/importance_file.cpp src/io/safetensors_format.cpp src/io/safetensors_file.cpp \
  src/io/output_target.cpp "$core" \
  -lhwy -lgomp -o "$out/fuzz_importance"

cp tests/fuzz/corpus/* "$out/corpus/"
cp tests/fuzz/corpus_importance/* "$out/corpus_importance/"
cp tests/fuzz/corpus_quantized/* "$out/corpus_quantized/"
echo "-- fuzz_safetensors"
"$out/fuzz_safetensors" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -dict=tests/fuzz/safetensors.dict "$out/corpus" 2>&1 | tail -3
echo "-- fuzz_quantized"
"$out/fuzz_quantized" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -dict=tests/fuzz/quantized.dict "$out/corpus_quantized" 2>&1 | tail -3
echo "-- fuzz_importance"
"$out/fuzz_importance" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  "$out/corpus_importance" 2>&1 | tail -3
