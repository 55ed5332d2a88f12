#!/usr/bin/env bash
# The main job: builds quantkit (Release) and runs the demo on a generated tensor.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cmake >/dev/null && command -v ninja >/dev/null && command -v g++ >/dev/null ||
  bash scripts/install-deps.sh
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUANTKIT_BUILD_TESTS=OFF -DQUANTKIT_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/demo --target quantkit_demo >/dev/null
./build/demo/examples/quantkit_demo
