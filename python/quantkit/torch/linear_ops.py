"""quantkit's linear kernels as ``torch.library`` ops: what prepared and converted
Linear / Embedding layers compute with.

- ``linear``: ``x @ w.T + b`` in quantkit's specified summation order (prepared
  layers, on their fake-quantized weights);
- ``linear_packed``: the same with the weight as packed codes read in place
  (converted layers);
- ``linear_int`` / ``linear_int_dense``: the integer path of integer-quantized
  inputs (converted / prepared layers);
- ``embedding_packed``: the looked-up rows of a quantized table only.

Each has a fake implementation (``torch.compile`` / ``torch.export`` trace it as one
node) and the gradients of the layer it serves. The order and the integer path are
specified in ``include/quantkit/linear.hpp`` and docs/numerics.md.
"""

from __future__ import annotations

import weakref

import torch

from .. import _core
from ._spec import spec_from_key
from .ops import (
    NO_ZERO_POINT,
    _cpu,
    _qparams,
    choose_qparams,
    dequantize_packed,
    dtype_name,
    fake_quantize,
    fake_quantize_ste_grad,
    quantize_packed,
)

# --- linear in quantkit's summation order --------------------------------------------------


@torch.library.custom_op("quantkit::linear", mutates_args=())
def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` in quantkit's specified summation order (sixteen partial sums,
    halved pairwise: ``include/quantkit/linear.hpp``). Prepared Linear layers compute with it,
    so their converted form, which reads the codes in place (``linear_packed``), gives the
    same bits."""
    b = None if bias is None else _cpu("bias", bias)
    return torch.from_dlpack(_core.linear(_cpu("x", x), _cpu("weight", weight), b))


@linear.register_fake
def _(x, weight, bias=None):
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def _linear_setup(ctx, inputs, output):
    x, weight, bias = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None


def _linear_backward(ctx, grad):
    x, weight = ctx.saved_tensors
    rows = grad.reshape(-1, grad.shape[-1])
    dx = grad @ weight if ctx.needs_input_grad[0] else None
    dw = rows.T @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
    db = rows.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
    return dx, dw, db


torch.library.register_autograd("quantkit::linear", _linear_backward, setup_context=_linear_setup)

# Resolved weights by packed tensor: building one resolves every block's scale, which
# costs more than a batch-1 product. An entry is used only for the very tensor object it
# was built from, unchanged (same storage, same version counters), and dies with it.
_LINEAR_WEIGHTS: dict[tuple, tuple] = {}


def _widened(scale: torch.Tensor) -> torch.Tensor:
    """A scale stored in one byte (E8M0, E4M3) as the float32 the kernels take (exact)."""
    return scale.float() if scale.element_size() == 1 else scale


def _linear_weight(packed, scale, zero_point, shape, spec, compute, dtype, global_scale):
    parts = (packed, scale, zero_point, global_scale)
    state = tuple(None if t is None else (id(t), t.data_ptr(), t._version) for t in parts)
    key = (id(packed), tuple(shape), spec, compute, dtype)
    hit = _LINEAR_WEIGHTS.get(key)
    if hit is not None and hit[0]() is packed and hit[1] == state:
        return hit[2]
    qp = _qparams(_widened(scale), zero_point, spec, compute, global_scale)
    weight = _core.LinearWeight(_cpu("packed", packed), list(shape), qp._core, dtype_name(dtype))
    _LINEAR_WEIGHTS[key] = (
        weakref.ref(packed, lambda _: _LINEAR_WEIGHTS.pop(key, None)),
        state,
        weight,
    )
    return weight


@torch.library.custom_op("quantkit::linear_packed", mutates_args=())
def linear_packed(
    x: torch.Tensor,
    packed: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    shape: list[int],
    spec: str,
    compute: str,
    global_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``quantkit::linear`` with the weight given by packed codes and qparams (as
    ``dequantize_packed`` takes them; the scale may also be in its 1-byte storage),
    dequantized a few rows at a time in cache: the same bits as
    ``linear(x, dequantize_packed(...))``."""
    w = _linear_weight(packed, scale, zero_point, shape, spec, compute, x.dtype, global_scale)
    b = None if bias is None else _cpu("bias", bias)
    return torch.from_dlpack(_core.linear(_cpu("x", x), w, b))


@linear_packed.register_fake
def _(x, packed, scale, zero_point, shape, spec, compute, global_scale=None, bias=None):
    return x.new_empty((*x.shape[:-1], shape[0]))


def _linear_packed_setup(ctx, inputs, output):
    x, packed, scale, zero_point, shape, spec, compute, global_scale, bias = inputs
    ctx.save_for_backward(packed, scale, zero_point, global_scale)
    ctx.args = (shape, spec, compute, x.dtype)
    ctx.has_bias = bias is not None


def _linear_packed_backward(ctx, grad):
    # Frozen codes and qparams; the input (adapters trained over a quantized base) and
    # the bias get gradients.
    packed, scale, zero_point, global_scale = ctx.saved_tensors
    shape, spec, compute, dtype = ctx.args
    dx = None
    if ctx.needs_input_grad[0]:
        w = dequantize_packed(
            packed, _widened(scale), zero_point, shape, spec, compute, dtype, global_scale
        )
        dx = grad @ w
    db = _bias_grad(grad) if ctx.has_bias and ctx.needs_input_grad[8] else None
    return dx, None, None, None, None, None, None, None, db


torch.library.register_autograd(
    "quantkit::linear_packed", _linear_packed_backward, setup_context=_linear_packed_setup
)


# --- the integer path of integer-quantized inputs (W8A8, W8A8 dynamic, 8da4w g128) ----------


@torch.library.custom_op("quantkit::linear_int", mutates_args=())
def linear_int(
    x: torch.Tensor,
    activation: str,
    packed: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    shape: list[int],
    spec: str,
    compute: str,
    bias: torch.Tensor | None = None,
    x_scale: torch.Tensor | None = None,
    x_zero_point: torch.Tensor | None = None,
    x_compute: str = "",
) -> torch.Tensor:
    """``x`` quantized with the ``activation`` spec (per row with qparams from quantkit's
    ``choose_qparams``, or with the given per-tensor ``x_scale`` / ``x_zero_point`` of a
    calibrated input, as the fake-quantized model quantizes it), exact int32 sums of
    centered codes against the weight's integer codes, then a float32 epilogue
    (``include/quantkit/linear.hpp``)."""
    w = _linear_weight(packed, scale, zero_point, shape, spec, compute, x.dtype, None)
    return _integer_product(x, activation, w, bias, x_scale, x_zero_point, x_compute)


def _integer_product(x, activation, weight, bias, x_scale, x_zero_point, x_compute):
    b = None if bias is None else _cpu("bias", bias)
    if x_scale is None:
        chosen = spec_from_key(activation)
    else:
        # per-tensor qparams observed on inputs of any rank: one value, for x's rows
        zp = NO_ZERO_POINT if x_zero_point is None else x_zero_point.reshape(-1)
        chosen = _qparams(x_scale.reshape(-1), zp, activation, x_compute)._core
    return torch.from_dlpack(_core.linear_int(_cpu("x", x), chosen, weight, b))


@linear_int.register_fake
def _(x, activation, packed, scale, zero_point, shape, spec, compute, bias=None, *_):
    return x.new_empty((*x.shape[:-1], shape[0]))


def _input_qparams(x, activation, x_scale, x_zero_point, x_compute) -> tuple:
    """(scale, zero_point, compute dtype, global scale) of x's fake quantization: chosen
    from x (dynamic inputs) or the given per-tensor qparams (calibrated inputs)."""
    if x_scale is None:
        scale, zero_point, g = choose_qparams(x.detach(), activation)
        return scale, zero_point, dtype_name(x.dtype), g
    return x_scale, NO_ZERO_POINT if x_zero_point is None else x_zero_point, x_compute, None


def _activation_ste(grad_input, x, activation, qparams) -> torch.Tensor:
    """The straight-through gradient of x's fake quantization with ``qparams``."""
    scale, zero_point, compute, g = qparams
    return fake_quantize_ste_grad(grad_input, x, scale, zero_point, activation, compute, g)


def _bias_grad(grad: torch.Tensor) -> torch.Tensor:
    return grad.reshape(-1, grad.shape[-1]).sum(0)


def _static_args(inputs, first: int) -> tuple:
    """(x_scale, x_zero_point, x_compute) of an integer op's inputs from index ``first``."""
    rest = list(inputs[first:]) + [None, None, ""]
    return rest[0], rest[1], rest[2] or ""


def _int_setup(ctx, inputs, output):
    x, activation, packed, scale, zero_point, shape, spec, compute, bias = inputs[:9]
    x_scale, x_zero_point, x_compute = _static_args(inputs, 9)
    ctx.save_for_backward(x, packed, scale, zero_point, x_scale, x_zero_point)
    ctx.args = (activation, shape, spec, compute, x_compute)
    ctx.has_bias = bias is not None


def _int_backward(ctx, grad):
    # The fake-quantized model's gradient: F.linear's through the dequantized weight,
    # then the activation quantizer's straight-through mask.
    x, packed, scale, zero_point, x_scale, x_zero_point = ctx.saved_tensors
    activation, shape, spec, compute, x_compute = ctx.args
    dx = None
    if ctx.needs_input_grad[0]:
        w = dequantize_packed(packed, _widened(scale), zero_point, shape, spec, compute, x.dtype)
        qparams = _input_qparams(x, activation, x_scale, x_zero_point, x_compute)
        dx = _activation_ste(grad @ w, x, activation, qparams)
    db = _bias_grad(grad) if ctx.has_bias and ctx.needs_input_grad[8] else None
    return dx, None, None, None, None, None, None, None, db, None, None, None


torch.library.register_autograd("quantkit::linear_int", _int_backward, setup_context=_int_setup)


@torch.library.custom_op("quantkit::linear_int_dense", mutates_args=())
def linear_int_dense(
    x: torch.Tensor,
    activation: str,
    weight: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    spec: str,
    compute: str,
    bias: torch.Tensor | None = None,
    x_scale: torch.Tensor | None = None,
    x_zero_point: torch.Tensor | None = None,
    x_compute: str = "",
) -> torch.Tensor:
    """``linear_int`` on a float weight quantized here with the given qparams: a
    prepared layer's forward, the same bits as its converted form's. Gradients are the
    fake-quantized layer's (straight-through for x and for the weight)."""
    weight = _cpu("weight", weight.detach())
    packed = quantize_packed(weight, scale, zero_point, spec, compute)
    qp = _qparams(_widened(scale), zero_point, spec, compute)
    w = _core.LinearWeight(packed, list(weight.shape), qp._core, dtype_name(x.dtype))
    return _integer_product(x, activation, w, bias, x_scale, x_zero_point, x_compute)


@linear_int_dense.register_fake
def _(x, activation, weight, scale, zero_point, spec, compute, bias=None, *_):
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


def _int_dense_setup(ctx, inputs, output):
    x, activation, weight, scale, zero_point, spec, compute, bias = inputs[:8]
    x_scale, x_zero_point, x_compute = _static_args(inputs, 8)
    ctx.save_for_backward(x, weight, scale, zero_point, x_scale, x_zero_point)
    ctx.args = (activation, spec, compute, x_compute)
    ctx.has_bias = bias is not None


def _int_dense_backward(ctx, grad):
    x, weight, scale, zero_point, x_scale, x_zero_point = ctx.saved_tensors
    activation, spec, compute, x_compute = ctx.args
    dx = dw = None
    if ctx.needs_input_grad[0] or ctx.needs_input_grad[2]:
        qparams = _input_qparams(x, activation, x_scale, x_zero_point, x_compute)
    if ctx.needs_input_grad[0]:
        wq = fake_quantize(weight.detach(), scale, zero_point, spec, compute)
        dx = _activation_ste(grad @ wq, x, activation, qparams)
    if ctx.needs_input_grad[2]:
        x_scale, x_zero_point, x_compute, g = qparams
        xq = fake_quantize(x.detach(), x_scale, x_zero_point, activation, x_compute, g)
        dwq = grad.reshape(-1, grad.shape[-1]).T @ xq.reshape(-1, xq.shape[-1])
        dw = fake_quantize_ste_grad(dwq, weight.detach(), scale, zero_point, spec, compute)
    db = _bias_grad(grad) if ctx.has_bias and ctx.needs_input_grad[7] else None
    return dx, None, dw, None, None, None, None, db, None, None, None


torch.library.register_autograd(
    "quantkit::linear_int_dense", _int_dense_backward, setup_context=_int_dense_setup
)


@torch.library.custom_op("quantkit::embedding_packed", mutates_args=())
def embedding_packed(
    indices: torch.Tensor,
    packed: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    shape: list[int],
    spec: str,
    compute: str,
    dtype: torch.dtype,
    global_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rows ``indices`` of the table that packed codes stand for, dequantizing only those
    rows: the same bits as indexing ``dequantize_packed(...)``."""
    w = _linear_weight(packed, scale, zero_point, shape, spec, compute, dtype, global_scale)
    return torch.from_dlpack(w.gather_rows(_cpu("indices", indices)))


@embedding_packed.register_fake
def _(indices, packed, scale, zero_point, shape, spec, compute, dtype, global_scale=None):
    return packed.new_empty((*indices.shape, shape[1]), dtype=dtype)
