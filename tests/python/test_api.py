"""The Python API: array kinds in and out, zero-copy inputs, errors, objects."""

from __future__ import annotations

import numpy as np
import pytest
import quantkit as qk
import torch


def test_numpy_in_numpy_out():
    x = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    qp = qk.choose_qparams(x, qk.QuantSpec(dtype="int8"))
    assert isinstance(qp.scale, np.ndarray) and qp.scale.dtype == np.float32
    assert isinstance(qp.zero_point, np.ndarray) and qp.zero_point.dtype == np.int32
    y = qk.fake_quantize(x, qp)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == (2, 2)
    q = qk.quantize(x, qp)
    assert isinstance(q.codes(), np.ndarray) and q.codes().dtype == np.int8
    np.testing.assert_array_equal(qk.dequantize(q), y)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_torch_in_torch_out(dtype):
    x = torch.randn(4, 64).to(dtype).requires_grad_(True)  # grad-requiring tensors are accepted
    spec = qk.QuantSpec(dtype="int4", mapping="asymmetric", granularity=qk.per_group(32))
    qp = qk.choose_qparams(x, spec)
    assert isinstance(qp.scale, torch.Tensor) and qp.scale.dtype == dtype
    y = qk.fake_quantize(x, qp)
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.shape == x.shape
    q = qk.quantize(x, qp)
    assert torch.equal(q.dequantize(dtype), y)
    assert q.pack().dtype == torch.uint8 and q.pack().numel() == 128


def test_strided_inputs_are_read_in_place():
    base = torch.randn(8, 16)
    view = base.t()  # non-contiguous view: read through its strides, no copy by the caller
    qp = qk.choose_qparams(view, qk.QuantSpec(dtype="int8", granularity=qk.per_axis(0)))
    assert torch.equal(qk.fake_quantize(view, qp), qk.fake_quantize(view.contiguous(), qp))


def test_outputs_own_their_memory():
    x = np.linspace(-1, 1, 16, dtype=np.float32)
    qp = qk.choose_qparams(x, qk.QuantSpec(dtype="int8"))
    y = qk.fake_quantize(x, qp)
    del qp
    y2 = y.copy()
    x[:] = 0  # results do not alias the input
    np.testing.assert_array_equal(y, y2)


def test_user_qparams_are_validated():
    spec = qk.QuantSpec(dtype="uint8", mapping="asymmetric")
    qp = qk.QParams(
        scale=np.array([0.1], np.float32), zero_point=np.array([3], np.int32), spec=spec
    )
    assert qp.spec.dtype == "uint8"
    with pytest.raises(ValueError, match="must be finite and > 0"):
        qk.QParams(scale=np.array([0.0], np.float32), zero_point=np.array([3], np.int32), spec=spec)
    with pytest.raises(ValueError, match=r"must be an integer in \[quant_min, quant_max\]"):
        qk.QParams(
            scale=np.array([0.1], np.float32), zero_point=np.array([300], np.int32), spec=spec
        )


def test_errors_carry_the_cpp_message():
    with pytest.raises(ValueError, match="quantized dtype 'int9' is unknown"):
        qk.QuantSpec(dtype="int9")
    with pytest.raises(ValueError, match="mapping 'sym' is unknown"):
        qk.QuantSpec(mapping="sym")
    with pytest.raises(ValueError, match="group_size 100 does not divide axis 1 of length 64"):
        qk.choose_qparams(
            np.zeros((2, 64), np.float32), qk.QuantSpec(dtype="int4", granularity=qk.per_group(100))
        )
    with pytest.raises(ValueError, match="x holds nan at flat index 1"):
        qk.choose_qparams(np.array([1.0, np.nan], np.float32), qk.QuantSpec())
    with pytest.raises(ValueError, match="x has dtype int32"):
        qk.choose_qparams(np.array([1, 2], np.int32), qk.QuantSpec())
    with pytest.raises(TypeError):
        qk.QuantSpec(dtype=4)
    with pytest.raises(TypeError):
        qk.per_group("128")


def test_spec_properties_and_repr():
    spec = qk.QuantSpec(
        dtype="int8",
        quant_min=-127,
        quant_max=127,
        granularity=qk.per_token(),
        eps=1e-5,
        scale_dtype="bfloat16",
    )
    assert (spec.quant_min, spec.quant_max, spec.bits) == (-127, 127, 8)
    assert spec.mapping == "symmetric" and spec.zero_point_domain == "int"
    assert spec.granularity == qk.per_token() and spec.granularity.kind == "per_token"
    assert spec.eps == 1e-5 and spec.scale_dtype == "bfloat16"
    assert (
        repr(spec)
        == "QuantSpec(int8[-127,127] symmetric per_token zero_point=int scale=bfloat16 eps=1e-05)"
    )
    assert qk.per_group(64).block_size([4, 128]) == [1, 64]
    assert qk.QuantSpec(dtype="fp8_e4m3fn").zero_point_domain == "none"


