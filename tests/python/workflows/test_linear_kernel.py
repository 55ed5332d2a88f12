"""quantkit's linear kernel behind prepared and converted layers: the specified summation
order (checked against an independent NumPy implementation of it), converted == prepared
bit for bit with the codes read in place, quantized embeddings that dequantize only the
rows they return, gradients, and tracing by torch.compile / torch.export."""

import copy

import numpy as np
import pytest
import quantkit.torch as qkt
import torch
import torch.nn.functional as F
from quantkit.torch import linear_ops as ops
from quantkit.torch import recipes as R
from torch import nn

RECIPES = {
    "W4A16 g32": lambda: R.W4A16(32),
    "W4A16 g32 symmetric": lambda: R.W4A16(32, symmetric=True),
    "W8A16": lambda: R.W8A16(),
    "W8A8 dynamic": lambda: R.W8A8Dynamic(),
    "8da4w": lambda: R.Int8DynActInt4Weight(32),
    "FP8 row": lambda: R.FP8("row"),
    "MXFP4": lambda: R.MXFP4(),
    "NVFP4": lambda: R.NVFP4(),
    "stretched 2-bit": lambda: R.Stretched(2, 32),
}


def specified_linear(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """The order of include/quantkit/linear.hpp, written again with NumPy float32 arrays:
    partial j sums x[k] * w[k] for k = j, j + 16, ... in k order, then the sixteen partials
    are halved pairwise (8, 4, 2, 1)."""
    x, w = x.astype(np.float32), w.astype(np.float32)
    k = x.shape[1]
    padded = -(-k // 16) * 16
    xp = np.zeros((x.shape[0], padded), np.float32)
    wp = np.zeros((w.shape[0], padded), np.float32)
    xp[:, :k], wp[:, :k] = x, w
    partial = np.zeros((x.shape[0], w.shape[0], 16), np.float32)
    for start in range(0, padded, 16):
        chunk = xp[:, None, start : start + 16] * wp[None, :, start : start + 16]
        partial = partial + chunk  # one float32 rounding per element, in k order
    for half in (8, 4, 2, 1):
        partial = partial[..., :half] + partial[..., half : 2 * half]
    out = partial[..., 0]
    return out if bias is None else out + bias.astype(np.float32)


@pytest.mark.parametrize("k", [1, 15, 16, 17, 40, 77])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_linear_follows_the_specified_order(k, dtype):
    g = torch.Generator().manual_seed(k)
    x = (torch.randn(5, k, generator=g) * 3).to(dtype)
    w = torch.randn(6, k, generator=g).to(dtype)
    b = torch.randn(6, generator=g).to(dtype)
    expected = specified_linear(x.float().numpy(), w.float().numpy(), b.float().numpy())
    assert torch.equal(ops.linear(x, w, b), torch.from_numpy(expected).to(dtype))
    assert torch.equal(
        ops.linear(x, w),
        torch.from_numpy(specified_linear(x.float().numpy(), w.float().numpy(), None)).to(dtype),
    )


def test_the_order_is_not_torchs():
    """Cancellation makes the order visible: 2^24 then ones. Left to right every 1 ties
    back to 2^24; the sixteen partials keep 14 of the 15."""
    x = torch.ones(1, 16)
    x[0, 0] = 2.0**24
    w = torch.ones(1, 16)
    assert ops.linear(x, w).item() == 2.0**24 + 14


def small_model(dtype):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Embedding(50, 64), nn.Linear(64, 96), nn.GELU(), nn.Linear(96, 64, bias=False)
    ).to(dtype)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_converted_equals_prepared_on_the_kernel(recipe, dtype):
    model = small_model(dtype)
    prepared = qkt.prepare(model, R.with_embeddings(RECIPES[recipe]()))
    ids = torch.randint(0, 50, (3, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = prepared(ids)
        converted = qkt.convert(copy.deepcopy(prepared))
        assert isinstance(converted[1], qkt.QuantizedLinear)
        assert torch.equal(converted(ids), before)
        one = ids[:1, :1]  # a single row: codes decoded in registers
        assert torch.equal(converted(one), prepared(one))
        with qkt.torch_matmul():  # the exact-simulation order: also equal to each other
            assert torch.equal(converted(ids), prepared(ids))


def test_packed_ops_equal_their_dequantized_weights():
    torch.manual_seed(3)
    for recipe in RECIPES.values():
        layer = qkt.quantize_(nn.Sequential(nn.Linear(96, 40)), recipe())[0]
        qw = layer.qweight
        x = torch.randn(2, 3, 96)
        x = layer.input_fake_quant(x) if layer.input_fake_quant is not None else x
        got = ops.linear_packed(x, *qw.codes_and_qparams(), qw.global_scale, layer.bias)
        assert torch.equal(got, ops.linear(x, qw(), layer.bias)), recipe
        rows = torch.tensor([[39, 0], [7, 39]])
        table = ops.embedding_packed(rows, *qw.codes_and_qparams(), torch.float32, qw.global_scale)
        assert torch.equal(table, F.embedding(rows, qw())), recipe


def test_quantized_embeddings_refuse_indices_out_of_range():
    table = qkt.quantize_(nn.Sequential(nn.Embedding(10, 32)), R.with_embeddings(R.W8A16()))
    with pytest.raises(ValueError, match="index 10 at position 1 is outside"):
        table(torch.tensor([3, 10]))


def test_a_weight_changed_in_place_is_read_again():
    torch.manual_seed(4)
    a = qkt.quantize_(nn.Sequential(nn.Linear(64, 32)), R.W4A16(32))
    b = qkt.quantize_(nn.Sequential(nn.Linear(64, 32)), R.W4A16(32))
    x = torch.randn(4, 64)
    with torch.no_grad():
        before = a(x)
        a.load_state_dict(b.state_dict())  # copies into the same buffers
        assert not torch.equal(a(x), before)
        assert torch.equal(a(x), b(x))


def test_gradients_flow_through_both_forms():
    """Prepared layers train (straight-through weights, F.linear's gradient formulas);
    converted layers pass gradients to their inputs and bias (adapters over a frozen base)."""
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(32, 16))
    x = torch.randn(4, 32, requires_grad=True)
    prepared = qkt.prepare(copy.deepcopy(net), R.W4A16(32))
    prepared(x).square().sum().backward()
    w = prepared[0].weight_fake_quant(prepared[0].weight.detach())
    y = x.detach().requires_grad_()
    F.linear(y, w, prepared[0].bias.detach()).square().sum().backward()
    torch.testing.assert_close(x.grad, y.grad)
    assert prepared[0].weight.grad is not None and prepared[0].bias.grad is not None

    converted = qkt.convert(prepared)
    x2 = x.detach().requires_grad_()
    converted(x2).square().sum().backward()
    y2 = x.detach().requires_grad_()
    F.linear(y2, converted[0].weight, converted[0].bias).square().sum().backward()
    torch.testing.assert_close(x2.grad, y2.grad)


def test_compile_and_export_trace_the_kernels_as_single_nodes():
    model = small_model(torch.float32)
    converted = qkt.quantize_(model, R.with_embeddings(R.W4A16(32)))
    ids = torch.randint(0, 50, (2, 5))
    with torch.no_grad():
        expected = converted(ids)
        program = torch.export.export(converted, (ids,))
        graph = str(program.graph)
        assert "quantkit.linear_packed" in graph and "quantkit.embedding_packed" in graph
        assert torch.equal(program.module()(ids), expected)
        compiled = torch.compile(converted, backend="aot_eager", fullgraph=True)
        assert torch.equal(compiled(ids), expected)


INTEGER_PATH = {"W8A8 dynamic": R.W8A8Dynamic, "8da4w g128": lambda: R.Int8DynActInt4Weight(128)}


@pytest.mark.parametrize("recipe", INTEGER_PATH)
def test_dynamic_int8_inputs_take_the_integer_path(recipe):
    """Per-token int8 inputs against integer weights in blocks of 128 columns or more
    (8da4w g32 keeps the float kernel: see MIN_INTEGER_BLOCK): exact int32 sums, so
    the result is the real-number product of the fake-quantized operands up to the
    float32 epilogue's roundings (far closer than a float32 dot product of 256 terms)."""
    torch.manual_seed(6)
    layer = nn.Sequential(nn.Linear(256, 64))
    prepared = qkt.prepare(copy.deepcopy(layer), INTEGER_PATH[recipe]())
    converted = qkt.convert(copy.deepcopy(prepared))
    x = torch.randn(3, 7, 256) * 4
    with torch.no_grad():
        program = torch.export.export(converted, (x,))
        assert "quantkit.linear_int" in str(program.graph)
        short = qkt.quantize_(copy.deepcopy(layer), R.Int8DynActInt4Weight(32))
        assert "linear_int" not in str(torch.export.export(short, (x,)).graph)
        y = converted(x)
        assert torch.equal(prepared(x), y)
        xq = prepared[0].input_fake_quant(x).double()
        wq = prepared[0].weight_fake_quant(prepared[0].weight).double()
        exact = xq @ wq.T + prepared[0].bias.double()
        with qkt.torch_matmul():
            old = converted(x)
    error = (y.double() - exact).abs().max().item()
    assert error <= 2e-6 * exact.abs().max().item()
    assert error <= (old.double() - exact).abs().max().item()


def test_integer_path_gradients_are_the_fake_quantized_layers():
    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(64, 32))
    prepared = qkt.prepare(net, R.W8A8Dynamic())
    x = torch.randn(5, 64, requires_grad=True)
    prepared(x).square().sum().backward()
    grads = (x.grad.clone(), prepared[0].weight.grad.clone(), prepared[0].bias.grad.clone())
    x.grad = None
    prepared.zero_grad()
    with qkt.torch_matmul():  # fake-quantized values and F.linear: the usual QAT graph
        prepared(x).square().sum().backward()
    torch.testing.assert_close(grads[0], x.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[1], prepared[0].weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[2], prepared[0].bias.grad, rtol=1e-4, atol=1e-5)


def test_calibrated_int8_inputs_take_the_integer_path():
    """W8A8 static: calibrated per-tensor uint8 inputs, int8 per-channel weights."""
    torch.manual_seed(8)
    layer = nn.Sequential(nn.Linear(256, 64))
    prepared = qkt.prepare(copy.deepcopy(layer), R.W8A8())
    qkt.calibrate(prepared, [torch.randn(2, 4, 256) for _ in range(3)])  # 3-D: scale [1, 1, 1]
    converted = qkt.convert(copy.deepcopy(prepared))
    x = torch.randn(2, 5, 256)
    with torch.no_grad():
        graph = str(torch.export.export(converted, (x,)).graph)
        assert "quantkit.linear_int" in graph
        y = converted(x)
        assert torch.equal(prepared(x), y)
        xq = prepared[0].input_fake_quant(x).double()
        wq = prepared[0].weight_fake_quant(prepared[0].weight).double()
        exact = xq @ wq.T + prepared[0].bias.double()
    assert (y.double() - exact).abs().max().item() <= 2e-6 * exact.abs().max().item()
    x.requires_grad_()
    prepared(x).square().sum().backward()
    grad = x.grad.clone()
    x.grad = None
    with qkt.torch_matmul():
        prepared(x).square().sum().backward()
    torch.testing.assert_close(grad, x.grad, rtol=1e-4, atol=1e-5)
