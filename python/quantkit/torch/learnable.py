"""``LearnableFakeQuantize``: LSQ, scale and zero point trained with the model.

It is a :class:`FakeQuantize` whose constant qparams (taken from the weight at
prepare time, or calibrated for activations) become ``nn.Parameter``s; from then
on it runs ``torch.ops.quantkit.fake_quantize_learnable`` (PyTorch's
``_fake_quantize_learnable_per_*_affine`` numerics and gradients, with LSQ's
gradient scale ``1 / sqrt(numel * quant_max)``).

Convert stays exact: the forward quantizes with the float32 scale and the zero
point rounded and clamped to the code range, which is quantkit's integer-domain
formula with those qparams (``(q - zp) * s``, ``q = round(x * (1 / s)) + zp``).
"""

from __future__ import annotations

import torch
from torch import nn

from . import ops
from ._spec import spec_from_key
from .fake_quantize import FakeQuantize
from .recipes import TensorQuant


class LearnableFakeQuantize(FakeQuantize):
    """Fake quantizer with trainable ``scale`` and ``zero_point`` (LSQ)."""

    def __init__(self, config: TensorQuant) -> None:
        super().__init__(config)
        args = config.spec
        kind = args.granularity[0]
        if args.dtype.startswith("fp") or kind not in ("per_tensor", "per_axis"):
            raise ValueError(
                f"learnable qparams need an integer format per tensor or per axis, "
                f"not {args.describe()!r}"
            )
        spec = spec_from_key(self.spec_key)
        self.quant_min, self.quant_max = int(spec.quant_min), int(spec.quant_max)
        self.axis = args.granularity[1] if kind == "per_axis" else None
        self.static = True  # needs its first qparams: from the weight or from calibration
        self.grid: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing or not self.enabled or not self.frozen:
            return super().forward(x)
        grad_factor = 1.0 / (x.numel() * self.quant_max) ** 0.5
        axis = None if self.axis is None else self.axis % x.dim()
        return ops.fake_quantize_learnable(
            x, self.scale, self.zero_point, axis, self.quant_min, self.quant_max, grad_factor
        )

    def _set(self, scale, zero_point, compute_dtype: str, global_scale=None) -> None:
        # LSQ trains integer scales; two-level specs never reach it (no global scale).
        scale = torch.as_tensor(scale).float()
        zp = torch.zeros_like(scale) if zero_point is None or not zero_point.numel() else zero_point
        self.grid = list(scale.shape)
        self.scale = nn.Parameter(scale.reshape(-1).clone())
        trains_zero_point = self.config.spec.mapping == "asymmetric"
        self.zero_point = nn.Parameter(
            torch.as_tensor(zp).float().reshape(-1).clone(), requires_grad=trains_zero_point
        )
        self.compute_dtype = "float32"

    def constant_qparams(self) -> tuple[torch.Tensor, torch.Tensor, str]:
        zp = self.zero_point.detach().round().clamp(self.quant_min, self.quant_max)
        return (
            self.scale.detach().reshape(self.grid).clone(),
            zp.to(torch.int32).reshape(self.grid),
            "float32",
        )

    def get_extra_state(self) -> dict:
        return super().get_extra_state() | {"grid": self.grid}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.scale is None and prefix + "scale" in state_dict:
            grid = state_dict[prefix + "_extra_state"]["grid"]
            self._set(torch.empty(grid), torch.empty(grid), "float32")
        nn.Module._load_from_state_dict(self, state_dict, prefix, *args, **kwargs)

    def set_extra_state(self, state: dict) -> None:
        super().set_extra_state(state)
        self.grid = list(state["grid"])
