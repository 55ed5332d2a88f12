"""Evaluation helpers reproduce hand-computed perplexity, KL divergence, top-1
agreement, delta p and embedding agreement exactly, and run on a real quantized
causal LM."""

import math

import pytest
import quantkit.torch as qkt
import torch
from torch import nn

LN2 = math.log(2)


class FixedLogits(nn.Module):
    """Next-token log-probabilities `probs` at every position, whatever the tokens (in
    float64, which the evaluation keeps, so the hand values hold to double precision)."""

    def __init__(self, probs):
        super().__init__()
        self.logits = torch.tensor(probs, dtype=torch.float64).log()

    def forward(self, ids):
        return self.logits.expand(*ids.shape, -1)


def test_causal_lm_statistics_equal_the_hand_values():
    # reference p = (1/2, 1/4, 1/4), model q = (1/4, 1/2, 1/4); tokens 0 1 2 score
    # targets 1 (q 1/2, p 1/4) and 2 (q 1/4, p 1/4).
    model, reference = FixedLogits([0.25, 0.5, 0.25]), FixedLogits([0.5, 0.25, 0.25])
    result = qkt.evaluate_causal_lm(model, reference, [torch.tensor([[0, 1, 2]])])
    assert result.tokens == 2
    assert result.perplexity == pytest.approx(2**1.5, rel=1e-12)  # exp(1.5 ln 2)
    assert result.reference_perplexity == pytest.approx(4.0, rel=1e-12)
    # KL(p || q) = 1/2 ln 2 + 1/4 ln(1/2) = ln 2 / 4 at both positions
    for value in (result.kl_mean, result.kl_p99, result.kl_max):
        assert value == pytest.approx(LN2 / 4, rel=1e-12)
    assert result.top1_agreement == 0.0  # argmax q = 1, argmax p = 0
    assert result.delta_p_mean == pytest.approx(0.125, rel=1e-12)  # (1/4 + 0) / 2
    assert result.delta_p_rms == pytest.approx(math.sqrt(0.0625 / 2), rel=1e-12)
    assert "KL divergence mean" in result.table()


def test_masked_positions_are_not_scored_and_identical_models_agree():
    model = FixedLogits([0.5, 0.25, 0.25])
    batch = {
        "input_ids": torch.tensor([[0, 1, 2, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1, 0]]),
    }
    result = qkt.evaluate_causal_lm(model, model, [batch], forward=lambda m, b: m(b["input_ids"]))
    assert result.tokens == 2
    assert result.kl_max == 0.0 and result.top1_agreement == 1.0 and result.delta_p_mean == 0.0
    assert result.perplexity == result.reference_perplexity
    with pytest.raises(ValueError, match="no position"):
        qkt.evaluate_causal_lm(model, model, [torch.tensor([[3]])])


def test_embedding_agreement_equals_the_hand_values():
    reference_embeddings = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], dtype=torch.float64)
    moved = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 0.9]], dtype=torch.float64)  # 1 turned
    result = qkt.evaluate_embeddings(
        moved, reference_embeddings, [0], forward=lambda embeddings, _batch: embeddings
    )
    cos1 = 0.1 / math.hypot(0.9, 0.1)
    cos2 = 0.9 / math.hypot(0.1, 0.9)
    assert result.inputs == 3
    assert result.mean_cosine == pytest.approx((1 + cos1 + cos2) / 3, rel=1e-12)
    assert result.min_cosine == pytest.approx(cos1, rel=1e-12)
    # nearest neighbours: reference 0->1, 1->0, 2->1; moved 0->2, 1->2, 2->1
    assert result.neighbour_agreement == pytest.approx(1 / 3)


def test_a_quantized_llama_is_close_to_its_float_reference(tmp_path):
    from tiny_llama import save_tiny_llama
    from transformers import AutoModelForCausalLM

    save_tiny_llama(tmp_path)
    reference = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    model = qkt.quantize_(
        AutoModelForCausalLM.from_pretrained(tmp_path).eval(), qkt.recipes.W4A16(32)
    )
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 256, (2, 24), generator=g) for _ in range(3)]
    result = qkt.evaluate_causal_lm(model, reference, batches)
    assert result.tokens == 3 * 2 * 23
    assert 0 < result.kl_mean < result.kl_max and result.top1_agreement > 0.5
    assert math.isfinite(result.perplexity)


def test_tokenizer_dicts_calibrate_without_a_custom_forward(tmp_path):
    """Dict batches (a tokenizer's output) run as model(**batch) in calibration,
    GPTQ and evaluation alike."""
    from tiny_llama import save_tiny_llama
    from transformers import AutoModelForCausalLM

    save_tiny_llama(tmp_path, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    model = qkt.prepare(AutoModelForCausalLM.from_pretrained(tmp_path).eval(), qkt.recipes.W8A8())
    g = torch.Generator().manual_seed(0)
    batches = [
        {
            "input_ids": torch.randint(0, 256, (2, 16), generator=g),
            "attention_mask": torch.ones(2, 16),
        }
        for _ in range(2)
    ]
    qkt.calibrate(model, batches)
    qkt.convert(model)
    result = qkt.evaluate_causal_lm(model, reference, batches)
    assert result.tokens == 2 * 2 * 15 and result.kl_mean > 0
