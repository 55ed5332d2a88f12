"""SmoothQuant keeps the float model's function and lowers the quantized error on
outlier activations; GPTQ lowers layer-output error and keeps convert exact."""

import copy
import importlib

import pytest
import quantkit.torch as qkt
import torch
from quantkit.torch import recipes as R
from quantkit.torch.gptq import gptq
from quantkit.torch.smoothquant import SmoothedLinear, smooth_quant
from torch import nn


class Block(nn.Module):
    """Two LayerNorm → Linear sites: pre-norm (foldable) and post-norm (residual)."""

    def __init__(self, post_norm: bool) -> None:
        super().__init__()
        self.post_norm = post_norm
        self.ln = nn.LayerNorm(64)
        self.q, self.k = nn.Linear(64, 64), nn.Linear(64, 64)
        self.ln2 = nn.LayerNorm(64)
        self.fc = nn.Linear(64, 16)

    def forward(self, x):
        h = self.ln(x)
        x = (h if self.post_norm else x) + self.q(h) * self.k(h).sigmoid()
        return self.fc(self.ln2(x))


def _outlier_batches():
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):
        x = torch.randn(8, 10, 64, generator=g)
        x[..., [3, 17]] *= 40.0  # a few outlier channels, as in transformer activations
        batches.append(x)
    return batches


def _block(post_norm: bool) -> Block:
    torch.manual_seed(1)
    block = Block(post_norm)
    with torch.no_grad():
        block.ln.weight.uniform_(0.5, 2.0)
        block.ln.weight[[3, 17]] = 20.0  # LayerNorm gains that create outliers
        block.ln.bias.normal_()
    return block


@pytest.mark.parametrize("post_norm", [False, True], ids=["pre-norm", "post-norm"])
def test_smoothing_keeps_the_float_function(post_norm):
    block, batches = _block(post_norm), _outlier_batches()
    with torch.no_grad():
        before = [block(b) for b in batches]
    how = smooth_quant(block, batches, alpha=0.5)
    if post_norm:  # h feeds the residual too: folding would change the model
        assert how["q"] == how["k"] == "explicit" and isinstance(block.q, SmoothedLinear)
    else:
        assert how["q"] == how["k"] == "folded into ln" and type(block.q) is nn.Linear
    assert how["fc"] == "folded into ln2"
    with torch.no_grad():
        for b, expected in zip(batches, before, strict=True):
            torch.testing.assert_close(block(b), expected, rtol=1e-5, atol=1e-5)


def _w8a8_error(block, batches, alpha):
    reference = copy.deepcopy(block)
    if alpha is not None:
        smooth_quant(block, batches, alpha)
    qkt.prepare(block, R.W8A8("minmax"))
    qkt.calibrate(block, batches)
    with torch.no_grad():
        ref = torch.cat([reference(b) for b in batches])
        out = torch.cat([block(b) for b in batches])
    return ((out - ref).square().mean() / ref.square().mean()).item()


@pytest.mark.parametrize("post_norm", [False, True], ids=["pre-norm", "post-norm"])
def test_smoothing_lowers_w8a8_error_on_outlier_channels(post_norm):
    batches = _outlier_batches()
    plain = _w8a8_error(_block(post_norm), batches, None)
    smoothed = _w8a8_error(_block(post_norm), batches, 0.5)
    assert smoothed < plain / 2, (plain, smoothed)


def test_smooth_quant_checks_alpha():
    with pytest.raises(ValueError, match="alpha"):
        smooth_quant(_block(False), _outlier_batches(), alpha=1.5)


def _layer_error(prepared, reference, batches):
    with torch.no_grad():
        ref = torch.cat([reference(b) for b in batches])
        out = torch.cat([prepared(b) for b in batches])
    return (out - ref).square().mean().item()


