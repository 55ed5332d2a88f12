"""quantkit: neural-network quantization with torch/torchao-exact numerics.

Arrays in are NumPy arrays or torch tensors (float32, float16, bfloat16), read
through DLPack without copies; results come back as the same kind of array.
Errors raise ``ValueError`` (bad values, shapes, specs) or ``TypeError`` (bad
argument types) with the C++ library's message.
"""

from __future__ import annotations

from typing import Any

from . import _core
from ._arrays import NUMPY, as_core_input, as_core_output, dtype_name, framework_of, to_framework
from ._core import Granularity, QuantSpec, num_threads, set_num_threads
from .observers import (
    FixedQParamsObserver,
    FixedRangeObserver,
    HistogramObserver,
    LatestMinMaxObserver,
    MeanAbsObserver,
    MinMaxObserver,
    MovingAverageObserver,
    Observer,
)

__all__ = [
    "FixedQParamsObserver",
    "FixedRangeObserver",
    "Granularity",
    "HistogramObserver",
    "LatestMinMaxObserver",
    "MeanAbsObserver",
    "MinMaxObserver",
    "MovingAverageObserver",
    "Observer",
    "QParams",
    "QuantSpec",
    "QuantizedTensor",
    "choose_qparams",
    "choose_qparams_from_min_max",
    "dequantize",
    "error_report",
    "fake_quantize",
    "fake_quantize_backward",
    "fake_quantize_learnable_backward",
    "fake_quantize_learnable_per_channel_affine",
    "fake_quantize_learnable_per_tensor_affine",
    "fake_quantize_per_channel_affine",
    "fake_quantize_per_channel_mask",
    "fake_quantize_per_tensor_affine",
    "fake_quantize_per_tensor_mask",
    "num_threads",
    "pack_codes",
    "per_axis",
    "per_block",
    "per_group",
    "per_tensor",
    "per_token",
    "quantize",
    "set_num_threads",
    "stretched_lut",
    "unpack_codes",
]

per_tensor = Granularity.per_tensor
per_axis = Granularity.per_axis
per_group = Granularity.per_group
per_block = Granularity.per_block
per_token = Granularity.per_token


class QParams:
    """Scale / zero point (and minval) of a spec, as arrays of the caller's kind.

    ``QParams(scale=s, zero_point=zp, spec=spec)`` builds validated user-given
    qparams (scale finite and > 0, integer zero points inside the range).
    Two-level specs (``global_scale=True``, NVFP4) also take ``global_scale``:
    the float32 per-tensor scale g, as torchao's ``per_tensor_scale``.
    """

    def __init__(
        self,
        scale: Any,
        zero_point: Any = None,
        spec: QuantSpec | None = None,
        compute_dtype: Any = "float32",
        global_scale: Any = None,
    ) -> None:
        spec = spec if spec is not None else QuantSpec()
        framework = framework_of(scale)
        zp = None if zero_point is None else as_core_input(zero_point)
        g = None if global_scale is None else as_core_input(global_scale)
        core = _core.QParams.make(spec, as_core_input(scale), zp, dtype_name(compute_dtype), g)
        self._init(core, framework)

    def _init(self, core: _core.QParams, framework: str) -> None:
        self._core = core
        self._framework = framework

    @classmethod
    def _wrap(cls, core: _core.QParams, framework: str) -> QParams:
        out = cls.__new__(cls)
        out._init(core, framework)
        return out

    @property
    def spec(self) -> QuantSpec:
        return self._core.spec

    @property
    def scale(self) -> Any:
        return to_framework(self._core.scale, self._framework)

    @property
    def zero_point(self) -> Any:
        return to_framework(self._core.zero_point, self._framework)

    @property
    def minval(self) -> Any:
        """The minval form ``x = (q - quant_min) * scale + minval`` (None where undefined)."""
        return to_framework(self._core.minval, self._framework)

    @property
    def global_scale(self) -> Any:
        """Two-level specs: the per-tensor scale g (a 0-d float32 array); None otherwise.
        The effective scale of a block is ``scale * global_scale``."""
        return to_framework(self._core.global_scale, self._framework)

    @property
    def compute_dtype(self) -> str:
        return self._core.compute_dtype

    def __repr__(self) -> str:
        g = "" if self._core.global_scale is None else f", global_scale={self.global_scale!r}"
        return (
            f"QParams(spec={self.spec!r}, scale={self.scale!r}, zero_point={self.zero_point!r}{g})"
        )


