"""Post-training quantization of all-MiniLM-L6-v2, measured on sentence embeddings.

For each recipe: model bytes, cosine similarity of every sentence's embedding
to the float32 one (mean and min over the committed sentence set), and top-1
nearest-neighbour agreement (the fraction of sentences whose closest other
sentence is the same as in float32). Static activations are calibrated on
every third sentence (as are SmoothQuant and GPTQ).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from quantkit.torch import calibrate, convert, model_bytes, prepare, recipes
from quantkit.torch.gptq import gptq
from quantkit.torch.smoothquant import smooth_quant

from ..models import minilm


@dataclass(frozen=True)
class Variant:
    label: str
    recipe: recipes.Recipe | None  # None: the float32 model itself
    smooth_alpha: float | None = None
    gptq: bool = False


VARIANTS = [
    Variant("fp32", None),
    Variant("W8A8 (static, histogram)", recipes.W8A8()),
    Variant("W8A8 + SmoothQuant a=0.5", recipes.W8A8(), 0.5),
    Variant("W8A8 + SmoothQuant a=0.8", recipes.W8A8(), 0.8),
    Variant("W8A8 dynamic per-token", recipes.W8A8Dynamic()),
    Variant("W4A16 g128 (round to nearest)", recipes.W4A16(128, symmetric=False)),
    Variant("W4A16 g128 + GPTQ", recipes.W4A16(128, symmetric=False), gptq=True),
    Variant(
        "W4A16 g128 + GPTQ, int8 embeddings",
        recipes.with_embeddings(recipes.W4A16(128, symmetric=False)),
        gptq=True,
    ),
    Variant("8da4w g32", recipes.Int8DynActInt4Weight(32)),
    Variant("FP8 e4m3 (dynamic)", recipes.FP8()),
    Variant("MXFP8", recipes.MXFP8()),
    Variant("MXFP4", recipes.MXFP4()),
    Variant("NVFP4", recipes.NVFP4()),
]


@dataclass
class Result:
    label: str
    recipe: str
    model_bytes: int
    mean_cosine: float
    min_cosine: float
    nn_agreement: float
    seconds: float
    model: torch.nn.Module
    embeddings: torch.Tensor


def _forward(model, batch):
    return model(*batch)


def nearest_neighbours(embeddings: torch.Tensor) -> torch.Tensor:
    sim = embeddings @ embeddings.T
    sim.fill_diagonal_(-float("inf"))
    return sim.argmax(dim=1)


def quantize_variant(model, variant: Variant, calibration) -> torch.nn.Module:
    m = copy.deepcopy(model)
    if variant.recipe is None:
        return m
    if variant.smooth_alpha is not None:
        smooth_quant(m, calibration, variant.smooth_alpha, forward=_forward)
    prepare(m, variant.recipe)
    if variant.gptq:
        gptq(m, calibration, forward=_forward)
    if variant.recipe.needs_calibration:
        calibrate(m, calibration, forward=_forward)
    return convert(m)


def run(
    variants: list[Variant] = VARIANTS,
    on_result: Callable[[Result], None] | None = None,
) -> tuple[list[Result], dict]:
    """Runs every variant (``on_result`` is told of each as it finishes); returns the
    results and the shared inputs: model, texts, batches, calibration batches and the
    float32 reference embeddings."""
    model = minilm.load_model()
    tokenizer = minilm.Tokenizer()
    texts = minilm.sentences()
    batches = minilm.batches(texts, tokenizer)
    calibration = minilm.batches(texts[::3], tokenizer)
    reference = minilm.embed(model, batches)
    ref_nn = nearest_neighbours(reference)
    results = []
    for variant in variants:
        start = time.perf_counter()
        m = quantize_variant(model, variant, calibration)
        emb = minilm.embed(m, batches)
        seconds = time.perf_counter() - start
        cos = (emb * reference).sum(dim=1) / (emb.norm(dim=1) * reference.norm(dim=1))
        agree = (nearest_neighbours(emb) == ref_nn).float().mean().item()
        result = Result(
            variant.label,
            variant.recipe.describe() if variant.recipe else "float32",
            model_bytes(m),
            cos.mean().item(),
            cos.min().item(),
            agree,
            seconds,
            m,
            emb,
        )
        results.append(result)
        if on_result:
            on_result(result)
    shared = {
        "model": model,
        "texts": texts,
        "batches": batches,
        "calibration": calibration,
        "reference": reference,
    }
    return results, shared
