"""How one quantized tensor is written in ONNX: the QuantizeLinear / DequantizeLinear
(QDQ) form of a quantkit spec and its qparams.

ONNX dequantizes as ``(q - zero_point) * scale`` in float32, which is quantkit's
formula for every exportable scheme, so a weight written as codes + DQ equals the
converted weight bit for bit. The code types:

- int schemes: ``int8`` / ``uint8`` / ``int4`` / ``uint4`` / ``int16`` where the
  spec's range is the type's whole range, else the smallest of them that holds it
  (activations then get a ``Clip`` between Q and DQ, so narrowed ranges stay
  narrowed);
- stretched (PARQ) grids ``(q - z) * s`` with half-integer ``z``: codes ``2q``,
  zero point ``2z``, scale ``s / 2`` (the same products, exactly);
- FP8 e4m3fn / e5m2: ONNX's own float8 types;
- FP4 / FP6 (no ONNX runtime kernel for them on CPU; FP6 has no ONNX type): the
  element as an integer multiple ``k`` of the format's smallest step ``u`` with
  scale ``s * u`` (a power-of-two product, exact); ``native_fp4`` writes FP4 as
  ONNX ``float4e2m1`` instead.

Quantizing (activations) is where ONNX and quantkit can differ: ONNX rounds
``x / scale``, quantkit (like torch) rounds ``x * (1 / scale)``; the two quotients
are one float ulp apart for a few inputs, which moves a code by one step when the
quotient lies next to a rounding boundary (see :mod:`quantkit.torch.onnxruntime_parity`'s
parity report).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from ._spec import SpecArgs

_ML_FLOATS = {
    "fp8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "fp8_e5m2": ml_dtypes.float8_e5m2,
    "fp6_e3m2": ml_dtypes.float6_e3m2fn,
    "fp6_e2m3": ml_dtypes.float6_e2m3fn,
    "fp4_e2m1": ml_dtypes.float4_e2m1fn,
}
_ONNX_FLOATS = ("fp8_e4m3fn", "fp8_e5m2")
_INT_TYPES = (  # (numpy type, min, max), smallest first
    (ml_dtypes.int4, -8, 7),
    (ml_dtypes.uint4, 0, 15),
    (np.int8, -128, 127),
    (np.uint8, 0, 255),
    (np.int16, -32768, 32767),
    (np.uint16, 0, 65535),
)


class NotExportable(ValueError):
    """A spec or qparams with no exact QDQ form; the message says why."""


@dataclass
class QDQForm:
    """Arrays and attributes of one tensor's QDQ nodes.

    ``codes`` is set for weights (the initializer DQ reads); ``clip`` is the
    ``(min, max)`` of a narrowed integer range, as code-typed scalars."""

    scale: np.ndarray
    zero_point: np.ndarray
    attributes: dict
    codes: np.ndarray | None = None
    clip: tuple[np.ndarray, np.ndarray] | None = None


def _layout(args: SpecArgs, shape: tuple[int, ...], scale: np.ndarray) -> tuple[dict, tuple]:
    """(ONNX attributes, shape of scale / zero point) for a grid over ``shape``."""
    kind, *rest = args.granularity
    n = len(shape)
    if kind == "per_tensor" or scale.size == 1:
        return {}, ()
    if kind == "per_axis":
        axis = rest[0] % n
        return {"axis": axis}, (shape[axis],)
    if kind == "per_group":
        axis = (rest[1] if len(rest) > 1 else -1) % n
        return {"axis": axis, "block_size": rest[0]}, scale.shape
    if kind == "per_block":
        blocked = [i for i, (b, s) in enumerate(zip(rest[0], shape, strict=True)) if b != 1]
        if len(blocked) == 1:
            axis = blocked[0]
            if rest[0][axis] == shape[axis]:
                raise NotExportable(f"block {rest[0]} spans the whole tensor {shape}")
            return {"axis": axis, "block_size": rest[0][axis]}, scale.shape
        raise NotExportable(
            f"blocks {tuple(rest[0])} are blocked on {len(blocked)} axes; ONNX blocked "
            "quantization blocks one axis"
        )
    raise NotExportable(f"{kind} qparams are chosen per call; QDQ needs constant scales")


def _int_type(lo: float, hi: float):
    for dtype, tmin, tmax in _INT_TYPES:
        if tmin <= lo and hi <= tmax:
            return dtype, (tmin, tmax)
    raise NotExportable(f"codes in [{lo:g}, {hi:g}] fit no ONNX integer type")


def _float_step(dtype: str) -> float:
    """The smallest positive value of a float element format (all its values are
    integer multiples of it)."""
    return float(ml_dtypes.finfo(_ML_FLOATS[dtype]).smallest_subnormal)


def _times_power_of_two(scale: np.ndarray, factor: float) -> np.ndarray:
    scaled = (scale.astype(np.float32) * np.float32(factor)).astype(np.float32)
    back = scaled / np.float32(factor)
    if not np.array_equal(back, scale.astype(np.float32)):
        raise NotExportable(f"scale * {factor:g} underflows float32 for some blocks")
    return scaled


def qdq_form(
    args: SpecArgs,
    lo: float,
    hi: float,
    scale: np.ndarray,
    zero_point: np.ndarray,
    shape: tuple[int, ...],
    codes: np.ndarray | None = None,
    native_fp4: bool = False,
) -> QDQForm:
    """The QDQ form of qparams ``scale`` / ``zero_point`` (quantkit's grid shapes) for a
    tensor of ``shape`` whose codes lie in ``[lo, hi]``; ``codes`` (weights) are the
    quantkit codes, rewritten into the ONNX code type."""
    attributes, grid = _layout(args, shape, scale)
    scale = scale.astype(np.float32).reshape(grid)
    zp = zero_point.astype(np.float64).reshape(grid) if zero_point.size else np.zeros(grid)
    if args.dtype.startswith("fp"):
        return _float_form(args, scale, grid, attributes, codes, native_fp4)
    if args.mapping == "stretched":  # (q - z) s == (2q - 2z) (s / 2), z a half-integer
        if codes is None:
            raise NotExportable("stretched grids are exported for weights only")
        if not np.array_equal(2 * zp, np.round(2 * zp)):
            raise NotExportable("a stretched zero point is not a multiple of 1/2")
        codes, zp, lo, hi = 2 * codes.astype(np.int32), 2 * zp, 2 * lo, 2 * hi
        scale = _times_power_of_two(scale, 0.5)
    if args.zero_point_domain == "float":
        raise NotExportable("float zero points (tinygemm) have no QDQ form")
    dtype, (tmin, tmax) = _int_type(min(lo, zp.min(initial=0)), max(hi, zp.max(initial=0)))
    clip = None
    if (lo, hi) != (tmin, tmax) and codes is None:
        clip = (np.asarray(lo, dtype), np.asarray(hi, dtype))
    return QDQForm(
        scale,
        zp.astype(dtype),
        attributes,
        None if codes is None else codes.astype(np.int32).astype(dtype),
        clip,
    )


def _float_form(args, scale, grid, attributes, codes, native_fp4) -> QDQForm:
    ml = _ML_FLOATS[args.dtype]
    if args.dtype in _ONNX_FLOATS or (native_fp4 and args.dtype == "fp4_e2m1"):
        typed = None if codes is None else codes.astype(np.uint8).view(ml)
        return QDQForm(scale, np.zeros(grid, ml), attributes, typed)
    if codes is None:
        raise NotExportable(f"{args.dtype} has no ONNX QuantizeLinear type")
    step = _float_step(args.dtype)
    values = codes.astype(np.uint8).view(ml).astype(np.float64) / step  # exact integers
    dtype, _ = _int_type(values.min(initial=0), values.max(initial=0))
    return QDQForm(
        _times_power_of_two(scale, step),
        np.zeros(grid, dtype),
        attributes,
        values.astype(dtype),
    )
