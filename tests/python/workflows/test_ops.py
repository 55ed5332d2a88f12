"""torch.ops.quantkit: the C++ kernels as torch.library ops with gradients and
fake implementations (torch.compile)."""

import pytest
import quantkit as qk
import torch
from quantkit.torch import ops
from quantkit.torch._spec import SpecArgs

SPECS = [
    SpecArgs(dtype="int8", mapping="symmetric", granularity=("per_axis", 0)),
    SpecArgs(dtype="int4", mapping="asymmetric", granularity=("per_group", 32)),
    SpecArgs(dtype="int8", mapping="asymmetric", granularity=("per_token",)),
    SpecArgs(dtype="int2", mapping="stretched", granularity=("per_group", 32)),
    SpecArgs(dtype="fp8_e4m3fn", scale_dtype="float32"),
    SpecArgs(dtype="fp4_e2m1", granularity=("per_group", 32), scale_dtype="e8m0"),
    SpecArgs(dtype="fp4_e2m1", granularity=("per_group", 16), scale_dtype="fp8_e4m3"),
    SpecArgs(
        dtype="fp4_e2m1", granularity=("per_group", 16), scale_dtype="fp8_e4m3fn", global_scale=True
    ),
]
OPCHECKED = [*SPECS[:4], SPECS[-1]]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def _x(dtype, shape=(6, 64)):
    g = torch.Generator().manual_seed(3)
    return (torch.randn(shape, generator=g) * 3).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("args", SPECS, ids=SpecArgs.describe)
def test_dynamic_fake_quantize_is_the_core_op_with_its_ste_gradient(args, dtype):
    x = _x(dtype).requires_grad_()
    qp = qk.choose_qparams(x.detach(), args.spec())
    y = ops.fake_quantize_dynamic(x, args.key())
    assert torch.equal(y, qk.fake_quantize(x.detach(), qp))
    grad = _x(dtype) * 0.5
    y.backward(grad)
    assert torch.equal(x.grad, qk.fake_quantize_backward(x.detach(), grad, qp))


@pytest.mark.parametrize("args", OPCHECKED, ids=SpecArgs.describe)
def test_ops_pass_torch_library_opcheck(args):
    x = _x(torch.float32)
    scale, zp, g = ops.choose_qparams(x, args.key())
    assert g.shape == (() if args.global_scale else (0,))
    torch.library.opcheck(ops.choose_qparams, (x, args.key()))
    fq_args = (x.requires_grad_(), scale, zp, args.key(), "float32", g)
    torch.library.opcheck(ops.fake_quantize, fq_args)
    packed = ops.quantize_packed(x.detach(), scale, zp, args.key(), "float32", g)
    torch.library.opcheck(ops.quantize_packed, (x.detach(), scale, zp, args.key(), "float32", g))
    dq_args = (packed, scale, zp, list(x.shape), args.key(), "float32", torch.float32, g)
    torch.library.opcheck(ops.dequantize_packed, dq_args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_compiled_forward_and_backward_equal_eager(dtype):
    key = SPECS[1].key()

    def f(x):
        return (ops.fake_quantize_dynamic(x, key) * 3).sum(dim=1)

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    x1, x2 = _x(dtype).requires_grad_(), _x(dtype).requires_grad_()
    y1, y2 = f(x1), compiled(x2)
    assert torch.equal(y1, y2)
    y1.sum().backward()
    y2.sum().backward()
    assert torch.equal(x1.grad, x2.grad)


def test_dequantize_packed_inverts_quantize_packed():
    args = SPECS[1]
    x = _x(torch.bfloat16)
    scale, zp, _ = ops.choose_qparams(x, args.key())
    packed = ops.quantize_packed(x, scale, zp, args.key(), "bfloat16")
    assert packed.dtype == torch.uint8 and packed.numel() == x.numel() // 2
    out = ops.dequantize_packed(packed, scale, zp, list(x.shape), args.key(), "bfloat16", x.dtype)
    assert torch.equal(out, ops.fake_quantize(x, scale, zp, args.key(), "bfloat16"))


@pytest.mark.parametrize("axis", [None, 0])
def test_learnable_op_matches_torch_forward_and_gradients(axis):
    """LSQ: forward and the three gradients equal torch's own learnable fake quantize."""
    x = _x(torch.float32, (8, 32))
    channels = 1 if axis is None else x.shape[0]
    scale = torch.full((channels,), 0.05) + torch.arange(channels) * 0.01
    zp = torch.full((channels,), 3.0)
    grad = _x(torch.float32, (8, 32)) * 0.1

    def run(fn):
        xs, ss, zs = (t.clone().requires_grad_() for t in (x, scale, zp))
        y = fn(xs, ss, zs)
        y.backward(grad)
        return y.detach(), xs.grad, ss.grad, zs.grad

    if axis is None:
        ref = run(lambda a, s, z: torch._fake_quantize_learnable_per_tensor_affine(a, s, z, 0, 255))
    else:
        ref = run(
            lambda a, s, z: torch._fake_quantize_learnable_per_channel_affine(a, s, z, 0, 0, 255)
        )
    ours = run(lambda a, s, z: ops.fake_quantize_learnable(a, s, z, axis, 0, 255, 1.0))
    assert torch.equal(ref[0], ours[0]) and torch.equal(ref[1], ours[1])
    # scale / zero-point gradients are sums over elements: equal up to the summation
    # order (the float32 bound of tests/python/parity/test_torch_core.py)
    for r, o in zip(ref[2:], ours[2:], strict=True):
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)


def test_ops_pass_core_errors_through():
    with pytest.raises(ValueError, match="group"):
        ops.choose_qparams(_x(torch.float32, (6, 48)), SPECS[1].key())