def test_quantized_tensor_pack_unpack_roundtrip():
    x = np.array([0.0, 0.5, 4.0, -0.0], np.float32)
    qp = qk.QParams(scale=np.array([1.0], np.float32), spec=qk.QuantSpec(dtype="fp4_e2m1"))
    q = qk.quantize(x, qp)
    np.testing.assert_array_equal(q.pack(), np.array([0x10, 0x86], np.uint8))
    np.testing.assert_array_equal(q.unpack(), np.array([0x0, 0x1, 0x6, 0x8], np.uint8))
    again = qk.QuantizedTensor.from_packed(q.shape, q.pack(), qp)
    np.testing.assert_array_equal(again.codes(), q.codes())
    assert qk.unpack_codes(qk.pack_codes([1, -2, 3], 4), 3, 4, True) == [1, -2, 3]


def test_quantize_with_a_spec_equals_two_steps():
    x = torch.randn(6, 256, dtype=torch.bfloat16)
    spec = qk.QuantSpec(dtype="int4", mapping="asymmetric", granularity=qk.per_group(128))
    one_pass = qk.quantize(x, spec)
    two_steps = qk.quantize(x, qk.choose_qparams(x, spec))
    assert torch.equal(one_pass.pack(), two_steps.pack())
    assert torch.equal(one_pass.scale, two_steps.scale)
    assert torch.equal(one_pass.zero_point, two_steps.zero_point)


def test_minval_and_empty_inputs():
    x = np.array([-0.5, 3.0], np.float32)
    qp = qk.choose_qparams(x, qk.QuantSpec(dtype="uint8", mapping="asymmetric"))
    np.testing.assert_array_equal(qp.minval, np.array([-0.5], np.float32))
    empty = np.zeros((0, 4), np.float32)
    qp = qk.QParams(
        scale=np.array([1.0], np.float32),
        zero_point=np.array([0], np.int32),
        spec=qk.QuantSpec(dtype="int4"),
    )
    assert qk.fake_quantize(empty, qp).shape == (0, 4)


def test_backward_and_error_report():
    x = torch.tensor([-4.5, -4.25, 3.5, 3.75])
    qp = qk.QParams(
        scale=torch.tensor([0.5]),
        zero_point=torch.tensor([0], dtype=torch.int32),
        spec=qk.QuantSpec(dtype="int4"),
    )
    grad = qk.fake_quantize_backward(x, torch.ones(4), qp)
    assert grad.tolist() == [0.0, 1.0, 1.0, 0.0]
    report = qk.error_report(x, qk.fake_quantize(x, qp))
    assert report["max_abs_diff"] == 0.5 and report["count"] == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("spec_name", ["int8-per-channel", "fp8", "tinygemm"])
def test_out_variants_write_the_same_bits(dtype, spec_name):
    x = torch.randn(6, 257, dtype=dtype)
    spec = {
        "int8-per-channel": qk.QuantSpec(dtype="int8", granularity=qk.per_axis(0)),
        "fp8": qk.QuantSpec(dtype="fp8_e4m3fn", scale_dtype="float32"),
        "tinygemm": qk.QuantSpec(
            dtype="uint4",
            mapping="asymmetric",
            granularity=qk.per_group(257),
            zero_point_domain="float",
        ),
    }[spec_name]
    qp = qk.choose_qparams(x, spec)
    expected = qk.fake_quantize(x, qp)
    out = torch.full_like(x, float("nan"))
    assert qk.fake_quantize(x, qp, out=out) is out
    assert torch.equal(
        out.view(torch.int16 if dtype != torch.float32 else torch.int32),
        expected.view(torch.int16 if dtype != torch.float32 else torch.int32),
    )
    in_place = x.clone()
    qk.fake_quantize(in_place, qp, out=in_place)
    assert torch.equal(in_place, expected)
    q = qk.quantize(x, qp)
    restored = torch.empty(x.shape, dtype=torch.float32)
    assert q.dequantize(out=restored) is restored
    assert torch.equal(restored, qk.dequantize(q))
    arr = np.empty(x.shape, np.float32)
    qk.dequantize(q, out=arr)
    assert np.array_equal(arr, qk.dequantize(q).numpy())


def test_out_variants_refuse_bad_destinations():
    x = torch.randn(4, 64)
    qp = qk.choose_qparams(x, qk.QuantSpec(dtype="int8"))
    with pytest.raises(ValueError, match="must have x's dtype and shape"):
        qk.fake_quantize(x, qp, out=torch.empty(4, 64, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="must have x's dtype and shape"):
        qk.fake_quantize(x, qp, out=torch.empty(64, 4))
    with pytest.raises(ValueError, match="contiguous"):
        qk.fake_quantize(x, qp, out=torch.empty(64, 4).t())
    with pytest.raises(ValueError, match="requires grad"):
        qk.fake_quantize(x, qp, out=torch.empty(4, 64, requires_grad=True))
    with pytest.raises(ValueError, match="overlaps x"):
        buffer = torch.randn(4 * 64 + 1)
        qk.fake_quantize(buffer[:-1].view(4, 64), qp, out=buffer[1:].view(4, 64))
    with pytest.raises(ValueError, match="torchao"):
        qk.fake_quantize(x, qp, convention="torch_core", out=torch.empty_like(x))
    with pytest.raises(ValueError, match="differs from out's dtype"):
        qk.dequantize(qk.quantize(x, qp), torch.bfloat16, out=torch.empty(4, 64))
    with pytest.raises(ValueError, match="writable"):
        frozen = np.empty((4, 64), np.float32)
        frozen.flags.writeable = False
        qk.dequantize(qk.quantize(x, qp), out=frozen)
