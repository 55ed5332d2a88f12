"""A small Llama built from a transformers config (random init) and quantized by
`quantkit quantize` loads in transformers (through compressed-tensors) with
logits equal, bit for bit, to the float model whose Linear weights quantkit
fake-quantizes; tied embeddings are refused by name where quantizing them
would not load as written."""

import json

import pytest
import quantkit as qk
import torch
from cli_schemes import spec_of
from tiny_llama import save_tiny_llama
from transformers import AutoModelForCausalLM

SCHEMES = [
    "int8",
    "int6-g128",
    "int5-g64",
    "int4-g32",
    "int4-g32-signed",
    "int8-g32-signed",
    "int3-g32",
    "int2-g64",
    "fp8",
    "fp8-channel",
    "mxfp8",
    "mxfp4",
    "nvfp4",
]


def save_llama(folder, *, tied: bool):
    save_tiny_llama(folder, tied=tied)


def fake_quantized_reference(folder, spec, dtype, keep=()):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name not in keep:
                weight = module.weight
                weight.copy_(qk.fake_quantize(weight, qk.choose_qparams(weight, spec)))
    return model


@pytest.mark.parametrize("scheme", SCHEMES)
def test_quantized_llama_loads_with_quantkit_logits(tmp_path, run, scheme):
    save_llama(tmp_path / "llama", tied=False)
    run("quantize", tmp_path / "llama", "-o", tmp_path / "q", "-s", scheme, "-q")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "q", dtype=torch.bfloat16).eval()
    reference = fake_quantized_reference(tmp_path / "llama", spec_of(scheme)[0], torch.bfloat16)
    ids = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, expected = loaded(ids).logits, reference(ids).logits
    assert torch.equal(got, expected)


def test_tied_llama_keeps_its_embedding_and_loads(tmp_path, run):
    save_llama(tmp_path / "llama", tied=True)
    run("quantize", tmp_path / "llama", "-o", tmp_path / "q", "-s", "int4-g32", "-q")
    config = json.loads((tmp_path / "q" / "config.json").read_text())
    assert config["tie_word_embeddings"] is True
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "q", dtype=torch.bfloat16).eval()
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    # the tied lm_head is the float embedding in both
    spec = spec_of("int4-g32")[0]
    reference = fake_quantized_reference(tmp_path / "llama", spec, torch.bfloat16, keep=["lm_head"])
    ids = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, reference(ids).logits)


def test_quantizing_a_tied_embedding_is_refused_by_name(tmp_path, run):
    save_llama(tmp_path / "llama", tied=True)
    result = run(
        "quantize",
        tmp_path / "llama",
        "-o",
        tmp_path / "q",
        "-s",
        "int8",
        "--embeddings",
        expect=1,
    )
    assert "tie_word_embeddings" in result.stderr
    assert "model.embed_tokens.weight" in result.stderr
    assert not (tmp_path / "q").exists()


def test_asymmetric_groups_hit_the_known_transformers_limit(tmp_path, run):
    """Our asymmetric layout is compressed-tensors' own (its dequantizer decodes it
    bit for bit, test_stock_readers.py), but transformers 5.25 registers the zero
    point unpacked and refuses the packed one that compressed-tensors writes
    (vllm-project/llm-compressor#1618): llm-compressor's asymmetric W4A16 fails
    the same way. Should a later transformers load it, this test says so."""
    save_llama(tmp_path / "llama", tied=False)
    run("quantize", tmp_path / "llama", "-o", tmp_path / "q", "-s", "int4-g128-asym", "-q")
    with pytest.raises(RuntimeError, match="mismatched_sizes"):
        AutoModelForCausalLM.from_pretrained(tmp_path / "q", dtype=torch.bfloat16)
