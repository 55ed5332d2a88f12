"""AWQ: searched per-channel scales folded into the layer before keep the float
model's function and lower the quantized model's error below round-to-nearest,
measured as KL divergence from the float model's next-token distribution."""

import copy

import pytest
import quantkit.torch as qkt
import torch
from quantkit.torch.awq import awq
from tiny_llama import save_tiny_llama
from transformers import AutoModelForCausalLM


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    save_tiny_llama(folder, dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():  # activation outliers in a few channels, as real LLMs have
        for layer in model.model.layers:
            layer.input_layernorm.weight[:4] = 12.0
            layer.post_attention_layernorm.weight[:4] = 12.0
    return model


def batches(count, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (2, 32), generator=g) for _ in range(count)]


def test_awq_keeps_the_float_function_and_beats_round_to_nearest(llama):
    recipe = qkt.recipes.W4A16(32)
    smoothed = copy.deepcopy(llama)
    chosen = awq(smoothed, batches(4, seed=1), recipe)
    assert set(chosen) >= {"model.layers.0.input_layernorm", "model.layers.0.mlp.up_proj"}
    # grouped-query attention: v_proj (2 heads) and o_proj (4 heads) differ in width
    assert "model.layers.0.self_attn.v_proj" not in chosen
    held_out = batches(2, seed=9)
    with torch.no_grad():
        for ids in held_out:
            torch.testing.assert_close(
                smoothed(ids).logits, llama(ids).logits, rtol=1e-4, atol=1e-4
            )
    rtn = qkt.quantize_(copy.deepcopy(llama), recipe)
    awq_model = qkt.quantize_(smoothed, recipe)
    rtn_kl = qkt.evaluate_causal_lm(rtn, llama, held_out).kl_mean
    awq_kl = qkt.evaluate_causal_lm(awq_model, llama, held_out).kl_mean
    assert awq_kl < rtn_kl, (awq_kl, rtn_kl)


def test_awq_needs_mappings_for_other_models():
    net = torch.nn.Sequential(torch.nn.Linear(8, 8))
    with pytest.raises(ValueError, match="give mappings"):
        awq(net, [torch.randn(4, 8)], qkt.recipes.W4A16(8))
