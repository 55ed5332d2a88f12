"""torchao's affine quant primitives, called the way its own workflows call them."""

from __future__ import annotations

import torch
from torchao.quantization.quant_primitives import (
    MappingType,
    ZeroPointDomain,
    _choose_qparams_affine_tinygemm,
    _dequantize_affine_no_zero_point,
    _dequantize_affine_tinygemm,
    _fake_quantize_affine,
    _quantize_affine_no_zero_point,
    _quantize_affine_tinygemm,
    choose_qparams_affine,
    dequantize_affine,
    quantize_affine,
)

MAPPINGS = {
    "symmetric": MappingType.SYMMETRIC,
    "symmetric_no_clipping_err": MappingType.SYMMETRIC_NO_CLIPPING_ERR,
    "asymmetric": MappingType.ASYMMETRIC,
}


def affine(x, fmt, mapping, block, domain, eps=None, scale_dtype=None, zero_point_dtype=None):
    """(scale, zero_point, codes, dequantized, fake_quantized) from torchao."""
    _, target, qmin, qmax = fmt
    if domain == "float":
        s, z = _choose_qparams_affine_tinygemm(
            x, MappingType.ASYMMETRIC, block, target, qmin, qmax, eps, scale_dtype, zero_point_dtype
        )
        q = _quantize_affine_tinygemm(x, block, s, z, target, qmin, qmax)
        dq = _dequantize_affine_tinygemm(q, block, s, z, target, qmin, qmax, output_dtype=x.dtype)
        fq = _fake_quantize_affine(
            x, block, s, z, torch.int32, qmin, qmax, zero_point_domain=ZeroPointDomain.FLOAT
        )
        return s, z, q, dq, fq
    s, z = choose_qparams_affine(
        x,
        MAPPINGS[mapping],
        block,
        target,
        qmin,
        qmax,
        eps=eps,
        scale_dtype=scale_dtype,
        zero_point_dtype=zero_point_dtype or torch.int32,
    )
    if domain == "none":
        q = _quantize_affine_no_zero_point(x, block, s, None, target, qmin, qmax)
        dq = _dequantize_affine_no_zero_point(
            q, block, s, None, target, qmin, qmax, output_dtype=x.dtype
        )
        fq = _fake_quantize_affine(
            x, block, s, None, torch.int32, qmin, qmax, zero_point_domain=ZeroPointDomain.NONE
        )
        return s, None, q, dq, fq
    q = quantize_affine(x, block, s, z, target, qmin, qmax)
    dq = dequantize_affine(q, block, s, z, target, qmin, qmax, output_dtype=x.dtype)
    fq = _fake_quantize_affine(x, block, s, z, torch.int32, qmin, qmax)
    return s, z, q, dq, fq
