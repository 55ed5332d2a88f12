"""ONNX QDQ export: checked by onnx.checker, run in onnxruntime, compared tensor by
tensor with quantkit (weights exact; activation codes against the ONNX and torch
rounding rules computed independently in numpy)."""

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import quantkit.torch as qkt
import torch
from onnx.reference import ReferenceEvaluator
from quantkit.torch import recipes as R
from quantkit.torch.onnx_export import export_onnx
from quantkit.torch.onnx_qdq import NotExportable
from quantkit.torch.onnxruntime_parity import onnx_parity
from quantkit.torch.recipes import Recipe, TensorQuant
from torch import nn

FP8_STATIC = Recipe(
    "FP8-static",
    R.FP8().weight,
    TensorQuant(R.FP8().activation.spec, "static", "minmax"),
)
NARROW_STATIC = Recipe(  # int8 activations in [-127, 127]: Q -> Clip -> DQ
    "W8A8-narrow",
    R.W8A8().weight,
    TensorQuant(R.W8A8().activation.spec.replace(dtype="int8", quant_min=-127), "static", "minmax"),
)
RECIPES = [
    R.W8A8("minmax"),
    NARROW_STATIC,
    FP8_STATIC,
    R.W4A16(32),
    R.W4A16(32, symmetric=True),
    R.W8A16(),
    R.W8A16(32, symmetric=False),
    R.MXFP4(),
    R.MXFP8(),
    R.NVFP4(),
    R.Stretched(2, 32),
    R.Stretched(3, None),
]
# ONNX type of the weight codes each recipe writes
CODE_TYPES = {
    "W8A8": onnx.TensorProto.INT8,
    "W4A16-g32-asym": onnx.TensorProto.INT4,  # signed codes with a zero point
    "W4A16-g32": onnx.TensorProto.INT4,
    "W8A16-g32-asym": onnx.TensorProto.INT8,
    "MXFP4": onnx.TensorProto.INT8,  # fp4 value / 0.5 (onnxruntime has no fp4 DQ kernel)
    "MXFP8": onnx.TensorProto.FLOAT8E4M3FN,
    "FP8-static": onnx.TensorProto.FLOAT8E4M3FN,
}


def _prepared(recipe, net, batches):
    model = qkt.prepare(
        net.eval(), Recipe(recipe.name, recipe.weight, recipe.activation, recipe.weight)
    )
    if recipe.needs_calibration:
        qkt.calibrate(model, batches)
    return model


def _initializers(proto):
    return {t.name: t for t in proto.graph.initializer}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.name)
def test_exported_model_runs_in_onnxruntime_with_quantkit_weights(
    recipe, tiny_net, tiny_batches, tmp_path
):
    model = qkt.convert(_prepared(recipe, tiny_net, tiny_batches))
    path = tmp_path / "model.onnx"
    proto = export_onnx(model, (tiny_batches[0],), path, dynamic_shapes=({0: "batch"},))
    assert onnx.load(path) == proto
    report = onnx_parity(model, proto, [(b,) for b in tiny_batches])
    print(report.table())
    rows = report.rows
    weights = [r for r in rows if r.kind == "weight"]
    assert len(weights) == 4  # embedding, conv, fc1, fc2
    assert all(r.identical == r.elements for r in weights)
    activations = [r for r in rows if r.kind == "activation"]
    assert len(activations) == (3 if recipe.activation else 0)
    assert all((r.max_lsb_diff or 0) <= 1 for r in activations)
    (out,) = [r for r in rows if r.kind == "output"]
    assert out.max_abs_diff < 1e-3  # float summation order in Conv / Gemm, plus rare 1-LSB codes

    inits = _initializers(proto)
    for node in proto.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0].endswith("qweight.codes"):
            codes = inits[node.input[0]]
            if recipe.name in CODE_TYPES:
                assert codes.data_type == CODE_TYPES[recipe.name]
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            group = recipe.weight.spec.group_size
            assert (attrs.get("block_size", 0) or None) == group
            if recipe.weight.spec.granularity != ("per_tensor",):
                assert attrs["axis"] == (1 if group else 0)
        if node.op_type == "QuantizeLinear":
            assert list(inits[node.input[1]].dims) == []  # constant per-tensor scale
            assert node.input[1] in inits and node.input[2] in inits


def test_prepared_and_converted_models_export_alike(tiny_net, tiny_batches):
    prepared = _prepared(R.W8A8("minmax"), tiny_net, tiny_batches)
    from_prepared = export_onnx(prepared, (tiny_batches[0],))
    from_converted = export_onnx(qkt.convert(prepared), (tiny_batches[0],))
    assert _initializers(from_prepared).keys() == _initializers(from_converted).keys()
    for name, t in _initializers(from_prepared).items():
        other = onnx.numpy_helper.to_array(_initializers(from_converted)[name])
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(t), other)


def test_native_fp4_weights_dequantize_exactly_in_the_onnx_reference_evaluator(
    tiny_net, tiny_batches
):
    model = qkt.convert(_prepared(R.NVFP4(), tiny_net, tiny_batches))
    proto = export_onnx(model, (tiny_batches[0],), native_fp4=True)
    fc1 = model.fc1.qweight().detach().numpy()
    (node,) = [n for n in proto.graph.node if n.input[0] == "fc1.qweight.codes"]
    inits = _initializers(proto)
    assert inits[node.input[0]].data_type == onnx.TensorProto.FLOAT4E2M1
    graph = onnx.helper.make_graph(
        [node],
        "dq",
        [],
        [onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)],
        [inits[n] for n in node.input],
    )
    dq = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 23)])
    (got,) = ReferenceEvaluator(dq).run(None, {})
    np.testing.assert_array_equal(got, fc1)


