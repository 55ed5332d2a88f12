"""Bit-exact parity with torchao's affine primitives (choose_qparams_affine,
_with_min_max, quantize_affine, dequantize_affine, _fake_quantize_affine, and
the tinygemm / no-zero-point variants) for fp32, bf16 and fp16 inputs."""

from __future__ import annotations

import pytest
import quantkit as qk
import torch
from hypothesis import given
from hypothesis import strategies as st
from torchao.quantization.quant_primitives import choose_qparams_affine_with_min_max

from .cases import (
    FLOAT_DTYPES,
    INT_FORMATS,
    adversarial_tensors,
    block_size,
    qk_granularity,
    random_tensor,
)
from .torchao_ref import MAPPINGS, affine

GRANULARITIES = [
    ("per_tensor",),
    ("per_axis", 0),
    ("per_axis", -1),
    ("per_token",),
    ("per_group", 32),
    ("per_group", 64),
    ("per_group", 128),
    ("per_group", 256),
]
SCHEMES = [
    ("symmetric", "int"),
    ("symmetric", "none"),
    ("symmetric_no_clipping_err", "int"),
    ("asymmetric", "int"),
    ("asymmetric", "float"),
]


def quantkit_affine(x, fmt, mapping, granularity, domain, **spec_kwargs):
    spec = qk.QuantSpec(
        dtype=fmt[0],
        mapping=mapping,
        granularity=qk_granularity(granularity),
        zero_point_domain=domain,
        **spec_kwargs,
    )
    qp = qk.choose_qparams(x, spec)
    q = qk.quantize(x, qp)
    return qp, q, qk.dequantize(q, x.dtype), qk.fake_quantize(x, qp)


def assert_same(
    x, fmt, mapping, granularity, domain, eps=None, scale_dtype=None, zero_point_dtype=None
):
    block = block_size(granularity, tuple(x.shape))
    if all(b == 1 for b in block):
        # torchao reduces over an empty dim list as if over all dims and then fails to
        # view the result (docs/numerics.md, Granularity): quantkit gives every element
        # its own qparams instead.
        qp, ours_q, ours_dq, ours_fq = quantkit_affine(x, fmt, mapping, granularity, domain)
        assert qp.scale.numel() == x.numel()
        assert torch.equal(ours_fq, ours_dq)
        return
    s, z, q, dq, fq = affine(x, fmt, mapping, block, domain, eps, scale_dtype, zero_point_dtype)
    if not torch.isfinite(s).all():
        # torchao returns an infinite scale when the range overflows the input dtype;
        # quantkit refuses (docs/numerics.md, rule 4).
        with pytest.raises(ValueError, match="overflows"):
            quantkit_affine(x, fmt, mapping, granularity, domain)
        return
    kwargs = {"eps": eps}
    if scale_dtype is not None:
        kwargs["scale_dtype"] = str(scale_dtype).removeprefix("torch.")
    if zero_point_dtype is not None:
        kwargs["zero_point_dtype"] = str(zero_point_dtype).removeprefix("torch.")
    qp, ours_q, ours_dq, ours_fq = quantkit_affine(x, fmt, mapping, granularity, domain, **kwargs)
    context = f"{fmt[0]} {mapping} {granularity} {domain} {x.dtype}"
    assert qp.scale.dtype == s.dtype, context
    assert torch.equal(qp.scale.reshape(-1), s.reshape(-1)), context
    if z is None:
        assert qp.zero_point is None, context
    else:
        assert qp.zero_point.dtype == z.dtype, context
        assert torch.equal(qp.zero_point.reshape(-1), z.reshape(-1)), context
    assert torch.equal(ours_q.codes().to(q.dtype), q), context
    assert torch.equal(ours_dq, dq), context
    assert torch.equal(ours_fq, fq), context
    assert torch.equal(ours_fq, ours_dq), context


def applicable(fmt, mapping):
    # symmetric_no_clipping_err divides by quant_min, so it needs a signed range
    # (quantkit rejects it for unsigned formats; torchao would divide by zero).
    return not (mapping == "symmetric_no_clipping_err" and fmt[2] >= 0)


def format_schemes(formats):
    return [
        pytest.param(f, s, id=f"{f[0]}-{s[0]}-{s[1]}")
        for f in formats
        for s in SCHEMES
        if applicable(f, s[0])
    ]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("fmt,scheme", format_schemes(INT_FORMATS))
