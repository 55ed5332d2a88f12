"""Sequential (block-by-block) GPTQ: the first decoder block sees the float model's
inputs, so its result equals the one-pass GPTQ's bit for bit; later blocks see the
quantized blocks' outputs; only one block's Hessians are built at a time; blocks are
found for Hugging Face layouts and named otherwise."""

import copy
import os
import sys

import pytest
import quantkit.torch as qkt
import torch
from quantkit.torch.gptq import gptq
from quantkit.torch.sequential import block_list, capture_inputs
from tiny_llama import save_tiny_llama
from torch import nn
from transformers import AutoModelForCausalLM


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    save_tiny_llama(folder, dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.input_layernorm.weight[:4] = 12.0
    return model


def batches(count, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (2, 64), generator=g) for _ in range(count)]


def test_first_block_equals_one_pass_and_later_blocks_see_quantized_inputs(llama, monkeypatch):
    data = batches(4, 1)
    one_pass = qkt.prepare(copy.deepcopy(llama), qkt.recipes.W4A16(32))
    gptq(one_pass, data)
    calls = []
    gptq_module = sys.modules[
        "quantkit.torch.gptq"
    ]  # the module (the package exports the function)
    real = gptq_module._hessians
    monkeypatch.setattr(
        gptq_module,
        "_hessians",
        lambda m, layers, *a: calls.append(len(layers)) or real(m, layers, *a),
    )
    sequential = qkt.prepare(copy.deepcopy(llama), qkt.recipes.W4A16(32))
    reports = gptq(sequential, data, sequential=True, report=True)
    assert calls == [7, 7, 1]  # block 0, block 1, then lm_head: never all 15 at once
    assert [r.name for r in reports][-1] == "lm_head" and len(reports) == 15
    first, later = "model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"
    a, b = one_pass.get_submodule(first), sequential.get_submodule(first)
    assert torch.equal(a.weight, b.weight)
    assert not torch.equal(
        one_pass.get_submodule(later).weight, sequential.get_submodule(later).weight
    )
    # converted == prepared still holds
    ids = batches(1, 9)[0]
    with torch.no_grad():
        expected = sequential(ids).logits
        assert torch.equal(qkt.convert(sequential)(ids).logits, expected)


def test_block_inputs_are_captured_with_their_keyword_arguments(llama):
    name, blocks = block_list(llama)
    assert name == "model.layers" and len(blocks) == 2
    captured = capture_inputs(llama, blocks[0], batches(2, 3), None)
    assert len(captured) == 2
    args, kwargs = captured[0]
    assert args[0].shape == (2, 64, 128)
    assert "position_embeddings" in kwargs


def test_blocks_of_other_models_are_found_or_named():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            for stage in self.stages:
                x = stage(x)
            return self.head(x)

    assert block_list(Net())[0] == "stages"
    with pytest.raises(ValueError, match="not an nn.ModuleList"):
        block_list(Net(), "head")
    with pytest.raises(ValueError, match="no repeated blocks"):
        block_list(nn.Sequential(nn.Linear(2, 2)))


def test_an_activation_cache_on_disk_gives_the_same_weights(llama, capsys):
    data = batches(3, 4)
    in_memory = qkt.prepare(copy.deepcopy(llama), qkt.recipes.W4A16(32))
    gptq(in_memory, data, sequential=True)
    on_disk = qkt.prepare(copy.deepcopy(llama), qkt.recipes.W4A16(32))
    gptq(on_disk, data, sequential=True, max_cache_bytes=0, progress=True)
    pairs = zip(in_memory.named_parameters(), on_disk.named_parameters(), strict=True)
    for (name, a), (_, b) in pairs:
        assert torch.equal(a, b), name
    printed = capsys.readouterr().err
    assert (
        "block 2/2 model.layers.1" in printed and "0.0 MB in memory, 3 batches on disk" in printed
    )
    # Exact Hessian sums (two int64 limbs): q, k, v, o, gate, up read 128 inputs, down 256
    # (siblings counted apart), and the widest layer's working set, 16 bytes an entry
    hessians = (16 * (6 * 128**2 + 256**2) + 16 * 256**2) / 1e6
    assert f"statistics of one block {hessians:.1f} MB" in printed
    assert "measured: peak RSS" in printed


def test_the_cache_keeps_what_fits_and_removes_its_files():
    from quantkit.torch.sequential import ActivationCache

    item = ((torch.zeros(1000),), {"mask": torch.ones(500)})  # 6000 bytes
    cache = ActivationCache([item, item, item], max_bytes=13000)
    assert cache.on_disk == 1 and cache.peak_bytes == 12000
    folder = cache.folder.name
    assert torch.equal(cache[2][1]["mask"], item[1]["mask"])
    cache.close()
    assert not os.path.exists(folder)


def test_sequential_awq_matches_the_one_pass_search_on_the_first_block(llama):
    """Block 0 sees the same inputs either way: the same alphas and weights. Later blocks
    see the folded blocks' outputs, the float function up to rounding, so a near-tie in
    the search may go the other way; both keep the float model's function."""
    from quantkit.torch.awq import awq

    data = batches(3, 5)
    one_pass, sequential = copy.deepcopy(llama), copy.deepcopy(llama)
    alphas = awq(one_pass, data, qkt.recipes.W4A16(32))
    chosen = awq(sequential, data, qkt.recipes.W4A16(32), sequential=True)
    assert chosen.keys() == alphas.keys()
    first = [k for k in alphas if k.startswith("model.layers.0.")]
    assert first and all(chosen[k] == alphas[k] for k in first)
    same_first_block_and_float_function(one_pass, sequential, llama)


def test_sequential_smoothquant_matches_one_pass_on_the_first_block(llama):
    from quantkit.torch.smoothquant import smooth_quant

    data = batches(3, 6)
    one_pass, sequential = copy.deepcopy(llama), copy.deepcopy(llama)
    how = smooth_quant(one_pass, data, 0.8)
    assert smooth_quant(sequential, data, 0.8, sequential=True) == how
    same_first_block_and_float_function(one_pass, sequential, llama)


def same_first_block_and_float_function(one_pass, sequential, llama):
    """Block 0 identical in both; the folded model still computes the float function."""
    block = "model.layers.0"
    pairs = zip(
        one_pass.get_submodule(block).parameters(),
        sequential.get_submodule(block).parameters(),
        strict=True,
    )
    assert all(torch.equal(a, b) for a, b in pairs)
    ids = batches(1, 8)[0]
    with torch.no_grad():
        torch.testing.assert_close(sequential(ids).logits, llama(ids).logits, rtol=1e-4, atol=1e-4)