class _Quantizer(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.fq = qkt.FakeQuantize(TensorQuant(spec, "static", "minmax"))

    def forward(self, x):
        return self.fq(x)


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_activation_codes_follow_the_onnx_rule_and_differ_only_where_it_differs(dtype):
    """ONNX rounds x / s, quantkit (like torch) rounds x * fp32(1 / s). Both rules are
    computed here in numpy: ORT must equal the first, quantkit the second, and any
    difference must be a 1-LSB step where the two quotients round apart."""
    mapping = "asymmetric" if dtype == "uint8" else "symmetric"
    model = _Quantizer(qkt.SpecArgs(dtype=dtype, mapping=mapping))
    g = torch.Generator().manual_seed(3)
    batches = [torch.randn(1 << 18, generator=g) * 3 for _ in range(4)]
    qkt.calibrate(model, batches[:1])
    # values next to every rounding boundary (k + 1/2) * scale, where the rules can part
    scale = model.fq.scale.float()
    ties = ((torch.arange(-300, 300) + 0.5) * scale).float()
    batches.append(torch.cat([ties, ties.nextafter(ties + 1), ties.nextafter(ties - 1)]))
    proto = export_onnx(model, (batches[0],), dynamic_shapes=({0: "n"},))
    (act,) = [
        r for r in onnx_parity(model, proto, [(b,) for b in batches]).rows if r.kind == "activation"
    ]

    scale = np.float32(scale.item())
    zp = float(model.fq.zero_point.item()) if model.fq.zero_point.numel() else 0.0
    lo, hi = (0, 255) if dtype == "uint8" else (-128, 127)
    x = torch.cat(batches).numpy()
    onnx_rule = np.clip(np.rint(x / scale) + zp, lo, hi)  # np.rint: half to even
    torch_rule = np.clip(np.rint(x * (np.float32(1) / scale)) + zp, lo, hi)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    ours = torch.cat([model(b) for b in batches]).detach().numpy()
    theirs = np.concatenate([session.run(None, {"x": b.numpy()})[0] for b in batches])
    np.testing.assert_array_equal(theirs, ((onnx_rule - zp) * scale).astype(np.float32))
    np.testing.assert_array_equal(ours, ((torch_rule - zp) * scale).astype(np.float32))
    rules_differ = int((onnx_rule != torch_rule).sum())
    print(f"{rules_differ} of {x.size} codes differ between the two rules")
    assert act.lsb_diffs == rules_differ
    assert act.max_lsb_diff <= 1
    assert 0 < rules_differ < 1e-3 * x.size  # rare: a quotient one ulp from a .5 boundary


def test_dynamic_quantizers_are_refused_with_their_name(tiny_net, tiny_batches):
    model = qkt.quantize_(tiny_net.eval(), R.W8A8Dynamic())
    with pytest.raises(NotExportable, match=r"quantizer 'conv\.input_fake_quant'.*calibrate"):
        export_onnx(model, (tiny_batches[0],))


def test_uncalibrated_model_is_refused(tiny_net, tiny_batches):
    model = qkt.prepare(tiny_net.eval(), R.W8A8())
    with pytest.raises(RuntimeError, match="calibrate"):
        export_onnx(model, (tiny_batches[0],))


def test_non_float32_models_are_refused(tiny_net, tiny_batches):
    model = qkt.quantize_(tiny_net.eval().to(torch.bfloat16), R.W4A16(32))
    with pytest.raises(NotExportable, match=r"'embed\.weight' is torch\.bfloat16.*float32"):
        export_onnx(model, (tiny_batches[0],))


def test_two_axis_blocks_are_refused_naming_the_weight(tiny_batches):
    spec = qkt.SpecArgs(dtype="int8", granularity=("per_block", (4, 32)))
    net = nn.Sequential(nn.Linear(64, 8))
    model = qkt.quantize_(net.eval(), Recipe("blocks", TensorQuant(spec)))
    with pytest.raises(NotExportable, match=r"weight '0\.qweight'.*one axis"):
        export_onnx(model, (torch.randn(2, 64),))


def test_old_opsets_are_refused(tiny_net, tiny_batches):
    with pytest.raises(ValueError, match="opset=20.*21"):
        export_onnx(qkt.quantize_(tiny_net, R.W8A16()), (tiny_batches[0],), opset=20)


def test_failed_write_leaves_the_previous_file_and_no_temporary(
    tiny_net, tiny_batches, tmp_path, monkeypatch
):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous")

    def disk_full(proto, f):
        with open(f, "wb") as out:
            out.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(onnx, "save_model", disk_full)
    with pytest.raises(OSError, match="disk full"):
        export_onnx(qkt.quantize_(tiny_net.eval(), R.W8A16()), (tiny_batches[0],), path)
    assert os.listdir(tmp_path) == ["model.onnx"]
    assert path.read_bytes() == b"previous"


def test_written_file_has_the_usual_permissions(tiny_net, tiny_batches, tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(qkt.quantize_(tiny_net.eval(), R.W8A16()), (tiny_batches[0],), path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
