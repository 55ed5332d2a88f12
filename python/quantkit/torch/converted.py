"""Converted modules: real quantized codes and qparams, dequantized in ``forward``.

:func:`quantkit.torch.convert` builds them from prepared modules. A converted
weight is ``dequantize(quantize(w, qp))`` and a prepared one is
``fake_quantize(w, qp)`` with the same qparams: the core kernels make the two
equal bit for bit, so a converted model computes exactly what the prepared
model computed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import linear_ops, ops
from ._spec import args_from_key
from .fake_quantize import FakeQuantize, keep_exact_through_casts
from .prepared import (
    conv2d_like,
    embedding_lookup,
    integer_input,
    integer_weight,
    quantize_input,
    runs_on_linear_kernel,
    weight_qparams,
)

# Scales whose format is one byte are stored in it (torch's own float8 dtypes);
# "fp8_e4m3" is the older spelling of "fp8_e4m3fn", still accepted in specs.
_ONE_BYTE_SCALES = {
    "e8m0": torch.float8_e8m0fnu,
    "fp8_e4m3fn": torch.float8_e4m3fn,
    "fp8_e4m3": torch.float8_e4m3fn,
}


def _stored_scale(scale: torch.Tensor, spec_key: str) -> torch.Tensor:
    """MX (E8M0) and NVFP4 (E4M3) scales as 1 byte each when that is exact (it is for
    every finite scale those formats choose; a NaN block keeps float32)."""
    dtype = _ONE_BYTE_SCALES.get(args_from_key(spec_key).scale_dtype)
    if dtype is not None and scale.dtype == torch.float32:
        narrow = scale.to(dtype)
        if torch.equal(narrow.float(), scale):
            return narrow
    return scale.clone()


def _stored_zero_point(zero_point: torch.Tensor, spec_key: str) -> torch.Tensor:
    """Symmetric schemes store no zero point (every one is 0): an empty tensor, as
    compressed-tensors stores none, instead of an int32 per block (18 % of a bf16
    W4A16-g32 layer)."""
    if ops.zero_point_is_zero(spec_key) and zero_point.numel() and not zero_point.any():
        return ops.NO_ZERO_POINT.clone()
    return zero_point.clone()


class QuantizedWeight(nn.Module):
    """A weight as packed codes + scale (+ zero point); calling it dequantizes."""

    def __init__(self, weight: torch.Tensor, fq: FakeQuantize) -> None:
        super().__init__()
        matrix = weight.detach().reshape(weight.shape[0], -1)
        scale, zero_point, compute, global_scale = weight_qparams(fq, matrix)
        self.spec_key = fq.spec_key
        self.compute_dtype = compute
        self.dtype = weight.dtype
        self.shape = list(matrix.shape)
        self.full_shape = list(weight.shape)
        packed = ops.quantize_packed(
            matrix, scale, zero_point, self.spec_key, compute, global_scale
        )
        self.register_buffer("packed", packed)
        self.register_buffer("scale", _stored_scale(scale, self.spec_key))
        self.register_buffer("zero_point", _stored_zero_point(zero_point, self.spec_key))
        self.register_buffer("global_scale", None if global_scale is None else global_scale.clone())

    @classmethod
    def from_stored(
        cls,
        packed: torch.Tensor,
        scale: torch.Tensor,
        zero_point: torch.Tensor,
        spec_key: str,
        compute_dtype: str,
        shape: list[int],
        dtype: torch.dtype,
        global_scale: torch.Tensor | None = None,
    ) -> QuantizedWeight:
        """A weight from codes and qparams read back from a checkpoint (nothing re-chosen)."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.spec_key, self.compute_dtype, self.dtype = spec_key, compute_dtype, dtype
        self.shape, self.full_shape = list(shape), list(shape)
        self.register_buffer("packed", packed)
        self.register_buffer("scale", _stored_scale(scale, spec_key))
        self.register_buffer("zero_point", zero_point)
        self.register_buffer("global_scale", global_scale)
        return self

    def _apply(self, fn, recurse=True):
        # Codes and qparams are exact storage: .half() / .to(dtype) must not round
        # them. They follow device moves; a dtype cast only changes the dtype the
        # weight dequantizes to (exactly in its compute dtype, then cast).
        self.dtype = keep_exact_through_casts(
            self, fn, recurse, ("scale", "global_scale"), self.dtype
        )
        return self

    @property
    def float_scale(self) -> torch.Tensor:
        """The scale as the kernels take it (1-byte scale storage widened, exactly)."""
        return self.scale.float() if self.scale.element_size() == 1 else self.scale

    def codes_and_qparams(self) -> tuple:
        """(packed, scale, zero_point, shape, spec, compute dtype): the arguments the packed
        kernels (``linear_ops.linear_packed``, ``linear_ops.embedding_packed``) read the
        weight from; the scale as stored (they widen 1-byte scales once per resolved
        weight)."""
        return (
            self.packed,
            self.scale,
            self.zero_point,
            self.shape,
            self.spec_key,
            self.compute_dtype,
        )

    def forward(self) -> torch.Tensor:
        w = ops.dequantize_packed(
            self.packed,
            self.float_scale,
            self.zero_point,
            self.shape,
            self.spec_key,
            self.compute_dtype,
            self.dtype,
            self.global_scale,
        )
        return w.reshape(self.full_shape)

    @property
    def nbytes(self) -> int:
        parts = (self.packed, self.scale, self.zero_point, self.global_scale)
        return sum(t.numel() * t.element_size() for t in parts if t is not None)

    def get_extra_state(self) -> dict:
        return {"spec": self.spec_key, "compute_dtype": self.compute_dtype}

    def set_extra_state(self, state: dict) -> None:
        self.spec_key, self.compute_dtype = state["spec"], state["compute_dtype"]

    def extra_repr(self) -> str:
        return f"{args_from_key(self.spec_key).describe()}, shape={tuple(self.full_shape)}"