@pytest.mark.parametrize("symmetric", [False, True])
def test_gptq_beats_round_to_nearest_and_converts_exactly(symmetric):
    g = torch.Generator().manual_seed(2)
    mix = torch.randn(128, 128, generator=g)  # correlated inputs: where GPTQ helps
    batches = [torch.randn(64, 128, generator=g) @ mix for _ in range(4)]
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(128, 256), nn.GELU(), nn.Linear(256, 64))
    recipe = R.W4A16(64, symmetric=symmetric)
    rtn = qkt.prepare(copy.deepcopy(net), recipe)
    with_gptq = qkt.prepare(copy.deepcopy(net), recipe)
    assert gptq(with_gptq, batches) == ["0", "2"]
    rtn_error = _layer_error(rtn, net, batches)
    gptq_error = _layer_error(with_gptq, net, batches)
    assert gptq_error < 0.7 * rtn_error, (rtn_error, gptq_error)
    with torch.no_grad():
        prepared = [with_gptq(b) for b in batches]
        qkt.convert(with_gptq)
        for b, expected in zip(batches, prepared, strict=True):
            assert torch.equal(with_gptq(b), expected)


def _llama(seed: int = 0):
    from tiny_llama import tiny_llama_config
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(hidden=64, intermediate=128, vocab=128)).eval()
    with torch.no_grad():  # outlier channels in the residual stream, as real LLMs have
        model.model.embed_tokens.weight[:, ::16] *= 20
    return model


def test_hf_decoder_blocks_fold_into_their_rms_norms():
    model = _llama()
    ids = [
        torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(i)) for i in range(3)
    ]
    with torch.no_grad():
        before = model(ids[0]).logits
    how = smooth_quant(model, ids, alpha=0.5)
    layer = "model.layers.0"
    assert how[f"{layer}.self_attn.q_proj"] == f"folded into {layer}.input_layernorm"
    assert how[f"{layer}.mlp.up_proj"] == f"folded into {layer}.post_attention_layernorm"
    # llm-compressor's default groups only: o_proj and down_proj are left as they are
    assert f"{layer}.self_attn.o_proj" not in how and f"{layer}.mlp.down_proj" not in how
    assert len(how) == 2 * 5
    assert not any(isinstance(m, SmoothedLinear) for m in model.modules())  # same architecture
    norm = model.model.layers[0].input_layernorm.weight
    assert not torch.allclose(norm, torch.ones_like(norm))  # the scales went into the norm
    with torch.no_grad():
        after = model(ids[0]).logits
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)  # the same function


def test_explicit_mappings_name_the_norm_and_its_linears():
    model = _llama(1)
    ids = [torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(5))]
    mappings = [("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj"))]
    how = smooth_quant(model, ids, mappings=mappings)
    assert sorted(how) == sorted(
        f"model.layers.{i}.mlp.{p}_proj" for i in range(2) for p in ("gate", "up")
    )
    with pytest.raises(ValueError, match="no module 'mlp.missing_proj'|no module"):
        smooth_quant(_llama(2), ids, mappings=[("post_attention_layernorm", ("mlp.missing_proj",))])
    with pytest.raises(ValueError, match="no mapping matched"):
        smooth_quant(_llama(3), ids, mappings=[("final_norm", ("mlp.up_proj",))])


def test_gptq_reports_each_layer_and_warns_on_too_few_tokens():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32, bias=False))
    model = qkt.prepare(net, qkt.recipes.W4A16(32, symmetric=True))
    with pytest.warns(UserWarning, match="saw 40 calibration tokens for 64 input features"):
        (report,) = gptq(model, [torch.randn(40, 64)], report=True)
    assert (report.name, report.tokens, report.in_features) == ("0", 40, 64)
    assert report.damp == 0.01 and report.precision == "float32" and report.act_order


def test_gptq_damps_a_singular_hessian_until_it_factors():
    """Two identical input channels and no damping: the Hessian is singular, so GPTQ
    raises the damping (and says so) instead of failing or returning NaN."""
    torch.manual_seed(0)
    x = torch.randn(256, 32)
    x[:, 1] = x[:, 0]
    model = qkt.prepare(nn.Sequential(nn.Linear(32, 16, bias=False)), qkt.recipes.W8A16())
    with pytest.warns(UserWarning, match="needed damping"):
        (report,) = gptq(model, [x], damp=0.0, report=True)
    assert report.damp > 0
    assert torch.isfinite(model[0].weight).all()


