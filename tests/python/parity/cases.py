"""Inputs and spec plumbing shared by the parity tests.

Block sizes are written out here from torchao's definitions (not taken from
quantkit), so a granularity bug cannot hide on both sides.
"""

from __future__ import annotations

import quantkit as qk
import torch

FLOAT_DTYPES = [torch.float32, torch.bfloat16, torch.float16]

# (quantkit name, torchao target dtype, quant_min, quant_max)
INT_FORMATS = [
    ("int8", torch.int8, -128, 127),
    ("uint8", torch.uint8, 0, 255),
    ("int4", torch.int8, -8, 7),
    ("uint4", torch.uint8, 0, 15),
    ("int2", torch.int8, -2, 1),
    ("int5", torch.int8, -16, 15),
    ("uint3", torch.uint8, 0, 7),
]


def block_size(granularity: tuple, shape: tuple[int, ...]) -> tuple[int, ...]:
    kind = granularity[0]
    if kind == "per_tensor":
        return tuple(shape)
    if kind == "per_axis":
        axis = granularity[1] % len(shape)
        return tuple(1 if d == axis else s for d, s in enumerate(shape))
    if kind == "per_group":
        return (1,) * (len(shape) - 1) + (granularity[1],)
    if kind == "per_token":
        return (1,) * (len(shape) - 1) + (shape[-1],)
    raise ValueError(kind)


def qk_granularity(granularity: tuple) -> qk.Granularity:
    kind = granularity[0]
    if kind == "per_tensor":
        return qk.per_tensor()
    if kind == "per_axis":
        return qk.per_axis(granularity[1])
    if kind == "per_group":
        return qk.per_group(granularity[1])
    return qk.per_token()


def random_tensor(shape, dtype, seed: int, magnitude: float = 1.0, offset: float = 0.0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator) * magnitude + offset
    return x.to(dtype)


def adversarial_tensors(dtype):
    """Named inputs that break careless implementations."""
    ties = torch.tensor([127.5, -127.5, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 3.5] * 4)
    cases = {
        "exact_ties": ties,  # int8 symmetric scale is exactly 1.0: every value is a .5 tie
        "range_ends": torch.tensor([-3.0, 3.0, -3.0, 3.0] * 8),
        "all_positive": torch.linspace(1.0, 3.55, 32),  # zero-excluding range (seed 000)
        "all_negative": -torch.linspace(0.5, 5.0, 32),
        "constant": torch.full((32,), 2.0),
        "all_zero": torch.zeros(32),
        "signed_zeros": torch.tensor([0.0, -0.0, 1.0, -1.0] * 8),
        "huge": torch.tensor([1e30, -3e29, 7e29, 1e28] * 8),
        "tiny": torch.tensor([1e-30, -3e-31, 7e-31, 1e-32] * 8),
        "subnormal": torch.tensor([1e-40, -3e-41, 7e-42, 1e-44] * 8),
        "outlier": torch.cat([torch.full((31,), 0.01), torch.tensor([50.0])]),
    }
    out = {}
    for name, x in cases.items():
        y = x.to(dtype)
        if not torch.isfinite(y).all():
            continue  # e.g. 1e30 overflows float16
        out[name] = y.reshape(4, -1)
    return out
