"""`quantkit quantize` writes the compressed-tensors layout: decoding each file
with the safetensors package and the layout rules alone (no quantkit code)
reproduces quantkit.fake_quantize of the original weight bit for bit."""

import json

import pytest
import quantkit as qk
import torch
from cli_schemes import spec_of
from safetensors import safe_open
from safetensors.torch import load_file

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def unpack_int32_rows(words: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """compressed-tensors pack-quantized: each row one dense little-endian bit stream of
    offset codes (code i at bits [i*bits, (i+1)*bits)), padded to whole int32 words."""
    stream = words.contiguous().view(torch.uint8)  # little-endian bytes of each row
    bit = (stream.unsqueeze(-1).long() >> torch.arange(8)) & 1
    bit = bit.reshape(*words.shape[:-1], -1)[..., : count * bits]
    fields = (bit.reshape(*words.shape[:-1], count, bits) << torch.arange(bits)).sum(-1)
    return fields - (1 << (bits - 1))


def unpack_nibbles(packed: torch.Tensor) -> torch.Tensor:
    codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(packed.shape[0], -1).long()
    sign = torch.where(codes & 8 != 0, -1.0, 1.0)
    return sign * E2M1[codes & 7]


def e8m0(byte: torch.Tensor) -> torch.Tensor:
    return torch.where(byte == 0, torch.tensor(2.0**-127), torch.exp2(byte.double() - 127).float())


def decode(tensors: dict, name: str, scheme: str, dtype: torch.dtype) -> torch.Tensor:
    spec, kind = spec_of(scheme)
    if kind == "pack":
        rows, cols = tensors[name + "_shape"].tolist()
    elif kind in ("fp8", "mx8"):
        rows, cols = tensors[name].shape
    else:  # two FP4 codes a byte; compressed-tensors writes no shape tensor here
        rows, cols = tensors[name + "_packed"].shape[0], 2 * tensors[name + "_packed"].shape[1]
        assert name + "_shape" not in tensors
    group = cols // tensors[name + "_scale"].shape[-1]  # scales are [rows, cols / group] or [1]
    if kind == "pack":
        bits = int(spec.dtype.removeprefix("int"))
        q = unpack_int32_rows(tensors[name + "_packed"], bits, cols).to(dtype)
        scale = tensors[name + "_scale"].repeat_interleave(group, dim=1)
        if spec.mapping == "stretched":
            return (q + 0.5) * scale
        if spec.mapping == "asymmetric":
            zp = unpack_int32_rows(tensors[name + "_zero_point"].T, bits, rows).T
            return (q - zp.repeat_interleave(group, dim=1).to(dtype)) * scale
        return q * scale
    assert name + "_shape" not in tensors
    if kind == "fp8":
        scale = tensors[name + "_scale"]
        return (tensors[name].float() * scale).to(dtype)
    if kind == "mx8":
        scale = e8m0(tensors[name + "_scale"]).repeat_interleave(32, dim=1)
        return tensors[name].to(dtype) * scale.to(dtype)
    values = unpack_nibbles(tensors[name + "_packed"])
    if kind == "mx4":
        return values.to(dtype) * e8m0(tensors[name + "_scale"]).repeat_interleave(32, dim=1).to(
            dtype
        )
    scale = tensors[name + "_scale"].float().repeat_interleave(16, dim=1)
    return (values * scale / tensors[name + "_global_scale"]).to(dtype)


SCHEMES = [
    "int8",
    "int4-g32",
    "int4-g128-asym",
    "int4-g64",
    "int2-g32-asym",
    "int2-g64",
    "int3-g64-asym",
    "int5-g32",
    "int6-g128-asym",
    "int4-g64:search=mse",
    "int3-g32-asym:search=mse",
    "int4-g32-asym:search=hqq",
    "stretched2-g64",
    "stretched3-g32",
    "fp8",
    "fp8-channel",
    "mxfp8",
    "mxfp4",
    "nvfp4",
]


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_dequantized_file_equals_fake_quantize(tmp_path, run, make_checkpoint, scheme, dtype_name):
    dtype = DTYPES[dtype_name]
    original = make_checkpoint(tmp_path / "in.safetensors", dtype)
    out = tmp_path / "out.safetensors"
    run("quantize", tmp_path / "in.safetensors", "-o", out, "--scheme", scheme, "--quiet")
    tensors = load_file(str(out))  # the reference reader accepts the file
    quantized = [n for n in original if n.endswith("proj.weight")]
    for name in quantized:
        spec, _ = spec_of(scheme)
        expected = qk.fake_quantize(original[name], qk.choose_qparams(original[name], spec))
        got = decode(tensors, name, scheme, dtype)
        assert got.dtype == dtype
        bits = torch.int32 if dtype == torch.float32 else torch.int16
        assert torch.equal(got.view(bits), expected.view(bits)), name
    for name in [
        "model.layers.0.mlp.down_proj.bias",
        "model.norm.weight",
        "model.embed_tokens.weight",
        "model.position_ids",
    ]:
        assert torch.equal(tensors[name], original[name]), f"{name} must be copied unchanged"
    with safe_open(str(out), "pt") as handle:
        config = json.loads(handle.metadata()["quantization_config"])
    assert config["quant_method"] == "compressed-tensors"
    assert config["quantkit"]["group_0"]["scheme"] == scheme


def test_report_matches_python_error_metrics(tmp_path, run, make_checkpoint):
    original = make_checkpoint(tmp_path / "in.safetensors", torch.float32)
    run(
        "quantize",
        tmp_path / "in.safetensors",
        "-o",
        tmp_path / "q.safetensors",
        "-s",
        "int4-g32",
        "-q",
    )
    result = run(
        "report",
        tmp_path / "in.safetensors",
        tmp_path / "q.safetensors",
        "--plot",
        tmp_path / "plots",
    )
    spec, _ = spec_of("int4-g32")
    for name in ["model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight"]:
        w = original[name]
        diff = w.double() - qk.fake_quantize(w, qk.choose_qparams(w, spec)).double()
        sqnr = 10 * torch.log10(w.double().pow(2).sum() / diff.pow(2).sum()).item()
        line = next(line for line in result.stdout.splitlines() if line.startswith(name))
        assert f"{sqnr:9.2f}" in line
    assert (tmp_path / "plots/sqnr.svg").read_text().startswith("<svg")
