"""quantkit's kernels as ``torch.library`` ops (``torch.ops.quantkit.*``).

Registered ops run the C++ kernels on CPU tensors, have fake (meta)
implementations so ``torch.compile`` traces them as single nodes, and carry
their gradients:

- ``fake_quantize``: straight-through estimator (the gradient passes where the
  unclamped code lies in range), scale and zero point get none;
- ``fake_quantize_learnable``: LSQ, with gradients for scale and zero point
  (PyTorch's ``_fake_quantize_learnable_per_*_affine`` numerics).

A zero point that a spec does not have travels as an empty int32 tensor; the
per-tensor scale of two-level specs (NVFP4) is the optional last argument
``global_scale`` (a 0-d float32 tensor), and ``choose_qparams`` returns it as
an empty tensor for single-level specs.
"""

from __future__ import annotations

import functools

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily

from .. import QParams, QuantizedTensor, _core
from .. import dequantize as _dequantize
from .. import fake_quantize as _fake_quantize
from .. import fake_quantize_backward as _fake_quantize_backward
from .. import fake_quantize_learnable_backward as _learnable_backward
from .. import quantize as _quantize
from ._spec import SpecArgs, args_from_key, spec_from_key

NO_ZERO_POINT = torch.empty(0, dtype=torch.int32)
NO_GLOBAL_SCALE = torch.empty(0, dtype=torch.float32)


def _qparams(
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    spec: str,
    compute: str,
    global_scale: torch.Tensor | None = None,
) -> QParams:
    zp = zero_point.contiguous() if zero_point.numel() else None
    if zp is None and zero_point_is_zero(spec):  # stored without one (converted weights)
        zp = torch.zeros(scale.shape, dtype=torch.int32)
    g = global_scale if global_scale is not None and global_scale.numel() else None
    return QParams(scale.contiguous(), zp, spec_from_key(spec), compute, g)


@functools.lru_cache(maxsize=256)
def zero_point_is_zero(spec: str) -> bool:
    """Signed symmetric integer specs: their zero point is 0 in every block."""
    args = args_from_key(spec)
    return (
        args.mapping in ("symmetric", "symmetric_signed")
        and args.dtype.startswith("int")
        and args.zero_point_domain in (None, "int")
        and args.quant_min is None
    )


def _cpu(name: str, x: torch.Tensor) -> torch.Tensor:
    if x.device.type != "cpu":
        raise ValueError(f"{name} is on device {x.device}; quantkit's kernels run on the CPU")
    return x.contiguous()


# --- choose_qparams -------------------------------------------------------------------------


