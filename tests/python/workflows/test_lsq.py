"""LSQ (learnable scale / zero point) QAT: the forward is PyTorch's learnable fake
quantize, the scales train, and convert keeps the trained model bit for bit."""

import copy

import pytest
import quantkit.torch as qkt
import torch
from quantkit.torch import recipes as R
from quantkit.torch.learnable import LearnableFakeQuantize
from quantkit.torch.recipes import Recipe, TensorQuant


def _lsq(bits=4, activation_bits=8):
    recipe = R.LSQ(bits, activation_bits)
    return Recipe(recipe.name, recipe.weight, recipe.activation, recipe.weight)


def _trained(net, batches, steps=3):
    model = qkt.prepare(net, _lsq())
    qkt.calibrate(model, batches)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    for b in batches * steps:
        opt.zero_grad()
        model(b).pow(2).mean().backward()
        opt.step()
    return model.eval()


def test_forward_is_torch_learnable_fake_quantize(tiny_net, tiny_batches):
    model = qkt.prepare(tiny_net, _lsq())
    qkt.calibrate(model, tiny_batches)
    wq, aq = model.fc1.weight_fake_quant, model.fc1.input_fake_quant
    w = model.fc1.weight.detach()
    scale, zp, _ = qkt.ops.choose_qparams(w, wq.spec_key)
    assert torch.equal(wq.scale.detach(), scale.reshape(-1))  # starts from the weight's qparams
    factor = 1.0 / (w.numel() * 7) ** 0.5
    expected = torch._fake_quantize_learnable_per_channel_affine(
        w, wq.scale, wq.zero_point, 0, -8, 7, factor
    )
    assert torch.equal(wq(w), expected)
    x = torch.randn(6, 128) * 3
    expected = torch._fake_quantize_learnable_per_tensor_affine(
        x, aq.scale, aq.zero_point, 0, 255, 1.0 / (x.numel() * 255) ** 0.5
    )
    assert torch.equal(aq(x), expected)


def test_scales_train_and_convert_keeps_the_trained_model(tiny_net, tiny_batches):
    untrained = qkt.prepare(copy.deepcopy(tiny_net), _lsq())
    qkt.calibrate(untrained, tiny_batches)
    model = _trained(tiny_net, tiny_batches)
    assert not torch.equal(model.fc1.weight_fake_quant.scale, untrained.fc1.weight_fake_quant.scale)
    assert not torch.equal(model.fc2.input_fake_quant.scale, untrained.fc2.input_fake_quant.scale)
    with torch.no_grad():
        expected = [model(b) for b in tiny_batches]
        converted = qkt.convert(copy.deepcopy(model))
        assert all(
            torch.equal(converted(b), e) for b, e in zip(tiny_batches, expected, strict=True)
        )
    assert isinstance(converted.fc1, qkt.QuantizedLinear)


def test_state_dict_round_trip(tiny_net, tiny_batches):
    model = _trained(copy.deepcopy(tiny_net), tiny_batches)
    fresh = qkt.prepare(tiny_net, _lsq())
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert all(torch.equal(fresh.eval()(b), model(b)) for b in tiny_batches)


def test_trained_model_exports_to_onnx(tiny_net, tiny_batches):
    model = _trained(tiny_net, tiny_batches)
    proto = qkt.export_onnx(model, (tiny_batches[0],))
    rows = qkt.onnx_parity(model, proto, [(b,) for b in tiny_batches]).rows
    assert all(r.identical == r.elements for r in rows if r.kind == "weight")
    assert all(r.max_lsb_diff <= 1 for r in rows if r.kind == "activation")


@pytest.mark.parametrize(
    "spec",
    [
        qkt.SpecArgs(dtype="fp8_e4m3fn", scale_dtype="float32"),
        qkt.SpecArgs(dtype="int4", granularity=("per_group", 32)),
    ],
    ids=["float-format", "per-group"],
)
def test_learnable_needs_an_integer_per_tensor_or_axis_spec(spec):
    with pytest.raises(ValueError, match="learnable qparams need an integer format"):
        LearnableFakeQuantize(TensorQuant(spec, "learnable"))


def test_quantize_one_call_refuses_learnable_activations(tiny_net):
    with pytest.raises(ValueError, match="calibrate"):
        qkt.quantize_(tiny_net, R.LSQ())
