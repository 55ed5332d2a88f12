#!/usr/bin/env bash
# Every test: the include layer order (scripts/check_layers.py), the C++
# suite (GoogleTest via ctest), then the Python package is built and installed
# and its API and parity tests run against torch/torchao.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --python
python3 scripts/check_layers.py
cmake --workflow --preset release
python3 -m pip install -q --disable-pip-version-check --no-build-isolation .
python3 -m pytest -q tests/python
