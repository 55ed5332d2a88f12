"""Evaluation of quantized models against their float reference.

Causal language models (:func:`evaluate_causal_lm`): on given token batches, the
perplexity of each model, the KL divergence of the quantized model's next-token
distribution from the reference's (mean, 99th percentile, max over tokens), top-1
token agreement and the change of the probability of the true next token (Δp, mean
and RMS), as llama.cpp's ``perplexity --kl-divergence`` reports them. Batches stream
through both models one at a time; only one number per token is kept (for the
percentile), never the logits.

Encoders (:func:`evaluate_embeddings`): per-input cosine similarity of the
embeddings (mean, min) and nearest-neighbour agreement among the inputs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class CausalLMEvaluation:
    """Next-token statistics over ``tokens`` predicted positions (natural log)."""

    tokens: int
    perplexity: float
    reference_perplexity: float
    kl_mean: float
    kl_p99: float
    kl_max: float
    top1_agreement: float
    delta_p_mean: float
    delta_p_rms: float
    kl_percentiles: list[float] = field(default_factory=list)  # KL at 0, 1, ..., 100 %

    def table(self) -> str:
        rows = [
            ("tokens", f"{self.tokens}"),
            ("perplexity", f"{self.perplexity:.4f} (reference {self.reference_perplexity:.4f})"),
            ("KL divergence mean", f"{self.kl_mean:.6f}"),
            ("KL divergence 99%", f"{self.kl_p99:.6f}"),
            ("KL divergence max", f"{self.kl_max:.6f}"),
            ("top-1 agreement", f"{100 * self.top1_agreement:.2f} %"),
            ("delta p mean", f"{100 * self.delta_p_mean:+.3f} %"),
            ("delta p RMS", f"{100 * self.delta_p_rms:.3f} %"),
        ]
        return "\n".join(f"{name:<20} {value}" for name, value in rows)

    def to_dict(self) -> dict:
        return asdict(self)

    def plot(self, path: str | os.PathLike, title: str = "") -> None:
        """PNG of the distribution of per-token KL divergence (its cumulative share, log
        scale), with the summary numbers in the title; written atomically."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .report import _save_figure

        levels = [p / 100 for p in range(len(self.kl_percentiles))]
        values = [max(v, 1e-12) for v in self.kl_percentiles]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(values, levels)
        ax.set_xscale("log")
        ax.set_xlabel("KL divergence per token (nats)")
        ax.set_ylabel("share of tokens at or below")
        ax.axvline(self.kl_mean, color="gray", linestyle="--", linewidth=0.8, label="mean")
        ax.legend(loc="lower right")
        summary = (
            f"KL mean {self.kl_mean:.4g}, top-1 {100 * self.top1_agreement:.1f} %, "
            f"PPL {self.perplexity:.3g} (ref {self.reference_perplexity:.3g})"
        )
        ax.set_title(f"{title}\n{summary}" if title else summary, fontsize=9)
        _save_figure(fig, path)
        plt.close(fig)


def _ids_and_mask(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, dict):
        return batch["input_ids"], batch.get("attention_mask")
    return batch, None


def _logits(model: nn.Module, batch: Any, forward) -> torch.Tensor:
    """Logits in float32 (float64 when the model gives float64), one batch at a time."""
    out = forward(model, batch) if forward is not None else _default_forward(model, batch)
    logits = out.logits if hasattr(out, "logits") else out
    return logits if logits.dtype == torch.float64 else logits.float()


def _default_forward(model: nn.Module, batch: Any):
    return model(**batch) if isinstance(batch, dict) else model(batch)


