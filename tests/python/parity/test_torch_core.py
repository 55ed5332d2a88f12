"""Parity with PyTorch core: torch.fake_quantize_per_tensor/per_channel_affine
(forward and STE gradient), the learnable (LSQ) variants, and
torch.quantize_per_tensor / quantize_per_channel + dequantize."""

from __future__ import annotations

import pytest
import quantkit as qk
import torch
from hypothesis import given
from hypothesis import strategies as st

from .cases import FLOAT_DTYPES, random_tensor

RANGES = [(-128, 127), (0, 255), (-8, 7), (0, 15), (-127, 127)]


def with_specials(x):
    x = x.clone()
    x.view(-1)[:3] = torch.tensor([float("nan"), float("inf"), float("-inf")])
    return x


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("qrange", RANGES, ids=str)
def test_per_tensor_forward_and_ste(dtype, qrange):
    qmin, qmax = qrange
    for seed in range(4):
        x = with_specials(random_tensor((16, 33), dtype, seed, 3.0)).requires_grad_(True)
        scale = [0.05, 0.1, 1.0 / 3.0, 0.00214854861][seed]
        zp = (qmin + qmax) // 2 - seed
        y = torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
        assert torch.equal(qk.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax), y)
        grad = random_tensor(x.shape, dtype, seed + 100)
        y.backward(grad)
        mask = qk.fake_quantize_per_tensor_mask(x, scale, zp, qmin, qmax)
        assert torch.equal(x.grad, grad * mask.bool())
        # Tensor-qparams overload (what the FakeQuantize module calls).
        y2 = torch.fake_quantize_per_tensor_affine(
            x.detach(), torch.tensor(scale), torch.tensor(zp, dtype=torch.int32), qmin, qmax
        )
        assert torch.equal(qk.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax), y2)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_per_channel_integer_zero_point(dtype, axis):
    x = random_tensor((12, 20), dtype, 3, 2.0).requires_grad_(True)
    channels = x.shape[axis]
    scale = torch.rand(channels, generator=torch.Generator().manual_seed(1)) * 0.1 + 0.01
    zp = torch.randint(
        -4, 4, (channels,), dtype=torch.int32, generator=torch.Generator().manual_seed(2)
    )
    y = torch.fake_quantize_per_channel_affine(x, scale, zp, axis % 2, -128, 127)
    assert torch.equal(qk.fake_quantize_per_channel_affine(x, scale, zp, axis, -128, 127), y)
    grad = torch.randn(x.shape).to(dtype)
    y.backward(grad)
    mask = qk.fake_quantize_per_channel_mask(x, scale, zp, axis, -128, 127)
    assert torch.equal(x.grad, grad * mask.bool())


def test_per_channel_float_zero_point():
    # float_qparams: zero point added before rounding, not rounded itself.
    x = random_tensor((10, 32), torch.float32, 4, 2.0)
    scale = torch.rand(32) * 0.05 + 0.01
    zp = torch.rand(32) * 6 - 1
    y = torch.fake_quantize_per_channel_affine(x, scale, zp, 1, 0, 255)
    assert torch.equal(qk.fake_quantize_per_channel_affine(x, scale, zp, 1, 0, 255), y)


def test_convention_torch_core_through_qparams():
    x = random_tensor((8, 16), torch.float32, 9, 1.5)
    spec = qk.QuantSpec(dtype="uint8", mapping="asymmetric", granularity=qk.per_axis(0))
    qp = qk.choose_qparams(x, spec)
    y = torch.fake_quantize_per_channel_affine(
        x, qp.scale.reshape(-1), qp.zero_point.reshape(-1), 0, 0, 255
    )
    assert torch.equal(qk.fake_quantize(x, qp, convention="torch_core"), y)


def learnable_reference(x, scale, zp, qmin, qmax, axis, grad, grad_factor):
    x = x.clone().requires_grad_(True)
    scale = scale.clone().requires_grad_(True)
    zp = zp.clone().requires_grad_(True)
    if axis is None:
        y = torch._fake_quantize_learnable_per_tensor_affine(x, scale, zp, qmin, qmax, grad_factor)
    else:
        y = torch._fake_quantize_learnable_per_channel_affine(
            x, scale, zp, axis, qmin, qmax, grad_factor
        )
    y.backward(grad)
    return y.detach(), x.grad, scale.grad, zp.grad


def test_learnable_per_element_terms_are_exact():
    # One element per channel: no summation, so every gradient term must match bit for bit.
    # (Shape (257, 1): PyTorch's per-channel backward fails on 1-D inputs.)
    x = random_tensor((257, 1), torch.float32, 1, 4.0)
    scale = torch.rand(257) * 0.1 + 0.005
    zp = torch.rand(257) * 20 - 10
    grad = torch.randn(257, 1)
    for qmin, qmax in [(-8, 7), (0, 15), (-128, 127)]:
        y, dx, ds, dz = learnable_reference(x, scale, zp, qmin, qmax, 0, grad, 0.7)
        assert torch.equal(
            qk.fake_quantize_learnable_per_channel_affine(x, scale, zp, 0, qmin, qmax), y
        )
        ours = qk.fake_quantize_learnable_backward(
            grad, x, scale, zp, qmin, qmax, axis=0, grad_factor=0.7
        )
        assert torch.equal(ours[0], dx)
        assert torch.equal(ours[1], ds)
        assert torch.equal(ours[2], dz)


