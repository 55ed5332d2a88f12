#!/usr/bin/env bash
# Every test: installs missing dependencies, builds (Release) and runs the C++ suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --workflow --preset release
