"""``QuantLayerNorm``: LayerNorm as an integer-only NPU computes it, every
intermediate through its own observer and fake quantizer.

The chain, each step fake-quantized with calibrated (static) qparams::

    x → mean → centered = x - mean → squared → variance = mean(squared)
      → inv_std = rsqrt(variance + eps) → normalized = centered * inv_std
      → output = normalized * weight + bias

Variance and inv_std are strictly positive: with an integer zero point the
observed range is widened to include 0 (the zero-in-range rule), so their
qparams stay sensible instead of collapsing every value onto one code.
"""

from __future__ import annotations

import torch
from torch import nn

from ._spec import SpecArgs
from .fake_quantize import FakeQuantize
from .recipes import TensorQuant

STEPS = ("input", "mean", "centered", "squared", "variance", "inv_std", "normalized", "output")


class QuantLayerNorm(nn.Module):
    """Fake-quantized LayerNorm over the last ``len(normalized_shape)`` dimensions."""

    def __init__(self, layer_norm: nn.LayerNorm, bits: int = 8, observer: str = "minmax"):
        super().__init__()
        self.normalized_shape = tuple(layer_norm.normalized_shape)
        self.eps = layer_norm.eps
        self.weight, self.bias = layer_norm.weight, layer_norm.bias
        config = TensorQuant(
            SpecArgs(dtype=f"uint{bits}", mapping="asymmetric"), "static", observer
        )
        self.quantizers = nn.ModuleDict({step: FakeQuantize(config) for step in STEPS})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fq = self.quantizers
        dims = tuple(range(-len(self.normalized_shape), 0))
        x = fq["input"](x)
        mean = fq["mean"](x.mean(dim=dims, keepdim=True))
        centered = fq["centered"](x - mean)
        squared = fq["squared"](centered * centered)
        variance = fq["variance"](squared.mean(dim=dims, keepdim=True))
        inv_std = fq["inv_std"](torch.rsqrt(variance + self.eps))
        out = fq["normalized"](centered * inv_std)
        if self.weight is not None:
            out = out * self.weight
        if self.bias is not None:
            out = out + self.bias
        return fq["output"](out)
