"""The applied-scheme table (quantkit.torch.coverage): every module with a weight
matrix appears with its scheme and the rule that chose it, or why it stays float;
calibration adds what each quantizer saw. Also: the aligned defaults (W4A16 is
symmetric, as compressed-tensors' preset), symmetric schemes store no zero point,
and a call with nothing to do says so."""

import copy
import warnings

import pytest
import quantkit.torch as qkt
import torch
from quantkit.torch import recipes as R
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 32)
        self.encoder = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids)))


def test_every_module_with_a_matrix_has_a_row_with_its_rule_or_reason(capsys):
    net = Net().eval()
    with pytest.warns(UserWarning, match="MultiheadAttention"):
        qkt.prepare(net, R.W4A16(32), overrides={"head": None}, verbose=True)
    rows = {r.module: r for r in qkt.coverage(net).rows}
    assert rows["encoder.linear1"].scheme == "int4-g32"
    assert rows["encoder.linear1"].reason == "default"
    assert rows["head"].scheme is None and rows["head"].reason == "skipped by override 'head'"
    assert rows["embed"].reason == "W4A16-g32 quantizes no embedding tables"
    # MultiheadAttention reads its weights itself: reported, not silently swapped
    assert "reads out_proj.weight itself" in rows["encoder.self_attn.out_proj"].reason
    assert "input projection" in rows["encoder.self_attn.in_proj"].reason
    assert type(net.encoder.self_attn.out_proj) is nn.modules.linear.NonDynamicallyQuantizableLinear
    printed = capsys.readouterr().out
    assert (
        "encoder.linear1" in printed and "2 of 6 modules with weight matrices quantized" in printed
    )
    assert net(torch.randint(0, 10, (2, 5))).shape == (2, 5, 10)


def test_filter_fn_and_calibration_counts_are_in_the_table():
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    qkt.prepare(net, R.W8A8(), filter_fn=lambda _m, name: name == "0")
    qkt.calibrate(net, [torch.randn(3, 8), torch.randn(2, 4, 8)])
    rows = {r.module: r for r in qkt.coverage(net).rows}
    assert (rows["0"].batches, rows["0"].tokens) == (2, 11)
    assert rows["2"].reason == "left out by filter_fn" and rows["2"].batches is None
    assert "batches" in qkt.coverage(net).table()


def test_quantize_with_nothing_to_do_raises_and_unprepared_models_have_no_table():
    net = nn.Sequential(nn.Linear(8, 8))
    with pytest.raises(ValueError, match="no module was quantized"):
        qkt.quantize_(net, R.W8A16(), overrides={"0": None})
    with pytest.raises(ValueError, match="not prepared"):
        qkt.coverage(nn.Linear(2, 2))


def test_w4a16_is_symmetric_and_symmetric_schemes_store_no_zero_point():
    assert R.W4A16().weight.spec.mapping == "symmetric"
    assert qkt.recipe_by_name("W4A16").weight.spec.spec() == R.W4A16().weight.spec.spec()
    assert (
        qkt.recipe_by_name("W4A16-asym").weight.spec.spec()
        == R.W4A16(symmetric=False).weight.spec.spec()
    )
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32))
    x = torch.randn(4, 64)
    sym = qkt.quantize_(copy.deepcopy(net), R.W4A16(32))
    asym = qkt.quantize_(copy.deepcopy(net), R.W4A16(32, symmetric=False))
    prepared = qkt.prepare(copy.deepcopy(net), R.W4A16(32))
    assert sym[0].qweight.zero_point.numel() == 0
    assert asym[0].qweight.zero_point.shape == (32, 2)
    assert torch.equal(sym(x), prepared(x))
    # 64x32 int4 = 1024 B of codes, 256 B of scales; the zero points were another 256 B
    assert qkt.model_bytes(asym) - qkt.model_bytes(sym) == 32 * 2 * 4
    state = sym.state_dict()
    reloaded = qkt.quantize_(copy.deepcopy(net), R.W4A16(32))
    reloaded.load_state_dict(state)
    assert torch.equal(reloaded(x), sym(x))


def test_recipe_files_round_trip_and_python_recipes_are_not_files(tmp_path):
    recipe = qkt.ModelRecipe("q4-mix", rules=((r"0", "int8"), ("1", "skip")), embeddings=True)
    recipe.save(tmp_path / "r.json")
    assert qkt.load_recipe(tmp_path / "r.json") == recipe
    with pytest.raises(ValueError, match="holds Recipe objects"):
        qkt.ModelRecipe(R.W8A8()).to_json()
    net = nn.Sequential(nn.Linear(64, 8), nn.Linear(8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qkt.prepare(net, recipe)
    assert qkt.coverage(net).quantized() == {"0": "int8"}


def test_parameter_count_includes_quantized_weights():
    net = Net()
    before = sum(p.numel() for p in net.parameters())
    qkt.quantize_(net, qkt.recipes.with_embeddings(R.W8A16()), allow_unmatched=True)
    assert qkt.parameter_count(net) == before
    assert sum(p.numel() for p in net.parameters()) < before
