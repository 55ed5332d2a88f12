"""Writes golden.json: inputs, qparams and outputs computed by torch / torchao.

The C++ suite (tests/cpp/test_golden.cpp) checks quantkit against this file, so
parity with torch and torchao is verified even where Python is absent. Run it
with the pinned versions (torch 2.13.0 CPU, torchao 0.18) and commit the result:

    python tests/golden/make_golden.py
"""

from __future__ import annotations

import json
import pathlib
import warnings

import torch

warnings.filterwarnings("ignore")

import torchao  # noqa: E402
from torchao.prototype.mx_formats.config import ScaleCalculationMode  # noqa: E402
from torchao.prototype.mx_formats.mx_tensor import MXTensor, to_mx  # noqa: E402
from torchao.prototype.mx_formats.nvfp4_tensor import nvfp4_quantize  # noqa: E402
from torchao.prototype.parq.quant.quant_api import (  # noqa: E402
    choose_qparams_stretched_affine,
    quantize_stretched_affine,
)
from torchao.quantization.quant_primitives import (  # noqa: E402
    MappingType,
    ZeroPointDomain,
    _choose_qparams_affine_tinygemm,
    _choose_scale_float8,
    _dequantize_affine_float8,
    _fake_quantize_affine,
    _quantize_affine_float8,
    _quantize_affine_tinygemm,
    choose_qparams_affine,
    dequantize_affine,
    quantize_affine,
)

OUT = pathlib.Path(__file__).with_name("golden.json")
BITS_VIEW = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}
MASK = {torch.float32: 0xFFFFFFFF, torch.bfloat16: 0xFFFF, torch.float16: 0xFFFF}
FORMATS = {
    "int8": (torch.int8, -128, 127),
    "uint8": (torch.uint8, 0, 255),
    "int4": (torch.int8, -8, 7),
    "uint4": (torch.uint8, 0, 15),
    "int2": (torch.int8, -2, 1),
}
MAPPINGS = {
    "symmetric": MappingType.SYMMETRIC,
    "asymmetric": MappingType.ASYMMETRIC,
    "symmetric_no_clipping_err": MappingType.SYMMETRIC_NO_CLIPPING_ERR,
}


def tensor(t: torch.Tensor) -> dict:
    t = t.contiguous()
    bits = t.view(BITS_VIEW[t.dtype]).reshape(-1).tolist()
    return {
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "bits": [b & MASK[t.dtype] for b in bits],
    }