@pytest.mark.parametrize("granularity", GRANULARITIES, ids=lambda g: "".join(map(str, g)))
def test_random_inputs(dtype, fmt, scheme, granularity):
    mapping, domain = scheme
    for seed, (magnitude, offset) in enumerate([(1.0, 0.0), (1e-3, 0.0), (50.0, 20.0), (1.0, 5.0)]):
        x = random_tensor((4, 256), dtype, seed, magnitude, offset)
        assert_same(x, fmt, mapping, granularity, domain)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("fmt,scheme", format_schemes(INT_FORMATS[:4]))
def test_adversarial_inputs(dtype, fmt, scheme):
    mapping, domain = scheme
    for name, x in adversarial_tensors(dtype).items():
        for granularity in [("per_tensor",), ("per_token",)]:
            try:
                assert_same(x, fmt, mapping, granularity, domain)
            except AssertionError as error:
                raise AssertionError(f"input {name}: {error}") from None


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_scale_and_zero_point_dtypes_and_eps(dtype):
    x = random_tensor((4, 128), dtype, 7, 0.01)
    fmt = INT_FORMATS[2]
    for scale_dtype in [torch.float32, torch.bfloat16, torch.float16]:
        assert_same(x, fmt, "asymmetric", ("per_group", 32), "int", scale_dtype=scale_dtype)
        assert_same(
            x,
            fmt,
            "symmetric",
            ("per_group", 32),
            "int",
            scale_dtype=scale_dtype,
            zero_point_dtype=scale_dtype,
        )
    assert_same(
        x,
        INT_FORMATS[3],
        "asymmetric",
        ("per_group", 32),
        "float",
        scale_dtype=torch.float32,
        zero_point_dtype=torch.float32,
    )
    for eps in [torch.finfo(torch.float32).eps, 1e-6, 1e-2]:
        assert_same(x, fmt, "asymmetric", ("per_token",), "int", eps=eps)
        assert_same(x, fmt, "symmetric", ("per_token",), "int", eps=eps)


def test_narrow_quant_range():
    x = random_tensor((4, 64), torch.float32, 3)
    fmt = ("int8", torch.int8, -127, 127)
    block = (4, 64)
    s, z, q, _, fq = affine(x, fmt, "symmetric", block, "int")
    spec = qk.QuantSpec(dtype="int8", quant_min=-127, quant_max=127)
    qp = qk.choose_qparams(x, spec)
    assert torch.equal(qp.scale.reshape(-1), s.reshape(-1))
    assert torch.equal(qk.quantize(x, qp).codes(), q)
    assert torch.equal(qk.fake_quantize(x, qp), fq)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("mapping", list(MAPPINGS))
def test_choose_qparams_with_min_max(dtype, mapping):
    fmt = INT_FORMATS[0]
    x = random_tensor((8, 64), dtype, 11, 2.0, 0.5)
    mn, mx = x.amin(dim=1), x.amax(dim=1)
    s, z = choose_qparams_affine_with_min_max(
        mn, mx, MAPPINGS[mapping], (1, 64), fmt[1], fmt[2], fmt[3], zero_point_dtype=torch.int32
    )
    spec = qk.QuantSpec(dtype="int8", mapping=mapping, granularity=qk.per_axis(0))
    qp = qk.choose_qparams_from_min_max(mn, mx, spec)
    assert torch.equal(qp.scale.reshape(-1), s.reshape(-1))
    assert torch.equal(qp.zero_point.reshape(-1), z.reshape(-1).to(torch.int32))


@given(
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from(FLOAT_DTYPES),
    fmt=st.sampled_from(INT_FORMATS),
    scheme=st.sampled_from(SCHEMES),
    granularity=st.sampled_from(GRANULARITIES[:4] + [("per_group", 16)]),
    log_magnitude=st.floats(-6, 6),
    offset=st.sampled_from([0.0, 1.0, -3.0]),
    rows=st.sampled_from([1, 3, 8]),
    groups=st.sampled_from([1, 2, 5]),
)
def test_hypothesis(seed, dtype, fmt, scheme, granularity, log_magnitude, offset, rows, groups):
    mapping, domain = scheme
    if not applicable(fmt, mapping):
        mapping = "symmetric"
    cols = 16 * groups
    magnitude = min(10.0**log_magnitude, torch.finfo(dtype).max / 64)
    x = random_tensor((rows, cols), dtype, seed, magnitude, offset * magnitude)
    assert_same(x, fmt, mapping, granularity, domain)