def summation_bound(terms, count):
    """|fl(sum) - exact| <= (n - 1) * 2^-24 * sum|terms| for any float32 order; quantkit
    sums exactly in double, so twice that bounds the difference to PyTorch's order."""
    return 2 * count * 2.0**-24 * terms.abs().sum(dim=0)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("zero_point", [2.5, -0.7, 3.2])
def test_learnable_sums_within_float32_bound(per_channel, zero_point):
    # Summed gradients: PyTorch adds float32 terms in its cascade order; quantkit adds the
    # same terms in double. Not bit-exact by design (docs/numerics.md): bounded instead.
    qmin, qmax = -8, 7
    x = random_tensor((64, 8), torch.float32, 2, 0.5)
    grad = torch.randn(64, 8)
    axis = 1 if per_channel else None
    channels = 8 if per_channel else 1
    scale = torch.full((channels,), 0.1)
    zp = torch.full((channels,), zero_point)
    y, dx, ds, dz = learnable_reference(x, scale, zp, qmin, qmax, axis, grad, 1.0)
    if per_channel:
        assert torch.equal(
            qk.fake_quantize_learnable_per_channel_affine(x, scale, zp, 1, qmin, qmax), y
        )
    else:
        assert torch.equal(
            qk.fake_quantize_learnable_per_tensor_affine(x, scale, zp, qmin, qmax), y
        )
    ours = qk.fake_quantize_learnable_backward(grad, x, scale, zp, qmin, qmax, axis=axis)
    assert torch.equal(ours[0], dx)
    # Per-element terms, from the exact per-element check above (one element per channel).
    n = x.numel() if axis is None else x.shape[0]
    flat_x = x.reshape(-1) if axis is None else x
    terms_s = torch.stack(
        [
            qk.fake_quantize_learnable_backward(
                grad.reshape(-1)[i : i + 1] if axis is None else grad[i : i + 1].T,
                flat_x[i : i + 1] if axis is None else x[i : i + 1].T,
                scale,
                zp,
                qmin,
                qmax,
                axis=None if axis is None else 0,
            )[1]
            for i in range(n)
        ]
    )
    assert (ours[1] - ds).abs().le(summation_bound(terms_s, n)).all()
    assert (
        (ours[2] - dz)
        .abs()
        .le(2 * n * 2.0**-24 * (0.1 * grad.abs().sum(dim=0 if axis else None)))
        .all()
    )


@pytest.mark.parametrize(
    "torch_dtype,qmin,qmax", [(torch.quint8, 0, 255), (torch.qint8, -128, 127)]
)
def test_quantize_per_tensor_and_dequantize(torch_dtype, qmin, qmax):
    x = random_tensor((16, 40), torch.float32, 8, 4.0)
    scale, zp = 0.04, (qmin + qmax + 1) // 2 - 3
    q = torch.quantize_per_tensor(x, scale, zp, torch_dtype)
    spec = qk.QuantSpec(dtype="uint8" if qmin == 0 else "int8", mapping="asymmetric")
    qp = qk.QParams(
        scale=torch.tensor([scale]), zero_point=torch.tensor([zp], dtype=torch.int32), spec=spec
    )
    ours = qk.quantize(x, qp)
    assert torch.equal(ours.codes().to(torch.int32), q.int_repr().to(torch.int32))
    assert torch.equal(qk.dequantize(ours), q.dequantize())
    assert torch.equal(qk.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax), q.dequantize())


def test_quantize_per_channel_and_dequantize():
    x = random_tensor((6, 40), torch.float32, 12, 4.0)
    # float32-representable scales: torch keeps per-channel scales in float64.
    scale = (torch.rand(6) * 0.05 + 0.01).double()
    zp = torch.randint(100, 150, (6,))
    q = torch.quantize_per_channel(x, scale, zp, 0, torch.quint8)
    spec = qk.QuantSpec(dtype="uint8", mapping="asymmetric", granularity=qk.per_axis(0))
    qp = qk.QParams(scale=scale.float(), zero_point=zp.to(torch.int32), spec=spec)
    ours = qk.quantize(x, qp)
    assert torch.equal(ours.codes().to(torch.int32), q.int_repr().to(torch.int32))
    assert torch.equal(qk.dequantize(ours), q.dequantize())


@given(
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from(FLOAT_DTYPES),
    qrange=st.sampled_from(RANGES),
    log_scale=st.floats(-4, 1),
)
def test_per_tensor_hypothesis(seed, dtype, qrange, log_scale):
    qmin, qmax = qrange
    x = random_tensor((4, 37), dtype, seed, 10.0 ** (log_scale + 1))
    scale = float(torch.tensor(10.0**log_scale, dtype=torch.float32))
    zp = (qmin + qmax) // 2
    y = torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
    assert torch.equal(qk.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax), y)
