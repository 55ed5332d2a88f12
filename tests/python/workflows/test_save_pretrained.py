"""`quantkit.torch.save_pretrained` writes a converted model as compressed-tensors:
transformers loads it (through compressed-tensors) with logits equal, bit for bit,
to the converted model's, GPTQ's codes included (nothing is re-chosen);
compressed-tensors' dequantizer returns exactly the converted weights; the C++
tool reads it back; what cannot be written is refused by name, before any file
appears."""

import json
import subprocess

import pytest
import quantkit.torch as qkt
import torch
from compressed_tensors.entrypoints.convert.converters.ct_dequantizer import (
    CompressedTensorsDequantizer,
)
from quantkit.__main__ import native_tool
from quantkit.torch.gptq import gptq
from safetensors.torch import load_file
from tiny_llama import save_tiny_llama
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

RECIPES = {
    "W4A16 g128 symmetric": lambda: qkt.recipes.W4A16(128, symmetric=True),
    "W4A16 g32 symmetric": lambda: qkt.recipes.W4A16(32, symmetric=True),
    "W8A16 per channel": lambda: qkt.recipes.W8A16(),
    "MXFP4": qkt.recipes.MXFP4,
    "MXFP8": qkt.recipes.MXFP8,
    "NVFP4": qkt.recipes.NVFP4,
}


def float_llama(folder, *, tied=False):
    """A small Llama saved and loaded back in bfloat16 (so the reference and the
    reloaded model share every buffer dtype, rotary frequencies included)."""
    save_tiny_llama(folder, tied=tied)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()


def batches(count=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (2, 32), generator=g) for _ in range(count)]


def assert_loads_with_same_logits(model, folder):
    """transformers' logits equal quantkit's bit for bit when quantkit multiplies in torch's
    order (the stock reader's F.linear); in quantkit's own order they agree closely."""
    loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
    ids = batches(1, seed=9)[0]
    with torch.no_grad():
        got = loaded(ids).logits
        with qkt.torch_matmul():
            assert torch.equal(got, model(ids).logits)
        assert_close_logits(got, model(ids).logits, 0.9999)


def assert_close_logits(a, b, cosine):
    assert (
        torch.nn.functional.cosine_similarity(a.float().flatten(), b.float().flatten(), dim=0)
        > cosine
    )


@pytest.mark.parametrize("recipe", RECIPES)
def test_saved_recipe_loads_in_transformers_bit_for_bit(tmp_path, recipe):
    model = qkt.convert(qkt.prepare(float_llama(tmp_path / "float"), RECIPES[recipe]()))
    qkt.save_pretrained(model, tmp_path / "saved")
    assert_loads_with_same_logits(model, tmp_path / "saved")


def test_gptq_codes_survive_saving(tmp_path):
    model = qkt.prepare(float_llama(tmp_path / "float"), qkt.recipes.W4A16(32, symmetric=True))
    assert gptq(model, batches())
    qkt.convert(model)
    qkt.save_pretrained(model, tmp_path / "saved")
    assert_loads_with_same_logits(model, tmp_path / "saved")
    # compressed-tensors' own dequantizer returns exactly each converted weight
    reader = CompressedTensorsDequantizer(tmp_path / "saved", dtype=torch.bfloat16)
    decoded = reader.validate(load_file(str(tmp_path / "saved" / "model.safetensors")))
    for name, module in model.named_modules():
        if isinstance(module, qkt.QuantizedLinear):
            assert torch.equal(decoded[f"{name}.weight"], module.weight), name


