"""quantize_(model, recipe, calibration=..., algorithms=[...]) is the manual sequence in
one call: the same codes, qparams and outputs as awq -> prepare -> gptq -> calibrate ->
convert written out; what is missing is refused by name."""

import copy

import pytest
import quantkit.torch as qkt
import torch
from quantkit.torch.awq import awq
from quantkit.torch.gptq import gptq
from quantkit.torch.smoothquant import smooth_quant
from tiny_llama import save_tiny_llama
from transformers import AutoModelForCausalLM


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llama")
    save_tiny_llama(folder, dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def batches(count, seed, as_dicts=False):
    g = torch.Generator().manual_seed(seed)
    ids = [torch.randint(0, 256, (2, 64), generator=g) for _ in range(count)]
    return (
        [{"input_ids": i, "attention_mask": torch.ones_like(i)} for i in ids] if as_dicts else ids
    )


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if torch.is_tensor(sa[key]):
            assert torch.equal(sa[key], sb[key]), key


def test_awq_and_gptq_in_one_call_equal_the_manual_sequence(llama):
    recipe = qkt.recipes.W4A16(32)
    data = batches(4, seed=1, as_dicts=True)
    one = qkt.quantize_(
        copy.deepcopy(llama), recipe, calibration=data, algorithms=[qkt.AWQ(), qkt.GPTQ()]
    )
    manual = copy.deepcopy(llama)
    awq(manual, data, recipe, sequential=True)  # AWQ() too runs block by block here
    qkt.prepare(manual, recipe)
    gptq(manual, data, sequential=True)  # GPTQ() runs block by block on a model with blocks
    qkt.convert(manual)
    same_state(one, manual)
    reports = qkt.coverage(one).algorithms
    assert set(reports) == {"AWQ", "GPTQ"} and len(reports["GPTQ"]) == 15  # 2 x 7 + lm_head


def test_smoothquant_and_static_activations_calibrate_in_the_same_call(llama):
    data = batches(3, seed=2)
    one = qkt.quantize_(
        copy.deepcopy(llama),
        qkt.recipes.W8A8(),
        calibration=data,
        algorithms=[qkt.SmoothQuant(0.8)],
    )
    manual = copy.deepcopy(llama)
    smooth_quant(manual, data, 0.8)
    qkt.prepare(manual, qkt.recipes.W8A8())
    qkt.calibrate(manual, data)
    qkt.convert(manual)
    same_state(one, manual)
    rows = {r.module: r for r in qkt.coverage(one).rows}
    assert rows["model.layers.0.self_attn.q_proj"].batches == 3


def test_what_is_missing_is_refused_by_name(llama):
    with pytest.raises(ValueError, match="GPTQ needs calibration batches"):
        qkt.quantize_(copy.deepcopy(llama), qkt.recipes.W4A16(32), algorithms=[qkt.GPTQ()])
    with pytest.raises(ValueError, match="pass calibration=batches"):
        qkt.quantize_(copy.deepcopy(llama), qkt.recipes.W8A8())
    with pytest.raises(TypeError, match="is not one of"):
        qkt.quantize_(
            copy.deepcopy(llama), qkt.recipes.W4A16(32), calibration=[], algorithms=["gptq"]
        )
    with pytest.raises(ValueError, match="may appear once"):
        qkt.quantize_(
            copy.deepcopy(llama), qkt.recipes.W4A16(32), calibration=batches(1, 0),
            algorithms=[qkt.GPTQ(), qkt.GPTQ(damp=0.1)],
        )  # fmt: skip
