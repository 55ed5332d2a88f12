"""prepare → calibrate → convert: the converted model computes exactly what the
prepared model computed, for every recipe and float dtype."""

import copy
import re
import warnings

import pytest
import quantkit as qk
import quantkit.torch as qkt
import torch
from quantkit.torch import recipes as R
from torch import nn

DTYPES = [torch.float32, torch.bfloat16, torch.float16]
RECIPES = [
    R.W8A8(),
    R.W8A8("minmax"),
    R.W8A8Dynamic(),
    R.W4A16(32),
    R.W4A16(32, symmetric=True),
    R.W4A16(32, scale_search="mse"),
    R.W8A16(),
    R.W8A16(scale_search="mse"),
    R.Int8DynActInt4Weight(32),
    R.FP8(),
    R.FP8("row"),
    R.MXFP4(),
    R.MXFP8(),
    R.NVFP4(),
    R.Stretched(2, 32),
    R.Stretched(3, 32),
]


def _with_embeddings(recipe):
    return R.Recipe(recipe.name + "+emb", recipe.weight, recipe.activation, recipe.weight)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_converted_equals_prepared_bit_for_bit(recipe, dtype, tiny_net, tiny_batches):
    model = _with_embeddings(recipe)
    net = qkt.prepare(tiny_net.to(dtype), model)
    if model.needs_calibration:
        qkt.calibrate(net, tiny_batches)
    with torch.no_grad():
        prepared = [net(b) for b in tiny_batches]
    qkt.convert(net)
    assert not any(isinstance(m, qkt.QATLinear) for m in net.modules())
    assert isinstance(net.embed, qkt.QuantizedEmbedding) and isinstance(
        net.conv, qkt.QuantizedConv2d
    )
    with torch.no_grad():
        for b, expected in zip(tiny_batches, prepared, strict=True):
            out = net(b)
            assert out.dtype == dtype
            assert torch.equal(out, expected)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_prepared_weights_are_the_core_fake_quantize(recipe, tiny_net):
    """Independent of the module plumbing: each prepared weight equals
    qk.fake_quantize(w2d, qk.choose_qparams(w2d, spec)) on the [out, -1] matrix."""
    net = qkt.prepare(tiny_net, recipe)
    for module in (net.conv, net.fc1, net.fc2):
        w = module.weight.detach()
        w2 = w.reshape(w.shape[0], -1)
        expected = qk.fake_quantize(w2, qk.choose_qparams(w2, recipe.weight.spec.spec()))
        got = qkt.prepared.fake_quantized_weight(w, module.weight_fake_quant)
        assert torch.equal(got.reshape(w2.shape), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_8da4w_prepare_equals_torchao_qat_quantizer(dtype):
    """The seed's bug: prepare and convert numerics diverged. Ours match torchao's
    Int8DynActInt4WeightQATQuantizer bit for bit when multiplying in torch's order, as
    torchao does (and convert matches prepare in both orders)."""
    from torchao.quantization.qat import Int8DynActInt4WeightQATQuantizer

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 64)).to(dtype)
    x = torch.randn(2, 5, 256).to(dtype)
    theirs = Int8DynActInt4WeightQATQuantizer(groupsize=32, scales_precision=dtype).prepare(
        copy.deepcopy(net)
    )
    ours = qkt.prepare(copy.deepcopy(net), R.Int8DynActInt4Weight(32))
    with torch.no_grad():
        expected = theirs(x)
        with qkt.torch_matmul():
            assert torch.equal(ours(x), expected)
        in_order = ours(x)
        converted = qkt.convert(ours)
        assert torch.equal(converted(x), in_order)
        with qkt.torch_matmul():
            assert torch.equal(converted(x), expected)


def test_converted_model_is_smaller_and_state_dict_round_trips(tiny_net, tiny_batches):
    before = qkt.model_bytes(tiny_net)
    net = qkt.quantize_(tiny_net, _with_embeddings(R.W4A16(32)))
    assert qkt.model_bytes(net) < before / 3
    fresh = qkt.quantize_(copy.deepcopy(net.__class__()), _with_embeddings(R.W4A16(32)))
    fresh.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert torch.equal(fresh(tiny_batches[0]), net(tiny_batches[0]))


def test_calibrated_state_dict_loads_into_a_fresh_prepared_model(tiny_net, tiny_batches):
    net = qkt.prepare(copy.deepcopy(tiny_net), R.W8A8())
    qkt.calibrate(net, tiny_batches)
    other = qkt.prepare(copy.deepcopy(tiny_net), R.W8A8())
    other.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert torch.equal(other(tiny_batches[1]), net(tiny_batches[1]))


def test_qat_trains_through_the_straight_through_estimator(tiny_net, tiny_batches):
    net = qkt.prepare(tiny_net, R.Int8DynActInt4Weight(32))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = net.fc1.weight.detach().clone()
    loss = net(tiny_batches[0]).square().mean()
    loss.backward()
    assert net.fc1.weight.grad is not None and net.fc1.weight.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(net.fc1.weight, before)


