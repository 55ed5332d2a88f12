"""GPTQ on all-MiniLM-L6-v2 with few calibration sentences: W4A16 g128 calibrated on
21 sentences (every tenth), evaluated on the other 189, for the options that matter
there: one pass or block by block (sequential), MSE-searched group scales, and the
damping of the Hessian (which is rank-deficient for the 1536-wide down projections at
this token count)."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import quantkit.torch as qkt
import torch
from quantkit.torch.gptq import gptq

from ..models import minilm


@dataclass(frozen=True)
class Setting:
    label: str
    symmetric: bool
    scale_search: str | None = None
    gptq: bool = True
    sequential: bool = False
    damp: float = 0.01


SETTINGS = [
    Setting("round to nearest", False, gptq=False),
    Setting("GPTQ, one pass, damping 0.01", False),
    Setting("GPTQ, sequential, damping 0.01", False, sequential=True),
    Setting("GPTQ, sequential, MSE scales, damping 0.01", False, "mse", sequential=True),
    Setting("GPTQ, sequential, MSE scales, damping 0.1", False, "mse", sequential=True, damp=0.1),
    Setting(
        "GPTQ, sequential, MSE scales, damping 0.1, symmetric",
        True,
        "mse",
        sequential=True,
        damp=0.1,
    ),
]


def run() -> tuple[list[tuple[Setting, float, float]], int, int]:
    """(setting, mean cosine, min cosine) per setting; calibration and held-out counts."""
    model = minilm.load_model().eval()
    tokenizer = minilm.Tokenizer()
    texts = minilm.sentences()
    calibration = minilm.batches(texts[::10], tokenizer)
    held_out_texts = [t for i, t in enumerate(texts) if i % 10]
    held_out = minilm.batches(held_out_texts, tokenizer)
    reference = minilm.embed(model, held_out)
    rows = []
    for setting in SETTINGS:
        recipe = qkt.recipes.W4A16(
            128, symmetric=setting.symmetric, scale_search=setting.scale_search
        )
        m = qkt.prepare(copy.deepcopy(model), recipe)
        if setting.gptq:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the rank-deficiency warning, expected here
                gptq(m, calibration, forward=lambda mm, b: mm(*b), sequential=setting.sequential,
                     damp=setting.damp)  # fmt: skip
        qkt.convert(m)
        cosine = torch.nn.functional.cosine_similarity(minilm.embed(m, held_out), reference)
        rows.append((setting, cosine.mean().item(), cosine.min().item()))
    return rows, len(texts[::10]), len(held_out_texts)