@torch.no_grad()
def evaluate_causal_lm(
    model: nn.Module,
    reference: nn.Module,
    batches: Iterable[Any],
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> CausalLMEvaluation:
    """Compares ``model`` (e.g. quantized) with ``reference`` (e.g. float) on ``batches``:
    token-id tensors ``[batch, sequence]`` or tokenizer dicts (``input_ids``, optional
    ``attention_mask``; masked positions are not scored). Position t's logits predict token
    t + 1. ``forward(model, batch)`` returns logits or an output with ``.logits``."""
    nll = ref_nll = agree = 0.0
    delta_sum = delta_squares = 0.0
    kls: list[torch.Tensor] = []
    count = 0
    for batch in batches:
        ids, mask = _ids_and_mask(batch)
        logp = torch.log_softmax(_logits(model, batch, forward)[:, :-1], dim=-1).double()
        ref_logp = torch.log_softmax(_logits(reference, batch, forward)[:, :-1], dim=-1).double()
        target = ids[:, 1:]
        keep = torch.ones_like(target, dtype=torch.bool)
        if mask is not None:
            keep = (mask[:, 1:] != 0) & (mask[:, :-1] != 0)
        logp, ref_logp, target = logp[keep], ref_logp[keep], target[keep]
        true = logp.gather(1, target[:, None])[:, 0]
        ref_true = ref_logp.gather(1, target[:, None])[:, 0]
        nll -= true.sum().item()
        ref_nll -= ref_true.sum().item()
        kls.append((ref_logp.exp() * (ref_logp - logp)).sum(dim=1).clamp_min(0))
        agree += (logp.argmax(dim=1) == ref_logp.argmax(dim=1)).sum().item()
        delta = true.exp() - ref_true.exp()
        delta_sum += delta.sum().item()
        delta_squares += delta.square().sum().item()
        count += target.numel()
    if count == 0:
        raise ValueError("evaluate_causal_lm: the batches hold no position to score")
    kl = torch.cat(kls).double()
    return CausalLMEvaluation(
        tokens=count,
        perplexity=math.exp(nll / count),
        reference_perplexity=math.exp(ref_nll / count),
        kl_mean=kl.mean().item(),
        kl_p99=torch.quantile(kl, 0.99).item(),
        kl_max=kl.max().item(),
        top1_agreement=agree / count,
        delta_p_mean=delta_sum / count,
        delta_p_rms=math.sqrt(delta_squares / count),
        kl_percentiles=torch.quantile(kl, torch.linspace(0, 1, 101, dtype=kl.dtype)).tolist(),
    )


@dataclass
class EmbeddingEvaluation:
    """Per-input cosine of the embeddings and nearest-neighbour agreement."""

    inputs: int
    mean_cosine: float
    min_cosine: float
    neighbour_agreement: float

    def table(self) -> str:
        return (
            f"{'inputs':<22} {self.inputs}\n{'mean cosine':<22} {self.mean_cosine:.5f}\n"
            f"{'min cosine':<22} {self.min_cosine:.5f}\n"
            f"{'nearest neighbour':<22} {100 * self.neighbour_agreement:.1f} % unchanged"
        )


def _nearest(embeddings: torch.Tensor) -> torch.Tensor:
    unit = torch.nn.functional.normalize(embeddings, dim=1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-float("inf"))
    return similarity.argmax(dim=1)


@torch.no_grad()
def evaluate_embeddings(
    model: nn.Module,
    reference: nn.Module,
    batches: Iterable[Any],
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> EmbeddingEvaluation:
    """Compares the embeddings ``forward(model, batch)`` (``[batch, dim]``; default
    ``model(batch)``) of ``model`` and ``reference``: cosine per input, and the share of
    inputs whose nearest other input (by cosine) is the same for both."""
    ours, theirs = [], []
    for batch in batches:
        ours.append(_embedding(model, batch, forward))
        theirs.append(_embedding(reference, batch, forward))
    a, b = torch.cat(ours), torch.cat(theirs)
    if a.shape[0] < 2:
        raise ValueError("evaluate_embeddings: needs at least two inputs")
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
    return EmbeddingEvaluation(
        inputs=a.shape[0],
        mean_cosine=cosine.mean().item(),
        min_cosine=cosine.min().item(),
        neighbour_agreement=(_nearest(a) == _nearest(b)).double().mean().item(),
    )


def _embedding(model: nn.Module, batch: Any, forward) -> torch.Tensor:
    out = forward(model, batch) if forward is not None else _default_forward(model, batch)
    return out.double().reshape(out.shape[0], -1)