class QuantizedTensor:
    """Codes in their narrowest storage (sub-byte formats packed), qparams and shape."""

    def __init__(self, core: _core.QuantizedTensor, framework: str = NUMPY) -> None:
        self._core = core
        self._framework = framework

    @classmethod
    def from_packed(cls, shape: Any, packed: Any, qparams: QParams) -> QuantizedTensor:
        core = _core.QuantizedTensor.from_packed(list(shape), as_core_input(packed), qparams._core)
        return cls(core, qparams._framework)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._core.shape)

    @property
    def qparams(self) -> QParams:
        return QParams._wrap(self._core.qparams, self._framework)

    @property
    def scale(self) -> Any:
        return self.qparams.scale

    @property
    def zero_point(self) -> Any:
        return self.qparams.zero_point

    def codes(self) -> Any:
        """One code per element: int8 for signed integer formats, uint8 otherwise."""
        return to_framework(self._core.codes(), self._framework)

    int_repr = codes
    unpack = codes

    def pack(self) -> Any:
        """The packed bytes (little-endian bit stream, low bits first)."""
        return to_framework(self._core.packed(), self._framework)

    def dequantize(self, dtype: Any = None, out: Any = None) -> Any:
        return dequantize(self, dtype, out)

    def __repr__(self) -> str:
        return f"QuantizedTensor(shape={self.shape}, spec={self._core.qparams.spec!r})"


def choose_qparams(x: Any, spec: QuantSpec, importance: Any = None) -> QParams:
    """Scale and zero point per block of ``x`` (torchao ``choose_qparams_affine`` numerics).

    ``importance``: for specs with ``scale_search="mse"``, one weight per column of ``x``
    (its last dimension; e.g. ``quantkit.torch.collect_importance``'s mean squared input)
    that multiplies each element's squared error in the search."""
    if importance is None:
        core = _core.choose_qparams(as_core_input(x), spec)
    else:
        core = _core.choose_qparams_weighted(as_core_input(x), spec, as_core_input(importance))
    return QParams._wrap(core, framework_of(x))


def choose_qparams_from_min_max(min_val: Any, max_val: Any, spec: QuantSpec) -> QParams:
    """From observed per-block ranges (torchao ``choose_qparams_affine_with_min_max``)."""
    core = _core.choose_qparams_from_min_max(as_core_input(min_val), as_core_input(max_val), spec)
    return QParams._wrap(core, framework_of(min_val))


def quantize(x: Any, qparams: QParams | QuantSpec) -> QuantizedTensor:
    """Quantize with given qparams, or with a spec: qparams chosen from ``x`` (in the same
    pass over the data where possible; identical to ``quantize(x, choose_qparams(x, spec))``)."""
    spec_or_qparams = qparams if isinstance(qparams, QuantSpec) else qparams._core
    core = _core.quantize(as_core_input(x), spec_or_qparams)
    return QuantizedTensor(core, framework_of(x))


def dequantize(q: QuantizedTensor, dtype: Any = None, out: Any = None) -> Any:
    """The float values of ``q`` (float32 unless ``dtype`` says otherwise).

    ``out``: an existing array of q's shape to write into (its dtype is the
    output dtype); it is returned. Nothing is allocated on the SIMD path."""
    if out is None:
        return to_framework(_core.dequantize(q._core, dtype_name(dtype or "float32")), q._framework)
    target = as_core_output(out)
    if dtype is not None and dtype_name(dtype) != dtype_name(out.dtype):
        raise ValueError(f"dtype {dtype_name(dtype)} differs from out's dtype {out.dtype}")
    _core.dequantize_into(q._core, target)
    return out