def test_compiled_prepared_model_equals_eager(tiny_net, tiny_batches):
    net = qkt.prepare(tiny_net, R.Int8DynActInt4Weight(32))
    compiled = torch.compile(net, backend="aot_eager")
    with torch.no_grad():
        assert torch.equal(compiled(tiny_batches[0]), net(tiny_batches[0]))


def test_group_size_that_does_not_divide_names_module_and_rule(tiny_net):
    with pytest.raises(ValueError) as err:
        qkt.prepare(tiny_net, R.W4A16(48))
    message = str(err.value)
    assert "'conv'" in message and "64 input features" in message
    assert "group size 48" in message and "in_features % group_size == 0" in message
    assert isinstance(tiny_net.conv, nn.Conv2d)  # nothing was changed


def test_unsupported_modules_are_skipped_with_one_warning():
    net = nn.Sequential(nn.Conv1d(4, 4, 3), nn.Linear(4, 4), nn.ConvTranspose2d(4, 4, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        qkt.prepare(net, R.W8A16())
    messages = [str(w.message) for w in caught if "left in float" in str(w.message)]
    assert len(messages) == 1
    assert "Conv1d: 0" in messages[0] and "ConvTranspose2d: 2" in messages[0]
    assert isinstance(net[1], qkt.QATLinear) and type(net[0]) is nn.Conv1d


def test_overrides_and_filter(tiny_net):
    qkt.prepare(
        tiny_net,
        R.W4A16(32),
        overrides={"fc2": R.W8A16(), "conv": None},
        filter_fn=lambda m, name: name != "fc1",
    )
    assert type(tiny_net.conv) is nn.Conv2d and type(tiny_net.fc1) is nn.Linear
    assert tiny_net.fc2.weight_fake_quant.config == R.W8A16().weight


def test_static_recipe_needs_calibration(tiny_net, tiny_batches):
    with pytest.raises(ValueError, match="calibrate"):
        qkt.quantize_(copy.deepcopy(tiny_net), R.W8A8())
    net = qkt.prepare(tiny_net, R.W8A8())
    with pytest.raises(RuntimeError, match="calibrate"):
        net(tiny_batches[0])
    with pytest.raises(RuntimeError, match=re.escape("run calibrate first")):
        qkt.convert(net)


def test_preparing_twice_is_refused(tiny_net):
    qkt.prepare(tiny_net, R.W8A16())
    with pytest.raises(ValueError, match="already prepared"):
        qkt.prepare(tiny_net, R.W8A16())


@pytest.mark.parametrize(
    "recipe, dtype",
    [
        (R.MXFP4(), torch.float8_e8m0fnu),
        (R.MXFP8(), torch.float8_e8m0fnu),
        (R.NVFP4(), torch.float8_e4m3fn),
    ],
    ids=["MXFP4", "MXFP8", "NVFP4"],
)
def test_block_scales_are_stored_in_their_one_byte_format(recipe, dtype, tiny_net):
    fp32_scales = qkt.ops.choose_qparams(tiny_net.fc1.weight.detach(), recipe.weight.spec.key())[0]
    other = copy.deepcopy(tiny_net)
    model = qkt.quantize_(tiny_net, recipe)
    qw = model.fc1.qweight
    assert qw.scale.dtype == dtype
    assert torch.equal(qw.float_scale, fp32_scales)  # widening is exact
    global_scale_bytes = 0 if qw.global_scale is None else 4  # NVFP4's float32 per-tensor scale
    assert qw.nbytes == qw.packed.numel() + fp32_scales.numel() + global_scale_bytes
    with torch.no_grad():
        other.fc1.weight.mul_(2)
    reloaded = qkt.quantize_(other, recipe)
    reloaded.load_state_dict(model.state_dict())
    assert torch.equal(reloaded.fc1.qweight(), qw())


def test_convert_with_nothing_to_convert_says_so(tiny_net):
    with pytest.raises(ValueError, match="run prepare"):
        qkt.convert(tiny_net)
    model = qkt.quantize_(tiny_net, R.W4A16(32))
    with pytest.raises(ValueError, match="already converted"):
        qkt.convert(model)


def test_an_override_that_matches_nothing_is_refused_by_name(tiny_net):
    typo = {r"model\.layer\.(0|3)\..*": None}
    with pytest.raises(ValueError, match=r"override 'model\\\.layer"):
        qkt.prepare(copy.deepcopy(tiny_net), R.W4A16(32), overrides=typo)
    with pytest.warns(UserWarning, match="matches no module"):
        qkt.prepare(copy.deepcopy(tiny_net), R.W4A16(32), overrides=typo, allow_unmatched=True)
