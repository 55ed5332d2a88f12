"""Prepared (fake-quantized) modules: what :func:`quantkit.torch.prepare` swaps in.

Each keeps the original module's parameters (the same ``Parameter`` objects, so
an optimizer built before ``prepare`` still trains them) and adds a
``weight_fake_quant`` and, for Linear / Conv2d, an ``input_fake_quant``.
Weights are quantized as a 2-D matrix ``[out, -1]``: per-channel means per
output channel, per-group means groups along the flattened input features.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from . import linear_ops, ops
from ._spec import SpecArgs, args_from_key
from .fake_quantize import FakeQuantize
from .learnable import LearnableFakeQuantize
from .recipes import TensorQuant


def _quantizer(config: TensorQuant | None) -> FakeQuantize | None:
    if config is None:
        return None
    return LearnableFakeQuantize(config) if config.qparams == "learnable" else FakeQuantize(config)


def fake_quantized_weight(weight: torch.Tensor, fq: FakeQuantize | None) -> torch.Tensor:
    if fq is None:
        return weight
    return fq(weight.reshape(weight.shape[0], -1)).reshape(weight.shape)


def quantize_input(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` through the module's input quantizer, if it has one."""
    fq = module.input_fake_quant
    return x if fq is None else fq(x)


_KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_TORCH_MATMUL = threading.local()


@contextlib.contextmanager
def torch_matmul() -> Iterator[None]:
    """Inside this block, prepared and converted Linear layers multiply with ``F.linear``
    (torch's own summation order) instead of quantkit's kernel: for side-by-side
    comparisons with torch-based fake quantization (torchao's QAT linears compute
    ``F.linear`` of fake-quantized values, and so do these then). Converted layers
    dequantize their whole weight first, so they still equal prepared layers bit for bit.
    Applies to the current thread."""
    before = getattr(_TORCH_MATMUL, "on", False)
    _TORCH_MATMUL.on = True
    try:
        yield
    finally:
        _TORCH_MATMUL.on = before


def runs_on_linear_kernel(x: torch.Tensor, dtype: torch.dtype, bias: torch.Tensor | None) -> bool:
    """Whether quantkit's linear kernel takes ``x`` against a weight of ``dtype``: CPU
    tensors of one float dtype (F.linear's own rule), at least 1-D."""
    return (
        not getattr(_TORCH_MATMUL, "on", False)
        and x.device.type == "cpu"
        and x.dtype == dtype
        and dtype in _KERNEL_DTYPES
        and x.dim() >= 1
        and (bias is None or (bias.dtype == dtype and bias.device.type == "cpu"))
    )


def _integer_codes(args: SpecArgs) -> bool:
    """Integer codes of at most 8 bits with an integer or no zero point."""
    return (
        args.dtype.startswith(("int", "uint"))
        and args.mapping != "stretched"
        and args.zero_point_domain != "float"
    )


# Shorter blocks cost more in int32 reductions than the integer products save
# (measured, int8 per-token x int4 g32 on AVX-512: 3.1 ms against 1.5 ms for the
# float kernel at batch 1), so their layers keep the float kernel.
MIN_INTEGER_BLOCK = 128


def integer_weight(args: SpecArgs) -> bool:
    """Whether a weight of this spec takes the integer path: integer codes in blocks of
    whole rows, the whole tensor, or groups of at least MIN_INTEGER_BLOCK columns."""
    kind = args.granularity[0]
    return _integer_codes(args) and (
        kind == "per_tensor"
        or args.granularity == ("per_axis", 0)
        or (kind == "per_group" and args.granularity[1] >= MIN_INTEGER_BLOCK)
    )


def integer_input(fq: FakeQuantize | None) -> tuple | None:
    """The inputs the integer path (``linear_ops.linear_int``) takes: ``(spec, None, None, "")``
    where ``fq`` quantizes per token to integer codes with qparams chosen per call, or
    ``(spec, scale, zero_point, compute)`` where it holds constant per-tensor integer
    qparams (calibrated W8A8); None otherwise."""
    if type(fq) is not FakeQuantize or not fq.enabled or fq.observing:
        return None
    args = args_from_key(fq.spec_key)
    if not _integer_codes(args):
        return None
    if not fq.static and not fq.frozen and args.granularity == ("per_token",):
        return fq.spec_key, None, None, ""
    if fq.frozen and args.granularity == ("per_tensor",):
        scale, zero_point, compute = fq.constant_qparams()
        return fq.spec_key, scale, zero_point, compute
    return None


def _integer_path(module: nn.Module, x: torch.Tensor, weight_dtype: torch.dtype) -> bool:
    fq = module.weight_fake_quant
    return (
        integer_input(module.input_fake_quant) is not None
        and type(fq) is FakeQuantize
        and fq.enabled
        and integer_weight(args_from_key(fq.spec_key))
        and runs_on_linear_kernel(x, weight_dtype, module.bias)
    )