def fake_quantize(x: Any, qparams: QParams, convention: str = "torchao", out: Any = None) -> Any:
    """``dequantize(quantize(x))`` bit for bit; ``convention="torch_core"`` follows
    ``torch.fake_quantize_per_tensor/per_channel_affine`` instead of torchao.

    ``out``: an existing array of x's shape and dtype to write into (``out=x``
    works in place); it is returned. Nothing is allocated on the SIMD path."""
    if out is None:
        result = _core.fake_quantize(as_core_input(x), qparams._core, convention)
        return to_framework(result, framework_of(x))
    if convention != "torchao":
        raise ValueError(f"out= is available for convention='torchao', not {convention!r}")
    _core.fake_quantize_into(as_core_input(x), qparams._core, as_core_output(out))
    return out


def fake_quantize_backward(x: Any, grad_output: Any, qparams: QParams) -> Any:
    """Straight-through estimator: grad where the unclamped code is in range, else 0."""
    out = _core.fake_quantize_backward(as_core_input(x), as_core_input(grad_output), qparams._core)
    return to_framework(out, framework_of(grad_output))


def _same_kind(fn):
    def wrapper(x, *args, **kwargs):
        args = [as_core_input(a) if hasattr(a, "shape") else a for a in args]
        return to_framework(fn(as_core_input(x), *args, **kwargs), framework_of(x))

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


fake_quantize_per_tensor_affine = _same_kind(_core.fake_quantize_per_tensor_affine)
fake_quantize_per_tensor_mask = _same_kind(_core.fake_quantize_per_tensor_mask)
fake_quantize_per_channel_affine = _same_kind(_core.fake_quantize_per_channel_affine)
fake_quantize_per_channel_mask = _same_kind(_core.fake_quantize_per_channel_mask)
fake_quantize_learnable_per_tensor_affine = _same_kind(
    _core.fake_quantize_learnable_per_tensor_affine
)
fake_quantize_learnable_per_channel_affine = _same_kind(
    _core.fake_quantize_learnable_per_channel_affine
)


def fake_quantize_learnable_backward(
    grad_output: Any,
    x: Any,
    scale: Any,
    zero_point: Any,
    quant_min: int,
    quant_max: int,
    axis: int | None = None,
    grad_factor: float = 1.0,
) -> tuple[Any, Any, Any]:
    """LSQ gradients (dx, dscale, dzero_point) of ``torch._fake_quantize_learnable_*``;
    ``axis=None`` is per-tensor."""
    grads = _core.fake_quantize_learnable_backward(
        as_core_input(grad_output),
        as_core_input(x),
        as_core_input(scale),
        as_core_input(zero_point),
        0 if axis is None else axis,
        quant_min,
        quant_max,
        grad_factor,
        axis is not None,
    )
    framework = framework_of(x)
    return tuple(to_framework(g, framework) for g in grads)


def stretched_lut(q: QuantizedTensor) -> tuple[Any, Any, Any, Any]:
    """(lut, half_scale, indices, dequantized): the integer LUT form of a stretched tensor."""
    return tuple(to_framework(a, q._framework) for a in _core.stretched_lut(q._core))


def pack_codes(codes: Any, bits: int) -> Any:
    return to_framework(_core.pack_codes([int(c) for c in codes], bits), NUMPY)


def unpack_codes(packed: Any, count: int, bits: int, is_signed: bool) -> list[int]:
    return _core.unpack_codes(as_core_input(packed), count, bits, is_signed)


def error_report(reference: Any, test: Any) -> dict[str, float]:
    """mean |diff|, max |diff|, SQNR (dB), PEIR and cosine similarity, computed in double."""
    return _core.error_report(as_core_input(reference), as_core_input(test))
