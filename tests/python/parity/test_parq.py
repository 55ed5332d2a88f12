"""Bit-exact parity with torchao's PARQ stretched quantizer (prototype.parq):
choose_qparams_stretched_affine, quantize_stretched_affine + dequantize_affine,
the reference UnifQuantizer, and the integer LUT form."""

from __future__ import annotations

import pytest
import quantkit as qk
import torch
from hypothesis import given
from hypothesis import strategies as st
from torchao.prototype.parq.quant import UnifQuantizer
from torchao.prototype.parq.quant.quant_api import (
    choose_qparams_stretched_affine,
    quantize_stretched_affine,
)
from torchao.quantization.quant_primitives import MappingType, dequantize_affine

from .cases import FLOAT_DTYPES, random_tensor


def torchao_stretched(x, bits, group):
    level_max = 2 ** (bits - 1) - 0.5
    block = (1, group)
    s, z = choose_qparams_stretched_affine(
        x, MappingType.ASYMMETRIC, block, torch.int8, bits, -level_max, level_max
    )
    q = quantize_stretched_affine(x, block, s, z, torch.int8, -level_max, level_max)
    dq = dequantize_affine(q, block, s, z, torch.int8, -level_max, level_max, output_dtype=x.dtype)
    return s, z, q, dq


def check(x, bits, group):
    s, z, q, dq = torchao_stretched(x, bits, group)
    spec = qk.QuantSpec(dtype=f"int{bits}", mapping="stretched", granularity=qk.per_group(group))
    qp = qk.choose_qparams(x, spec)
    ours = qk.quantize(x, qp)
    assert torch.equal(qp.scale.reshape(-1), s.reshape(-1))
    assert torch.equal(qp.zero_point.reshape(-1), z.reshape(-1))
    assert torch.equal(ours.codes(), q)
    assert torch.equal(qk.dequantize(ours, x.dtype), dq)
    assert torch.equal(qk.fake_quantize(x, qp), dq)
    # The integer LUT form (2k + 1 with scale / 2) dequantizes to the same bits.
    lut, half_scale, indices, lut_dequantized = qk.stretched_lut(ours)
    assert lut.tolist() == [2 * k + 1 for k in range(-(2 ** (bits - 1)), 2 ** (bits - 1))]
    assert torch.equal(indices.to(torch.int16) - 2 ** (bits - 1), q.to(torch.int16))
    assert torch.equal(half_scale.reshape(-1), s.reshape(-1) / 2)
    assert torch.equal(lut_dequantized, qk.dequantize(ours, torch.float32))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
@pytest.mark.parametrize("group", [16, 32, 40, 64, 256])
def test_stretched_matches_torchao(dtype, bits, group):
    for seed, magnitude in enumerate([0.05, 1.0, 1e-3]):
        check(random_tensor((6, 1280), dtype, seed, magnitude), bits, group)


@pytest.mark.parametrize("bits", [2, 3])
@pytest.mark.parametrize("group", [32, 256])
def test_stretched_matches_reference_unif_quantizer(bits, group):
    # torchao's own equivalence test: UnifQuantizer (PARQ's reference) gives the same levels.
    p = random_tensor((4, 512), torch.float32, 5, 0.02)
    q_ref, _ = UnifQuantizer().quantize(p.view(-1, group).clone(), bits, dim=-1)
    spec = qk.QuantSpec(dtype=f"int{bits}", mapping="stretched", granularity=qk.per_group(group))
    ours = qk.fake_quantize(p, qk.choose_qparams(p, spec))
    assert torch.equal(ours.view(-1, group), q_ref)


@given(
    seed=st.integers(0, 2**31 - 1),
    bits=st.integers(1, 4),
    group=st.sampled_from([8, 16, 24, 48, 128]),
    dtype=st.sampled_from(FLOAT_DTYPES),
    log_magnitude=st.floats(-4, 3),
)
def test_stretched_hypothesis(seed, bits, group, dtype, log_magnitude):
    check(random_tensor((3, group * 4), dtype, seed, 10.0**log_magnitude), bits, group)