def data(shape, dtype, seed, magnitude=1.0, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * magnitude + offset
    x.view(-1)[0] = x.view(-1)[1] + 0.0  # a repeated value
    return x.to(dtype)


def block_of(granularity, shape):
    if granularity[0] == "per_tensor":
        return tuple(shape)
    if granularity[0] == "per_axis":
        return tuple(1 if d == granularity[1] else s for d, s in enumerate(shape))
    return (1,) * (len(shape) - 1) + (
        (granularity[1],) if granularity[0] == "per_group" else (shape[-1],)
    )


def affine_case(x, fmt, mapping, granularity, domain):
    target, qmin, qmax = FORMATS[fmt]
    block = block_of(granularity, x.shape)
    if domain == "float":
        s, z = _choose_qparams_affine_tinygemm(x, MappingType.ASYMMETRIC, block, target, qmin, qmax)
        q = _quantize_affine_tinygemm(x, block, s, z, target, qmin, qmax)
        fq = _fake_quantize_affine(
            x, block, s, z, torch.int32, qmin, qmax, zero_point_domain=ZeroPointDomain.FLOAT
        )
    else:
        s, z = choose_qparams_affine(x, MAPPINGS[mapping], block, target, qmin, qmax)
        q = quantize_affine(x, block, s, z, target, qmin, qmax)
        fq = _fake_quantize_affine(x, block, s, z, torch.int32, qmin, qmax)
        assert torch.equal(
            fq, dequantize_affine(q, block, s, z, target, qmin, qmax, output_dtype=x.dtype)
        )
    return {
        "spec": {
            "dtype": fmt,
            "mapping": mapping,
            "granularity": list(granularity),
            "zero_point_domain": domain,
        },
        "input": tensor(x),
        "scale": tensor(s.reshape(-1)),
        "zero_point": z.reshape(-1).double().tolist(),
        "codes": q.reshape(-1).tolist(),
        "fake_quantized": tensor(fq),
    }


def float8_case(x, name, granularity):
    fp8 = {"fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}[name]
    block = block_of(granularity, x.shape)
    s = _choose_scale_float8(x, block, fp8)
    q = _quantize_affine_float8(x, s, fp8)
    return {
        "spec": {"dtype": name, "mapping": "symmetric", "granularity": list(granularity)},
        "input": tensor(x),
        "scale": tensor(s.reshape(-1)),
        "zero_point": None,
        "codes": q.view(torch.uint8).reshape(-1).tolist(),
        "fake_quantized": tensor(_dequantize_affine_float8(q, s, x.dtype)),
    }


def unpack_fp4(packed: torch.Tensor) -> list[int]:
    flat = packed.view(torch.uint8).reshape(-1)
    return torch.stack([flat & 0xF, flat >> 4], dim=1).reshape(-1).tolist()


def mx_case(x, name, mode):
    element = {"fp4_e2m1": torch.float4_e2m1fn_x2, "fp8_e4m3fn": torch.float8_e4m3fn}[name]
    scaling = {"floor": ScaleCalculationMode.FLOOR, "rceil": ScaleCalculationMode.RCEIL}[mode]
    scale_bytes, q = to_mx(x, element, 32, scaling)
    scale = torch.exp2(scale_bytes.view(torch.uint8).reshape(-1).float() - 127)
    codes = unpack_fp4(q) if name == "fp4_e2m1" else q.view(torch.uint8).reshape(-1).tolist()
    fq = MXTensor.to_mx(x, element, 32, scaling_mode=scaling).dequantize(x.dtype)
    return {
        "spec": {
            "dtype": name,
            "mapping": "symmetric",
            "granularity": ["per_group", 32],
            "scale_dtype": "e8m0",
            "e8m0_rounding": mode,
        },
        "input": tensor(x),
        "scale": tensor(scale),
        "zero_point": None,
        "codes": codes,
        "fake_quantized": tensor(fq),
    }


def nvfp4_case(x):
    block_scale, packed = nvfp4_quantize(x, 16)
    return {
        "spec": {
            "dtype": "fp4_e2m1",
            "mapping": "symmetric",
            "granularity": ["per_group", 16],
            "scale_dtype": "fp8_e4m3",
        },
        "input": tensor(x),
        "scale": tensor(block_scale.float().reshape(-1)),
        "zero_point": None,
        "codes": unpack_fp4(packed),
        "fake_quantized": None,
    }


def stretched_case(x, bits, group):
    level_max = 2 ** (bits - 1) - 0.5
    block = (1, group)
    s, z = choose_qparams_stretched_affine(
        x, MappingType.ASYMMETRIC, block, torch.int8, bits, -level_max, level_max
    )
    q = quantize_stretched_affine(x, block, s, z, torch.int8, -level_max, level_max)
    fq = dequantize_affine(q, block, s, z, torch.int8, -level_max, level_max, output_dtype=x.dtype)
    return {
        "spec": {
            "dtype": f"int{bits}",
            "mapping": "stretched",
            "granularity": ["per_group", group],
        },
        "input": tensor(x),
        "scale": tensor(s.reshape(-1)),
        "zero_point": z.reshape(-1).double().tolist(),
        "codes": q.reshape(-1).tolist(),
        "fake_quantized": tensor(fq),
    }


def torch_core_case(x, scale, zero_point, qmin, qmax):
    x = x.clone()
    x.view(-1)[:3] = torch.tensor([float("nan"), float("inf"), float("-inf")])
    y = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)
    return {
        "op": "torch_core_per_tensor",
        "scale": scale,
        "zero_point": zero_point,
        "quant_min": qmin,
        "quant_max": qmax,
        "input": tensor(x),
        "output": tensor(y),
    }


def main() -> None:
    cases = []
    seed = 0
    for dtype in [torch.float32, torch.bfloat16, torch.float16]:
        for fmt, mapping, granularity, domain in [
            ("int8", "symmetric", ("per_tensor",), "int"),
            ("uint8", "asymmetric", ("per_axis", 0), "int"),
            ("int4", "asymmetric", ("per_group", 32), "int"),
            ("int4", "symmetric_no_clipping_err", ("per_token",), "int"),
            ("uint4", "asymmetric", ("per_group", 16), "float"),
            ("int2", "symmetric", ("per_group", 16), "int"),
        ]:
            seed += 1
            cases.append(
                affine_case(data((4, 64), dtype, seed, 2.0, 0.3), fmt, mapping, granularity, domain)
            )
        seed += 1
        cases.append(
            affine_case(
                data((2, 32), dtype, seed).abs() + 1, "uint8", "asymmetric", ("per_tensor",), "int"
            )
        )  # zero-excluding range
        cases.append(stretched_case(data((4, 64), dtype, seed, 0.05), 2, 32))
        cases.append(torch_core_case(data((4, 16), dtype, seed, 3.0), 0.1, 3, -128, 127))
    for dtype in [torch.float32, torch.bfloat16]:
        seed += 1
        cases.append(float8_case(data((4, 64), dtype, seed, 50.0), "fp8_e4m3fn", ("per_token",)))
        cases.append(float8_case(data((4, 64), dtype, seed, 5e3), "fp8_e5m2", ("per_tensor",)))
        for name, mode in [("fp4_e2m1", "floor"), ("fp4_e2m1", "rceil"), ("fp8_e4m3fn", "floor")]:
            cases.append(mx_case(data((2, 64), dtype, seed, 3.0), name, mode))
        cases.append(nvfp4_case(data((2, 64), dtype, seed, 3.0)))
    document = {
        "generator": "tests/golden/make_golden.py",
        "torch": torch.__version__,
        "torchao": torchao.__version__,
        "cases": cases,
    }
    OUT.write_text(json.dumps(document, separators=(",", ":")) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
