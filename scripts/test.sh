#!/usr/bin/env bash
# Every test: the C++ suite (GoogleTest via ctest), then the Python package is
# built and installed and its API and parity tests run against torch/torchao.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --python
cmake --workflow --preset release
python3 -m pip install -q --disable-pip-version-check --no-build-isolation .
python3 -m pytest -q tests/python
