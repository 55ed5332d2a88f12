"""all-MiniLM-L6-v2 (real weights, offline): our plain-module encoder equals
sentence-transformers, and PTQ reaches the quality targets."""

import os

import pytest
from quantkit.experiments import minilm_ptq
from quantkit.models import minilm
from quantkit.torch import recipes as R


@pytest.fixture(scope="module")
def inputs():
    tokenizer = minilm.Tokenizer()
    texts = minilm.sentences()
    return minilm.load_model(), texts, minilm.batches(texts, tokenizer)


def test_sentence_set_is_large_and_fixed():
    texts = minilm.sentences()
    assert len(texts) >= 200 and len(set(texts)) == len(texts)


def test_encoder_equals_sentence_transformers(inputs, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model, texts, batches = inputs
    reference = SentenceTransformer(str(minilm.model_dir()), device="cpu").encode(
        texts, batch_size=32, convert_to_tensor=True
    )
    ours = minilm.embed(model, batches)
    assert (ours - reference).abs().max() < 1e-5
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.fixture(scope="module")
def results():
    variants = [
        minilm_ptq.Variant("W8A8 + SmoothQuant", R.W8A8(), 0.8),
        minilm_ptq.Variant("W4A16 g128 + GPTQ", R.W4A16(128), gptq=True),
        minilm_ptq.Variant("W4A16 g128", R.W4A16(128)),
    ]
    rows, _ = minilm_ptq.run(variants)
    return {r.label: r for r in rows}


def test_w8a8_smoothquant_target(results):
    assert results["W8A8 + SmoothQuant"].mean_cosine >= 0.995


def test_w4a16_g128_target_with_gptq(results):
    gptq, rtn = results["W4A16 g128 + GPTQ"], results["W4A16 g128"]
    assert gptq.mean_cosine >= 0.98
    assert gptq.mean_cosine > rtn.mean_cosine and gptq.min_cosine > rtn.min_cosine


def test_int4_model_is_smaller(results):
    full = 90_000_000
    assert results["W4A16 g128"].model_bytes < 0.62 * full  # embeddings stay float32
    assert all(0.0 < r.nn_agreement <= 1.0 for r in results.values())
