"""Mixed precision under a size budget on all-MiniLM-L6-v2: per-layer sensitivity from
one pass over the calibration sentences (every third), then for each uniform scheme's
size a per-layer mix of int3..int8 chosen for the least predicted output error;
both evaluated on the held-out sentences (the other two thirds)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import quantkit.torch as qkt
import torch

from ..models import minilm

CANDIDATES = ["int3-g128", "int4-g128", "int5-g128", "int6-g128", "int8"]
UNIFORM = ["int4-g128", "int4-g64", "int4-g32", "int5-g128"]


@dataclass
class Row:
    uniform: str
    bits_per_weight: float
    uniform_cosine: float
    uniform_error: float  # measured relative output error
    uniform_predicted: float | None
    mix_bits_per_weight: float
    mix_cosine: float
    mix_error: float
    mix_predicted: float
    mix: qkt.MixedPrecision


def _linear_weight_bytes(model: torch.nn.Module) -> int:
    return sum(
        b.numel() * b.element_size()
        for m in model.modules()
        if isinstance(m, qkt.QuantizedLinear)
        for b in m.qweight.buffers()
    )


def _only_linears(module, _name) -> bool:
    return isinstance(module, torch.nn.Linear)


def run():
    """(rows, timings): one row per uniform scheme; timings of the sensitivity pass and
    of one W8A8 calibration pass over the same sentences, in seconds."""
    model = minilm.load_model().eval()
    tokenizer = minilm.Tokenizer()
    texts = minilm.sentences()
    calibration = minilm.batches(texts[::3], tokenizer)
    held_out = minilm.batches([t for i, t in enumerate(texts) if i % 3], tokenizer)
    reference = minilm.embed(model, held_out)

    def forward(m, batch):
        return m(*batch)

    def measure(m):
        emb = minilm.embed(m, held_out)
        error = ((emb - reference).square().sum() / reference.square().sum()).item()
        return torch.nn.functional.cosine_similarity(emb, reference).mean().item(), error

    start = time.perf_counter()
    qkt.calibrate(qkt.prepare(copy.deepcopy(model), qkt.recipes.W8A8()), calibration, forward)
    calibration_seconds = time.perf_counter() - start
    sensitivity = qkt.layer_sensitivity(model, CANDIDATES, calibration, forward=forward)
    elements = sum(sensitivity.elements.values())
    rows = []
    for scheme in UNIFORM:
        uniform = qkt.quantize_(
            copy.deepcopy(model), qkt.ModelRecipe(scheme), filter_fn=_only_linears
        )
        size = _linear_weight_bytes(uniform)
        mix = qkt.mixed_precision(model, CANDIDATES, sensitivity=sensitivity, budget_bytes=size)
        mixed = qkt.quantize_(copy.deepcopy(model), mix.recipe, filter_fn=_only_linears)
        assert _linear_weight_bytes(mixed) == mix.bytes <= size
        u_cos, u_err = measure(uniform)
        m_cos, m_err = measure(mixed)
        predicted = (
            sum(sensitivity.error(layer, scheme) for layer in sensitivity.options)
            if scheme in CANDIDATES
            else None
        )
        rows.append(
            Row(scheme, 8 * size / elements, u_cos, u_err, predicted, mix.bits_per_weight,
                m_cos, m_err, mix.predicted_error, mix)
        )  # fmt: skip
    return rows, {"sensitivity": sensitivity.seconds, "calibration": calibration_seconds}