@pytest.mark.parametrize(
    ("recipe", "shown"),
    [
        (lambda: qkt.recipes.W4A16(64, symmetric=True), "int4-g64"),  # a CLI scheme
        (lambda: qkt.recipes.W8A16(group_size=64), "int8-g64"),
        (lambda: qkt.recipes.W8A16(group_size=16), "int8 symmetric per_group(16"),  # not one
    ],
)
def test_the_checkpoint_tool_reads_what_python_wrote(tmp_path, recipe, shown):
    model = qkt.convert(qkt.prepare(float_llama(tmp_path / "float"), recipe()))
    qkt.save_pretrained(model, tmp_path / "saved")
    result = subprocess.run(
        [str(native_tool()), "inspect", str(tmp_path / "saved")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert shown in result.stdout


@pytest.mark.parametrize(
    ("recipe", "scheme"),
    [
        (lambda: qkt.recipes.W4A16(128, symmetric=True), "int4-g128"),
        (qkt.recipes.NVFP4, "nvfp4"),
        (qkt.recipes.MXFP4, "mxfp4"),
    ],
    ids=["int4-g128", "nvfp4", "mxfp4"],
)
def test_python_and_the_checkpoint_tool_write_the_same_bytes(tmp_path, recipe, scheme):
    """One writer, two faces: the same weights quantized by a Python recipe and by
    `quantkit quantize` give byte-identical tensors (NVFP4: the tool's streamed first
    pass finds the same per-tensor scale as Python's whole-tensor choice)."""
    model = qkt.convert(qkt.prepare(float_llama(tmp_path / "float"), recipe()))
    qkt.save_pretrained(model, tmp_path / "python")
    result = subprocess.run(
        [
            str(native_tool()),
            "quantize",
            str(tmp_path / "float"),
            "-o",
            str(tmp_path / "tool"),
            "-s",
            scheme,
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    python = load_file(str(tmp_path / "python" / "model.safetensors"))
    tool = load_file(str(tmp_path / "tool" / "model.safetensors"))
    projections = [n for n in python if "_proj.weight" in n]
    assert len(projections) >= 14 * 2  # codes and scales of 7 projections in 2 layers
    for name in projections:
        assert python[name].dtype == tool[name].dtype, name
        assert torch.equal(python[name].view(torch.uint8), tool[name].view(torch.uint8)), name


def test_tied_embeddings_are_written_once_and_load(tmp_path):
    model = float_llama(tmp_path / "float", tied=True)
    lm_head_is_float = {"lm_head": None}
    model = qkt.convert(
        qkt.prepare(model, qkt.recipes.W4A16(32, symmetric=True), overrides=lm_head_is_float)
    )
    qkt.save_pretrained(model, tmp_path / "saved")
    stored = load_file(str(tmp_path / "saved" / "model.safetensors"))
    assert "lm_head.weight" not in stored and "model.embed_tokens.weight" in stored
    assert_loads_with_same_logits(model, tmp_path / "saved")


def test_what_compressed_tensors_cannot_express_is_refused_before_writing(tmp_path):
    fp6 = qkt.Recipe("FP6", qkt.TensorQuant(qkt.SpecArgs(dtype="fp6_e3m2", scale_dtype="float32")))
    model = qkt.convert(qkt.prepare(float_llama(tmp_path / "float"), fp6))
    with pytest.raises(ValueError, match="cannot be written as compressed-tensors"):
        qkt.save_pretrained(model, tmp_path / "fp6")
    assert not (tmp_path / "fp6").exists()


def test_stretched_grids_are_written_but_stock_readers_refuse_them(tmp_path):
    model = qkt.convert(qkt.prepare(float_llama(tmp_path / "float"), qkt.recipes.Stretched(2)))
    qkt.save_pretrained(model, tmp_path / "saved")
    with pytest.raises(Exception, match="does not match|validation error|grid"):
        AutoModelForCausalLM.from_pretrained(tmp_path / "saved", dtype=torch.bfloat16)
    result = subprocess.run(
        [str(native_tool()), "inspect", str(tmp_path / "saved")], capture_output=True, text=True
    )
    assert result.returncode == 0 and "stretched" in result.stdout, result.stderr


def test_an_existing_folder_is_replaced_only_when_asked(tmp_path):
    model = qkt.convert(qkt.prepare(float_llama(tmp_path / "float"), qkt.recipes.MXFP8()))
    qkt.save_pretrained(model, tmp_path / "saved")
    with pytest.raises(ValueError, match="replace=True"):
        qkt.save_pretrained(model, tmp_path / "saved")
    qkt.save_pretrained(model, tmp_path / "saved", replace=True)
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "compressed-tensors"
    with pytest.raises(ValueError, match="not a checkpoint quantkit wrote"):
        qkt.save_pretrained(model, tmp_path / "float", replace=True)  # the float model's folder


@pytest.mark.parametrize("recipe", ["W4A16 g32 symmetric", "MXFP4", "NVFP4", "W8A16 per channel"])
def test_load_pretrained_restores_the_same_codes(tmp_path, recipe):
    model = qkt.convert(qkt.prepare(float_llama(tmp_path / "float"), RECIPES[recipe]()))
    qkt.save_pretrained(model, tmp_path / "saved")
    skeleton = AutoModelForCausalLM.from_pretrained(tmp_path / "float", dtype=torch.bfloat16)
    reloaded = qkt.load_pretrained(skeleton.eval(), tmp_path / "saved")
    for name, module in model.named_modules():
        if isinstance(module, qkt.QuantizedLinear):
            again = reloaded.get_submodule(name)
            assert isinstance(again, qkt.QuantizedLinear), name
            assert torch.equal(again.qweight.packed, module.qweight.packed), name
            assert torch.equal(again.qweight.scale, module.qweight.scale), name
            assert again.qweight.spec_key == module.qweight.spec_key, name
    ids = batches(1, seed=5)[0]
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)


def test_load_pretrained_refuses_a_model_it_does_not_fill(tmp_path):
    model = qkt.convert(qkt.prepare(float_llama(tmp_path / "float"), qkt.recipes.MXFP8()))
    qkt.save_pretrained(model, tmp_path / "saved")
    config = LlamaConfig.from_pretrained(tmp_path / "float")
    config.num_hidden_layers = 3  # one layer the checkpoint does not hold
    bigger = LlamaForCausalLM(config).to(torch.bfloat16)
    with pytest.raises(ValueError, match="lacks tensors the model has"):
        qkt.load_pretrained(bigger, tmp_path / "saved")
    config.num_hidden_layers = 1  # no place for layer 1's tensors
    with pytest.raises(ValueError, match="no nn.Linear|no place for"):
        qkt.load_pretrained(LlamaForCausalLM(config).to(torch.bfloat16), tmp_path / "saved")


def test_smoothquant_folded_model_saves_and_loads(tmp_path):
    """SmoothQuant folds into the RMSNorms (no extra modules), so the smoothed,
    quantized model is still a Llama that transformers loads, bit for bit."""
    from quantkit.torch.smoothquant import smooth_quant

    model = float_llama(tmp_path / "float")
    how = smooth_quant(model, batches())
    assert all(v.startswith("folded into") for v in how.values())
    model = qkt.convert(qkt.prepare(model, qkt.recipes.W8A16()))
    qkt.save_pretrained(model, tmp_path / "saved")
    assert_loads_with_same_logits(model, tmp_path / "saved")


def test_large_models_are_sharded_as_transformers_shards_them(tmp_path):
    model = qkt.convert(
        qkt.prepare(float_llama(tmp_path / "float"), qkt.recipes.W4A16(32, symmetric=True))
    )
    qkt.save_pretrained(model, tmp_path / "saved", max_shard_bytes=100_000)
    names = sorted(p.name for p in (tmp_path / "saved").iterdir())
    shards = [n for n in names if n.startswith("model-") and n.endswith(".safetensors")]
    assert len(shards) > 1 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    index = json.loads((tmp_path / "saved" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    assert_loads_with_same_logits(model, tmp_path / "saved")
    skeleton = AutoModelForCausalLM.from_pretrained(tmp_path / "float", dtype=torch.bfloat16)
    reloaded = qkt.load_pretrained(skeleton.eval(), tmp_path / "saved")
    ids = batches(1, seed=3)[0]
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)


def stock_input_quantization(model, loaded):
    """Makes quantkit's converted `model` quantize each layer's input with
    compressed-tensors' own runtime function (forward_quantize of the layer that
    transformers loaded: its scale choice and its round(x / s)) instead of its own."""
    from compressed_tensors.quantization.lifecycle.forward import forward_quantize

    stock = dict(loaded.named_modules())
    for name, module in model.named_modules():
        if isinstance(module, qkt.QuantizedLinear) and module.input_fake_quant is not None:
            layer = stock[name]
            args = layer.quantization_scheme.input_activations
            module.input_fake_quant.enabled = False
            module.register_forward_pre_hook(
                lambda _m, inputs, layer=layer, args=args: (
                    forward_quantize(layer, inputs[0], "input", args),
                )
            )


def assert_differences_come_from_input_rounding(model, folder, seed):
    """transformers' logits agree closely with the converted model's, and equal them bit
    for bit once the converted model quantizes its inputs with the stock runtime's own
    function: everything else (weights, codes, the rest of the model) is identical.
    Leaves `model` on the stock rule, so tests call it last."""
    loaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
    ids = batches(1, seed=seed)[0]
    with torch.no_grad():
        got, ours = loaded(ids).logits, model(ids).logits
        cosine = torch.nn.functional.cosine_similarity(
            got.float().flatten(), ours.float().flatten(), dim=0
        )
        assert cosine > 0.995
        stock_input_quantization(model, loaded)
        with qkt.torch_matmul():  # and the stock reader's F.linear
            assert torch.equal(model(ids).logits, got)


def assert_decodes_reloads_and_differs_by_input_rounding(model, tmp_path):
    """For a model saved in tmp_path / "saved" that quantizes its inputs: compressed-tensors
    decodes every weight exactly, load_pretrained restores the same logits, and
    transformers differs only by its input rounding."""
    folder = tmp_path / "saved"
    reader = CompressedTensorsDequantizer(folder, dtype=torch.bfloat16)
    decoded = reader.validate(load_file(str(folder / "model.safetensors")))
    for name, module in model.named_modules():
        if isinstance(module, qkt.QuantizedLinear):
            assert torch.equal(decoded[f"{name}.weight"], module.weight), name
    reloaded = qkt.load_pretrained(float_llama(tmp_path / "float2"), folder)
    ids = batches(1, seed=5)[0]
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)
    assert_differences_come_from_input_rounding(model, folder, seed=4)


DYNAMIC_INPUT_RECIPES = {
    "W8A8Dynamic": (qkt.recipes.W8A8Dynamic, "INT8_W8A8", "int-quantized"),
    "FP8 per row": (lambda: qkt.recipes.FP8("row"), "FP8_DYNAMIC", "float-quantized"),
}


@pytest.mark.parametrize("recipe", DYNAMIC_INPUT_RECIPES)
def test_dynamic_input_schemes_are_written_as_compressed_tensors_presets(tmp_path, recipe):
    """Weights decode bit for bit and the config carries compressed-tensors' own
    preset arguments. transformers then quantizes the inputs with its own rule
    (round(x / s) against quantkit's round(x * (1/s)), in its own dtype), so the
    logits agree closely, and bit for bit once quantkit's model uses that rule."""
    from compressed_tensors.quantization import quant_scheme

    make, preset, fmt = DYNAMIC_INPUT_RECIPES[recipe]
    model = qkt.convert(qkt.prepare(float_llama(tmp_path / "float"), make()))
    qkt.save_pretrained(model, tmp_path / "saved")
    group = json.loads((tmp_path / "saved" / "config.json").read_text())["quantization_config"][
        "config_groups"
    ]["group_0"]
    assert group["format"] == fmt
    expected = getattr(quant_scheme, preset)
    for role in ("weights", "input_activations"):
        written = {k: v for k, v in group[role].items() if k != "observer"}
        assert written == expected[role].model_dump(mode="json"), role
    assert_decodes_reloads_and_differs_by_input_rounding(model, tmp_path)


def test_int4_weights_with_int8_inputs_are_written_int_quantized(tmp_path):
    """8da4w (QAT's int8 per-token inputs, int4 per-group weights) as compressed-tensors
    writes W4A8: int-quantized, one int4 code per int8."""
    model = qkt.convert(
        qkt.prepare(float_llama(tmp_path / "float"), qkt.recipes.Int8DynActInt4Weight(32))
    )
    qkt.save_pretrained(model, tmp_path / "saved")
    group = json.loads((tmp_path / "saved" / "config.json").read_text())["quantization_config"][
        "config_groups"
    ]["group_0"]
    assert group["format"] == "int-quantized"
    assert (group["weights"]["num_bits"], group["weights"]["group_size"]) == (4, 32)
    assert group["input_activations"]["strategy"] == "token"
    stored = load_file(str(tmp_path / "saved" / "model.safetensors"))
    codes = stored["model.layers.0.self_attn.q_proj.weight"]
    assert codes.dtype == torch.int8 and -8 <= codes.min() and codes.max() <= 7
    assert_decodes_reloads_and_differs_by_input_rounding(model, tmp_path)


def calibrated(model, recipe):
    prepared = qkt.prepare(model, recipe)
    qkt.calibrate(prepared, batches(3, seed=7))
    return qkt.convert(prepared)


@pytest.mark.parametrize("smooth", [False, True], ids=["W8A8", "SmoothQuant W8A8"])
def test_static_inputs_are_written_with_their_calibrated_qparams(tmp_path, smooth):
    """W8A8 with calibrated uint8 per-tensor inputs: compressed-tensors' static int8
    arguments, `<layer>.input_scale` in the weight dtype and the zero point shifted to
    int8 (the same grid); transformers' logits differ from quantkit's only by its input
    rounding; load_pretrained restores the quantizers with the same qparams."""
    from compressed_tensors.quantization import QuantizationArgs
    from quantkit.torch.smoothquant import smooth_quant

    model = float_llama(tmp_path / "float")
    if smooth:
        smooth_quant(model, batches(3, seed=7))
    model = calibrated(model, qkt.recipes.W8A8(scale_dtype="bfloat16"))
    qkt.save_pretrained(model, tmp_path / "saved")
    group = json.loads((tmp_path / "saved" / "config.json").read_text())["quantization_config"][
        "config_groups"
    ]["group_0"]
    expected = QuantizationArgs(
        num_bits=8, type="int", symmetric=False, strategy="tensor", dynamic=False
    )
    assert group["input_activations"] == expected.model_dump(mode="json")
    stored = load_file(str(tmp_path / "saved" / "model.safetensors"))
    q_proj = model.model.layers[0].self_attn.q_proj.input_fake_quant
    scale = stored["model.layers.0.self_attn.q_proj.input_scale"]
    assert scale.dtype == torch.bfloat16 and scale.float().item() == q_proj.scale.float().item()
    zero_point = stored["model.layers.0.self_attn.q_proj.input_zero_point"]
    assert zero_point.dtype == torch.int8 and zero_point.item() == q_proj.zero_point.item() - 128

    reloaded = qkt.load_pretrained(float_llama(tmp_path / "float2"), tmp_path / "saved")
    restored = reloaded.model.layers[0].self_attn.q_proj.input_fake_quant
    assert torch.equal(restored.scale, q_proj.scale)
    assert torch.equal(restored.zero_point, q_proj.zero_point)
    ids = batches(1, seed=5)[0]
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, model(ids).logits)
    assert_differences_come_from_input_rounding(model, tmp_path / "saved", seed=4)  # last: hooks


def test_static_input_scales_the_weight_dtype_cannot_hold_are_refused(tmp_path):
    model = calibrated(float_llama(tmp_path / "float"), qkt.recipes.W8A8())
    with pytest.raises(ValueError, match="scale_dtype='bfloat16'"):
        qkt.save_pretrained(model, tmp_path / "saved")
    assert not (tmp_path / "saved").exists()
