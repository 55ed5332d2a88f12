"""quantize_checkpoint: a checkpoint quantized block by block from its safetensors,
never holding more than one block's float weights, gives the tensors the in-memory
workflow gives (round to nearest: prepare -> convert -> save_pretrained; GPTQ: the
sequential engine), bit for bit, in a sharded folder transformers loads; a budget
below one block is refused before anything is written."""

import json

import pytest
import quantkit.torch as qkt
import torch
from quantkit.torch.offload import parse_bytes, quantize_checkpoint
from safetensors import safe_open
from tiny_llama import tiny_llama_config
from transformers import AutoModelForCausalLM, LlamaForCausalLM

SKIP_HEAD = '{"scheme": "W4A16", "rules": [{"match": "lm_head", "scheme": "skip"}]}'


def save_llama(folder, layers=4):
    """A seeded 4-block Llama in bfloat16, saved in several shards."""
    config = tiny_llama_config()
    config.num_hidden_layers = layers
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder, max_shard_size="200KB")
    assert (folder / "model.safetensors.index.json").exists()


def batches(count=3):
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, 256, (2, 48), generator=g) for _ in range(count)]


def tensors(folder) -> dict[str, torch.Tensor]:
    """Every tensor of every safetensors file in ``folder`` (one file or shards)."""
    out = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as opened:
            out |= {k: opened.get_tensor(k) for k in opened.keys()}
    return out


def assert_same_tensors(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, name
        assert torch.equal(got[name], value), name


def test_round_to_nearest_equals_the_in_memory_workflow(tmp_path):
    save_llama(tmp_path / "float")
    report = quantize_checkpoint(tmp_path / "float", tmp_path / "offloaded", qkt.recipes.W4A16(32))
    assert report.blocks == 4 and report.shards == 5 and not report.gptq
    assert report.round_to_nearest == ["lm_head"]  # outside the blocks: rounded, reported
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "float", dtype=torch.bfloat16)
    qkt.convert(qkt.prepare(model, qkt.recipes.W4A16(32)))
    qkt.save_pretrained(model, tmp_path / "in_memory")
    assert_same_tensors(tensors(tmp_path / "offloaded"), tensors(tmp_path / "in_memory"))
    # The merged config targets every quantized module, as the one-write config does.
    groups = json.loads((tmp_path / "offloaded" / "config.json").read_text())
    expected = json.loads((tmp_path / "in_memory" / "config.json").read_text())
    targets = groups["quantization_config"]["config_groups"]["group_0"]["targets"]
    assert sorted(targets) == sorted(
        expected["quantization_config"]["config_groups"]["group_0"]["targets"]
    )


def test_gptq_block_by_block_equals_the_sequential_engine_and_loads(tmp_path):
    save_llama(tmp_path / "float")
    recipe = qkt.recipe_from_text(SKIP_HEAD)
    report = quantize_checkpoint(
        tmp_path / "float",
        tmp_path / "offloaded",
        recipe,
        batches(),
        algorithms=[qkt.GPTQ()],
        max_memory="8GiB",
    )
    assert len(report.gptq) == 4 * 7 and not report.round_to_nearest
    assert report.peak_rss_bytes <= report.budget_bytes
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "float", dtype=torch.bfloat16).eval()
    qkt.prepare(model, recipe)
    qkt.gptq(model, batches(), sequential=True)
    qkt.convert(model)
    qkt.save_pretrained(model, tmp_path / "in_memory")
    assert_same_tensors(tensors(tmp_path / "offloaded"), tensors(tmp_path / "in_memory"))
    # transformers loads the sharded folder (through compressed-tensors) and runs it
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "offloaded", dtype=torch.bfloat16)
    with torch.no_grad():
        logits = loaded(batches()[0]).logits
    assert torch.isfinite(logits).all()
    assert (tmp_path / "offloaded" / "config.json").exists()


def test_a_budget_below_one_block_is_refused_before_anything_is_written(tmp_path):
    save_llama(tmp_path / "float")
    with pytest.raises(ValueError, match=r"max_memory 0.00 GiB is below what one block needs"):
        quantize_checkpoint(
            tmp_path / "float",
            tmp_path / "out",
            qkt.recipes.W4A16(32),
            batches(),
            algorithms=[qkt.GPTQ()],
            max_memory="1MiB",
        )
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["float"]  # no parts left behind


def test_refusals_name_the_problem(tmp_path):
    save_llama(tmp_path / "float", layers=1)
    with pytest.raises(ValueError, match="GPTQ needs calibration batches"):
        quantize_checkpoint(
            tmp_path / "float", tmp_path / "o", qkt.recipes.W4A16(32), algorithms=[qkt.GPTQ()]
        )
    with pytest.raises(ValueError, match="AWQ changes float weights across blocks"):
        quantize_checkpoint(
            tmp_path / "float",
            tmp_path / "o",
            qkt.recipes.W4A16(32),
            batches(),
            algorithms=[qkt.AWQ()],
        )
    (tmp_path / "o").mkdir()
    with pytest.raises(FileExistsError, match="replace=True"):
        quantize_checkpoint(tmp_path / "float", tmp_path / "o", qkt.recipes.W4A16(32))
    for text, expected in [("2GiB", 2 * 2**30), ("512MiB", 512 * 2**20), ("1.5GB", 1_500_000_000)]:
        assert parse_bytes(text) == expected
    with pytest.raises(ValueError, match="is not a size"):
        parse_bytes("lots")
