"""Fixtures for the command-line tool tests: the built binary and checkpoints."""

import os
import pathlib
import subprocess

import pytest
import torch
from quantkit.__main__ import native_tool
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    """The checkpoint tool the wheel ships (what `quantkit quantize` runs), or $QUANTKIT_CLI."""
    path = pathlib.Path(os.environ.get("QUANTKIT_CLI", native_tool()))
    assert path.is_file(), f"{path} is missing: reinstall quantkit with `pip install .`"
    return path


@pytest.fixture(scope="session")
def run(cli):
    def run_cli(*args, expect=0):
        result = subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True)
        assert result.returncode == expect, result.stdout + result.stderr
        return result

    return run_cli


@pytest.fixture(scope="session")
def make_checkpoint():
    return write_checkpoint


def write_checkpoint(path: pathlib.Path, dtype: torch.dtype, seed: int = 0) -> dict:
    """A small model-like checkpoint: matrices with outlier columns, a bias,
    a norm, an embedding and an integer buffer."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(64, 256, generator=g) * 0.05
    w1[:, 7] *= 30  # an outlier input channel
    tensors = {
        "model.layers.0.mlp.up_proj.weight": w1.to(dtype),
        "model.layers.0.mlp.down_proj.weight": (torch.randn(48, 128, generator=g) * 0.02).to(dtype),
        "model.layers.0.mlp.down_proj.bias": torch.randn(48, generator=g).to(dtype),
        "model.norm.weight": torch.ones(128, dtype=dtype),
        "model.embed_tokens.weight": torch.randn(100, 64, generator=g).to(dtype),
        "model.position_ids": torch.arange(16, dtype=torch.int64),
    }
    save_file(tensors, str(path), metadata={"format": "pt"})
    return tensors