@pytest.mark.parametrize("act_order", [False, True])
def test_act_order_keeps_groups_in_column_order_and_converts_exactly(act_order):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(128, 48, bias=False))
    x = torch.randn(512, 128) * torch.linspace(0.1, 4.0, 128)  # channels of unequal weight
    model = qkt.prepare(copy.deepcopy(net), qkt.recipes.W4A16(32))
    gptq(model, [x], act_order=act_order)
    fq = model[0].weight_fake_quant
    assert fq.scale.shape == (48, 4)
    # every stored group's qparams reproduce the GPTQ weights exactly, in column order
    assert torch.equal(
        qkt.ops.fake_quantize(
            model[0].weight, fq.scale, fq.zero_point, fq.spec_key, fq.compute_dtype
        ),
        model[0].weight,
    )
    with torch.no_grad():
        prepared = model(x[:8])
        qkt.convert(model)
        assert torch.equal(model(x[:8]), prepared)


def test_layers_reading_one_input_share_one_hessian():
    """q / k / v read the same tensor: one Hessian for the three (one third of the
    memory), equal to each layer's own."""
    from quantkit.torch.gptq import _hessians

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(16, 8), nn.Linear(16, 8), nn.Linear(16, 8)
            self.o = nn.Linear(8, 16)

        def forward(self, x):
            return self.o(self.q(x) * self.k(x) + self.v(x))

    torch.manual_seed(0)
    model = Attention()
    batches = [torch.randn(5, 16) for _ in range(3)]
    layers = dict(model.named_children())
    hessians = _hessians(model, layers, batches, None)
    assert hessians["q"][0] is hessians["k"][0] is hessians["v"][0]
    assert hessians["o"][0] is not hessians["q"][0]
    expected = 2.0 * sum((b.T @ b).double() for b in batches) / 15
    torch.testing.assert_close(hessians["q"][0], expected)
    assert hessians["q"][1] == 15 and hessians["o"][1] == 15


@pytest.mark.parametrize("damp", [0.01, 0.0])
def test_inverse_hessian_factor_is_the_textbook_one_without_its_copies(damp, monkeypatch):
    """The factor is built from row chunks of the permuted Hessian (no float64 copy):
    bit for bit the textbook computation on the whole permuted, damped matrix, through
    the damping retries of a rank-deficient Hessian too."""
    gptq_module = importlib.import_module("quantkit.torch.gptq")  # the name is the function
    monkeypatch.setattr(gptq_module, "_GATHER_ROWS", 7)  # chunks with a ragged last one
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20 if damp == 0.0 else 400, 50, dtype=torch.float64, generator=g)
    hessian = 2.0 * x.T @ x / x.shape[0]
    order = torch.randperm(50, generator=g)
    diagonal = hessian.diagonal()[order].clone()
    upper, used, precision = gptq_module._inverse_hessian_factor(hessian, order, diagonal, damp)

    permuted = hessian[order][:, order]
    expected_damp = damp
    while True:  # the documented retry rule: x10, at least 1e-6
        damped = permuted + expected_damp * diagonal.mean() * torch.eye(50, dtype=torch.float64)
        factor, info = torch.linalg.cholesky_ex(damped.float())
        if info == 0:
            inverse = torch.cholesky_inverse(factor)
            expected, info = torch.linalg.cholesky_ex(inverse, upper=True)
            if info == 0:
                break
        expected_damp = max(expected_damp * 10, 1e-6)
    assert (used, precision) == (expected_damp, "float32")
    assert (damp == 0.0) == (used > damp)
    assert torch.equal(upper, expected)


def test_exact_sum_value_in_chunks_is_the_whole_conversion(monkeypatch):
    from quantkit.torch import exact_sum

    monkeypatch.setattr(exact_sum, "_CHUNK", 5)
    s = exact_sum.ExactSum("test")
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        s.add(torch.randn(7, 9, generator=g) * 100)
    whole = torch.ldexp(s.hi.double() * 2.0**32 + s.lo.double(), torch.tensor(-float(s.shift)))
    assert torch.equal(s.value(), whole)