@torch.library.custom_op("quantkit::choose_qparams", mutates_args=())
def choose_qparams(x: torch.Tensor, spec: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(scale, zero_point, global_scale) per block of ``x``; zero_point is empty where the
    spec has none, global_scale (0-d) empty unless the spec is two-level."""
    qp = _core.choose_qparams(_cpu("x", x).detach(), spec_from_key(spec))
    scale = torch.from_dlpack(qp.scale)
    zp = qp.zero_point
    g = qp.global_scale
    return (
        scale,
        torch.from_dlpack(zp) if zp is not None else NO_ZERO_POINT.clone(),
        torch.from_dlpack(g) if g is not None else NO_GLOBAL_SCALE.clone(),
    )


def _grid(args: SpecArgs, shape) -> list:
    """The qparams grid of an input of ``shape`` (ints or SymInts): one entry per block."""
    kind, *rest = args.granularity
    n = len(shape)
    if kind == "per_tensor":
        return [1] * n
    if kind == "per_token":
        return [*shape[:-1], 1]
    if kind == "per_axis":
        axis = rest[0] % n
        return [s if i == axis else 1 for i, s in enumerate(shape)]
    if kind == "per_group":
        axis = rest[1] % n if len(rest) > 1 else n - 1
        return [s // rest[0] if i == axis else s for i, s in enumerate(shape)]
    return [s // b for s, b in zip(shape, rest[0], strict=True)]  # per_block


@functools.lru_cache(maxsize=256)
def _qparams_dtypes(spec: str, ndim: int, dtype: torch.dtype):
    """(scale dtype, zero-point dtype or None) of ``choose_qparams`` for this input dtype,
    found by a real run on one small block (the dtypes do not depend on the shape)."""
    args = args_from_key(spec)
    kind, *rest = args.granularity
    block = [1] * ndim
    if kind == "per_group":
        block[(rest[1] if len(rest) > 1 else -1) % ndim] = rest[0]
    elif kind == "per_block":
        block = list(rest[0])
    with unset_fake_temporarily():  # a real run, even while tracing
        qp = _core.choose_qparams(torch.ones(block, dtype=dtype), spec_from_key(spec))
        zp = qp.zero_point
        return torch.from_dlpack(qp.scale).dtype, (
            torch.from_dlpack(zp).dtype if zp is not None else None
        )


@choose_qparams.register_fake
def _(x: torch.Tensor, spec: str):
    scale_dtype, zp_dtype = _qparams_dtypes(spec, x.dim(), x.dtype)
    grid = _grid(args_from_key(spec), x.shape)
    scale = x.new_empty(grid, dtype=scale_dtype)
    zp = x.new_empty(grid if zp_dtype else (0,), dtype=zp_dtype or torch.int32)
    g = x.new_empty(() if args_from_key(spec).global_scale else (0,), dtype=torch.float32)
    return scale, zp, g


# --- fake_quantize (straight-through estimator) ---------------------------------------------


@torch.library.custom_op("quantkit::fake_quantize", mutates_args=())
def fake_quantize(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    spec: str,
    compute: str,
    global_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """``dequantize(quantize(x))`` with the given qparams, in ``x``'s dtype."""
    return _fake_quantize(_cpu("x", x), _qparams(scale, zero_point, spec, compute, global_scale))


@fake_quantize.register_fake
def _(x, scale, zero_point, spec, compute, global_scale=None):
    return torch.empty_like(x)


def _fake_quantize_setup(ctx, inputs, output):
    x, scale, zero_point, spec, compute, global_scale = inputs
    ctx.save_for_backward(x, scale, zero_point)
    ctx.spec, ctx.compute, ctx.global_scale = spec, compute, global_scale


def _fake_quantize_backward_rule(ctx, grad):
    x, scale, zero_point = ctx.saved_tensors
    dx = fake_quantize_ste_grad(grad, x, scale, zero_point, ctx.spec, ctx.compute, ctx.global_scale)
    return dx, None, None, None, None, None


torch.library.register_autograd(
    "quantkit::fake_quantize", _fake_quantize_backward_rule, setup_context=_fake_quantize_setup
)


@torch.library.custom_op("quantkit::fake_quantize_ste_grad", mutates_args=())
def fake_quantize_ste_grad(
    grad: torch.Tensor,
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    spec: str,
    compute: str,
    global_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """The straight-through gradient of :func:`fake_quantize`."""
    qp = _qparams(scale, zero_point, spec, compute, global_scale)
    return _fake_quantize_backward(_cpu("x", x), _cpu("grad", grad).to(x.dtype), qp)


@fake_quantize_ste_grad.register_fake
def _(grad, x, scale, zero_point, spec, compute, global_scale=None):
    return torch.empty_like(x)


# --- quantize to codes / dequantize codes (convert) ------------------------------------------


@torch.library.custom_op("quantkit::quantize_packed", mutates_args=())
def quantize_packed(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    spec: str,
    compute: str,
    global_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Codes of ``x`` in their packed byte form (sub-byte formats two or more per byte)."""
    qp = _qparams(scale, zero_point, spec, compute, global_scale)
    return _quantize(_cpu("x", x), qp).pack()


@quantize_packed.register_fake
def _(x, scale, zero_point, spec, compute, global_scale=None):
    bits = spec_from_key(spec).bits
    return x.new_empty(((x.numel() * bits + 7) // 8,), dtype=torch.uint8)


@torch.library.custom_op("quantkit::dequantize_packed", mutates_args=())
def dequantize_packed(
    packed: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    shape: list[int],
    spec: str,
    compute: str,
    dtype: torch.dtype,
    global_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """The tensor of ``shape`` that packed codes and qparams stand for, in ``dtype``."""
    qp = _qparams(scale, zero_point, spec, compute, global_scale)
    q = QuantizedTensor.from_packed(shape, _cpu("packed", packed), qp)
    return _dequantize(q, dtype)


@dequantize_packed.register_fake
def _(packed, scale, zero_point, shape, spec, compute, dtype, global_scale=None):
    return packed.new_empty(shape, dtype=dtype)


# --- LSQ: learnable scale and zero point -----------------------------------------------------


@torch.library.custom_op("quantkit::fake_quantize_learnable", mutates_args=())
def fake_quantize_learnable(
    x: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    axis: int | None,
    quant_min: int,
    quant_max: int,
    grad_factor: float,
) -> torch.Tensor:
    """PyTorch's learnable fake quantize, per tensor (``axis=None``) or per channel."""
    x = _cpu("x", x)
    scale, zero_point = scale.contiguous(), zero_point.contiguous()
    if axis is None:
        out = _core.fake_quantize_learnable_per_tensor_affine(
            x.detach(), scale.detach(), zero_point.detach(), quant_min, quant_max
        )
    else:
        out = _core.fake_quantize_learnable_per_channel_affine(
            x.detach(), scale.detach(), zero_point.detach(), axis, quant_min, quant_max
        )
    return torch.from_dlpack(out)


@fake_quantize_learnable.register_fake
def _(x, scale, zero_point, axis, quant_min, quant_max, grad_factor):
    return torch.empty_like(x)


def _learnable_setup(ctx, inputs, output):
    x, scale, zero_point, axis, quant_min, quant_max, grad_factor = inputs
    ctx.save_for_backward(x, scale, zero_point)
    ctx.args = (axis, quant_min, quant_max, grad_factor)


def _learnable_backward_rule(ctx, grad):
    x, scale, zero_point = ctx.saved_tensors
    axis, quant_min, quant_max, grad_factor = ctx.args
    dx, dscale, dzp = _learnable_backward(
        grad.contiguous(), x, scale, zero_point, quant_min, quant_max, axis, grad_factor
    )
    return dx, dscale.to(scale.dtype), dzp.to(zero_point.dtype), None, None, None, None


torch.library.register_autograd(
    "quantkit::fake_quantize_learnable", _learnable_backward_rule, setup_context=_learnable_setup
)


# --- composites --------------------------------------------------------------------------------


def fake_quantize_dynamic(x: torch.Tensor, spec: str) -> torch.Tensor:
    """Fake-quantize with qparams chosen from ``x`` itself (weights in QAT, per-token
    activations); the qparams are constants for autograd, as in torchao's QAT."""
    scale, zero_point, global_scale = choose_qparams(x.detach(), spec)
    return fake_quantize(x, scale, zero_point, spec, dtype_name(x.dtype), global_scale)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