def weight_qparams(fq: FakeQuantize, matrix: torch.Tensor) -> tuple:
    """(scale, zero_point, compute dtype, global scale or None) the weight quantizer
    applies to the 2-D weight ``matrix``: its constants, or chosen from the matrix."""
    if fq.frozen:
        scale, zero_point, compute = fq.constant_qparams()
        global_scale = getattr(fq, "global_scale", None)
    else:
        scale, zero_point, global_scale = ops.choose_qparams(matrix.detach(), fq.spec_key)
        compute = ops.dtype_name(matrix.dtype)
    if global_scale is not None and not global_scale.numel():
        global_scale = None
    return scale, zero_point, compute, global_scale


def linear_in_order(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """``F.linear`` in quantkit's specified summation order (``linear_ops.linear``) where the kernel
    runs: the prepared layer's product, equal bit for bit to the converted layer's."""
    if weight.device.type == "cpu" and runs_on_linear_kernel(x, weight.dtype, bias):
        return linear_ops.linear(x, weight, bias)
    return F.linear(x, weight, bias)


def conv2d_like(m: nn.Conv2d, cls: type = nn.Conv2d, bias: bool | None = None) -> nn.Conv2d:
    """A Conv2d with ``m``'s geometry on the meta device (its tensors come from elsewhere)."""
    return cls(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        m.stride,
        m.padding,
        m.dilation,
        m.groups,
        m.bias is not None if bias is None else bias,
        m.padding_mode,
        device="meta",
    )


def embedding_lookup(m: nn.Module, indices: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.embedding`` with the options of ``m`` (an Embedding or a quantized one)."""
    return F.embedding(
        indices, weight, m.padding_idx, m.max_norm, m.norm_type, m.scale_grad_by_freq, m.sparse
    )


def _adopt(new: nn.Module, old: nn.Module) -> nn.Module:
    """Gives ``new`` (built on the meta device) the parameters and mode of ``old``."""
    for name, param in old.named_parameters(recurse=False):
        setattr(new, name, param)
    for name, buf in old.named_buffers(recurse=False):
        setattr(new, name, buf)
    new.train(old.training)
    fq = new.weight_fake_quant
    if isinstance(fq, LearnableFakeQuantize):  # LSQ starts from the weight's own qparams
        fq.freeze(new.weight.detach().reshape(new.weight.shape[0], -1))
    return new


class QATLinear(nn.Linear):
    """``nn.Linear`` with fake-quantized weight and input."""

    @classmethod
    def from_float(
        cls, m: nn.Linear, weight: TensorQuant | None, activation: TensorQuant | None
    ) -> QATLinear:
        new = cls(m.in_features, m.out_features, m.bias is not None, device="meta")
        new.weight_fake_quant = _quantizer(weight)
        new.input_fake_quant = _quantizer(activation)
        return _adopt(new, m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _integer_path(self, x, self.weight.dtype):
            fq = self.weight_fake_quant
            scale, zero_point, compute, _ = weight_qparams(fq, self.weight)
            activation, x_scale, x_zero_point, x_compute = integer_input(self.input_fake_quant)
            return linear_ops.linear_int_dense(
                x,
                activation,
                self.weight,
                scale,
                zero_point,
                fq.spec_key,
                compute,
                self.bias,
                x_scale,
                x_zero_point,
                x_compute,
            )
        w = fake_quantized_weight(self.weight, self.weight_fake_quant)
        return linear_in_order(quantize_input(self, x), w, self.bias)


class QATConv2d(nn.Conv2d):
    """``nn.Conv2d`` with fake-quantized weight (per output channel / per group of the
    flattened ``in/groups * kh * kw`` features) and input."""

    @classmethod
    def from_float(
        cls, m: nn.Conv2d, weight: TensorQuant | None, activation: TensorQuant | None
    ) -> QATConv2d:
        new = conv2d_like(m, cls)
        new.weight_fake_quant = _quantizer(weight)
        new.input_fake_quant = _quantizer(activation)
        return _adopt(new, m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = fake_quantized_weight(self.weight, self.weight_fake_quant)
        return self._conv_forward(quantize_input(self, x), w, self.bias)


class QATEmbedding(nn.Embedding):
    """``nn.Embedding`` with a fake-quantized table (rows are the output channels)."""

    @classmethod
    def from_float(cls, m: nn.Embedding, weight: TensorQuant | None) -> QATEmbedding:
        new = cls(
            m.num_embeddings,
            m.embedding_dim,
            m.padding_idx,
            m.max_norm,
            m.norm_type,
            m.scale_grad_by_freq,
            m.sparse,
            device="meta",
        )
        new.weight_fake_quant = _quantizer(weight)
        return _adopt(new, m)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        w = fake_quantized_weight(self.weight, self.weight_fake_quant)
        return embedding_lookup(self, indices, w)


PREPARED_TYPES = (QATLinear, QATConv2d, QATEmbedding)
