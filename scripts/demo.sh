#!/usr/bin/env bash
# The main job: builds quantkit (Release) and runs the demo on a generated tensor.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh  # idempotent; quick when everything is present
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DQUANTKIT_BUILD_TESTS=OFF \
  -DQUANTKIT_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/demo --target quantkit_demo >/dev/null
./build/demo/examples/quantkit_demo