class _OverQuantizedWeight(nn.Module):
    """The parts every converted module shares: the weight as a :class:`QuantizedWeight`,
    the bias and the input quantizer (``None`` where the prepared module had none)."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.qweight = QuantizedWeight(m.weight, m.weight_fake_quant)
        self.bias = getattr(m, "bias", None)
        self.input_fake_quant = getattr(m, "input_fake_quant", None)

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight (computed on every access)."""
        return self.qweight()


class QuantizedLinear(_OverQuantizedWeight):
    """Linear layer over a :class:`QuantizedWeight`; the input quantizer (if any) is kept."""

    def __init__(self, m: nn.Linear) -> None:
        super().__init__(m)
        self.in_features, self.out_features = m.in_features, m.out_features

    @classmethod
    def from_weight(
        cls,
        weight: QuantizedWeight,
        bias: torch.Tensor | None,
        input_fake_quant: FakeQuantize | None = None,
    ) -> QuantizedLinear:
        """A layer over a stored weight (see :func:`load_pretrained`), with the input
        quantizer it had (``None``: weight-only)."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.qweight = weight
        self.bias = None if bias is None else nn.Parameter(bias, requires_grad=False)
        self.input_fake_quant = input_fake_quant
        self.out_features, self.in_features = weight.shape
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qw = self.qweight
        inputs = integer_input(self.input_fake_quant)
        if (
            isinstance(qw, QuantizedWeight)
            and inputs is not None
            and integer_weight(args_from_key(qw.spec_key))
            and runs_on_linear_kernel(x, qw.dtype, self.bias)
        ):  # codes of x and of the weight, multiplied in integers
            activation, x_scale, x_zero_point, x_compute = inputs
            return linear_ops.linear_int(
                x, activation, *qw.codes_and_qparams(), self.bias, x_scale, x_zero_point, x_compute
            )
        x = quantize_input(self, x)
        # Codes read in place (a few rows dequantized at a time, in cache) where the kernel
        # runs; ONNX export swaps qweight for a marker module and takes F.linear.
        if isinstance(qw, QuantizedWeight) and runs_on_linear_kernel(x, qw.dtype, self.bias):
            return linear_ops.linear_packed(x, *qw.codes_and_qparams(), qw.global_scale, self.bias)
        return F.linear(x, qw(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class QuantizedConv2d(_OverQuantizedWeight):
    """Conv2d over a :class:`QuantizedWeight`."""

    def __init__(self, m: nn.Conv2d) -> None:
        super().__init__(m)
        self.conv = conv2d_like(m, bias=False)  # geometry only
        del self.conv.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv._conv_forward(quantize_input(self, x), self.qweight(), self.bias)


class QuantizedEmbedding(_OverQuantizedWeight):
    """Embedding table as a :class:`QuantizedWeight` (rows gathered after dequantizing)."""

    def __init__(self, m: nn.Embedding) -> None:
        super().__init__(m)
        self.num_embeddings, self.embedding_dim = m.num_embeddings, m.embedding_dim
        self.padding_idx, self.max_norm, self.norm_type = m.padding_idx, m.max_norm, m.norm_type
        self.scale_grad_by_freq, self.sparse = m.scale_grad_by_freq, m.sparse

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        qw = self.qweight
        if (
            isinstance(qw, QuantizedWeight)
            and indices.device.type == "cpu"
            and self.max_norm is None  # renormalizing rewrites the looked-up rows
            and len(qw.shape) == 2
        ):
            packed, scale, zp, shape, spec, compute = qw.codes_and_qparams()
            return linear_ops.embedding_packed(
                indices, packed, scale, zp, shape, spec, compute, qw.dtype, qw.global_scale
            )
        return embedding_lookup(self, indices, qw())


CONVERTED_TYPES = (QuantizedLinear, QuantizedConv2d, QuantizedEmbedding)
