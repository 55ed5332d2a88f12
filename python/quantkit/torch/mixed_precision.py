"""Per-layer sensitivity in one cheap pass, and mixed precision under a size budget.

:func:`layer_sensitivity` estimates, for every Linear layer and every candidate scheme,
how much the model's *output* would change if that layer alone were quantized with that
scheme, to first order: ``E ||J_i ΔY_i||²`` over the calibration batches, where ``ΔY_i``
is the change of the layer's output and ``J_i`` the Jacobian of the model output with
respect to it. With a random probe ``r ~ N(0, I)`` of the output's shape,
``(r · J_i ΔY_i)² = <ΔW_i, G_i>²`` in expectation, where ``G_i = ∂(r · f(x)) / ∂W_i`` is
the layer's weight gradient. Each sample of a batch (the first dimension of the layer's
input) gets its own term, from the layer's input and output gradient, so one forward
and one backward pass (of activation gradients only) per batch and probe score every
layer and every candidate at once (no pass per layer), with a variance that falls with
the number of samples. The scores are relative to the output's energy ``E ||f(x)||²``
and add over layers when the layers' errors are independent.

:func:`mixed_precision` then picks one candidate per layer so the predicted error is
least within a byte budget (a multiple-choice knapsack, solved by dynamic programming
over the budget), and returns the choice as a :class:`ModelRecipe` (a recipe file) with
its table.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import ops
from .converted import _stored_scale, _stored_zero_point
from .model_recipe import SKIP, ModelRecipe, recipe_by_name
from .workflow import multihead_attention_parts

Forward = Callable[[nn.Module, Any], Any]


@dataclass(frozen=True)
class LayerOption:
    scheme: str  # a scheme name, or "skip" (kept float)
    bytes: int  # the weight as stored (codes, scales, zero points)
    error: float  # predicted output error, relative to the output's energy


@dataclass
class Sensitivity:
    """Every considered layer's options; ``elements[module]`` weights each."""

    options: dict[str, list[LayerOption]]
    elements: dict[str, int]
    batches: int
    probes: int
    seconds: float

    def error(self, module: str, scheme: str) -> float:
        return next(o.error for o in self.options[module] if o.scheme == scheme)

    def table(self, top: int | None = None) -> str:
        schemes = list(dict.fromkeys(o.scheme for opts in self.options.values() for o in opts))
        width = max(len("layer"), *(len(m) for m in self.options))
        lines = [f"{'layer':<{width}}  " + "  ".join(f"{s:>16}" for s in schemes)]
        ranked = sorted(self.options, key=lambda m: -max(o.error for o in self.options[m]))
        for module in ranked[:top]:
            by_scheme = {o.scheme: o.error for o in self.options[module]}
            cells = [f"{by_scheme[s]:>16.3e}" if s in by_scheme else f"{'-':>16}" for s in schemes]
            lines.append(f"{module:<{width}}  " + "  ".join(cells))
        return "\n".join(lines)


def _output(result: Any) -> torch.Tensor:
    out = result.logits if hasattr(result, "logits") else result
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(
            f"layer_sensitivity: forward returned {type(out).__name__}; it must return the "
            "model output as a tensor (or an object with .logits)"
        )
    return out


def _default_forward(model: nn.Module, batch: Any):
    return model(**batch) if isinstance(batch, dict) else model(batch)


def _linears(model: nn.Module, filter_fn) -> list[tuple[str, nn.Linear]]:
    attention = multihead_attention_parts(model)  # never called: prepare keeps them float
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear)
        and id(m) not in attention
        and (filter_fn is None or filter_fn(m, name))
    ]


def _quantized(weight: torch.Tensor, scheme: str) -> tuple[torch.Tensor, int] | None:
    """(Δweight, stored bytes) of ``weight`` under ``scheme``; None where it cannot apply."""
    if scheme == SKIP:
        return torch.zeros_like(weight), weight.numel() * weight.element_size()
    rule = recipe_by_name(scheme).weight
    group = rule.spec.group_size
    if group is not None and weight.shape[1] % group:
        return None
    key = rule.spec.key()
    scale, zero_point, global_scale = ops.choose_qparams(weight, key)
    g = global_scale if global_scale.numel() else None
    fake = ops.fake_quantize(weight, scale, zero_point, key, ops.dtype_name(weight.dtype), g)
    # bytes as QuantizedWeight stores them: packed codes, scale, zero point, global scale
    stored = [_stored_scale(scale, key), _stored_zero_point(zero_point, key), global_scale]
    size = (weight.numel() * rule.spec.spec().bits + 7) // 8
    size += sum(t.numel() * t.element_size() for t in stored)
    return fake - weight, size


def layer_sensitivity(
    model: nn.Module,
    candidates: Iterable[str],
    batches: Iterable[Any],
    *,
    forward: Forward | None = None,
    probes: int = 1,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
    seed: int = 0,
) -> Sensitivity:
    """Predicted output error of each Linear layer under each candidate scheme (names of
    the shared vocabulary, or ``"skip"`` for float), from one forward and backward pass
    per batch and probe (see the module doc). ``forward(model, batch)`` returns the
    output (a tensor, or an object with ``.logits``); default ``model(batch)``, dict
    batches as keywords. Needs memory for one weight-sized difference per layer and
    candidate. The model is not changed."""
    candidates = list(dict.fromkeys(candidates))
    if not candidates:
        raise ValueError("layer_sensitivity: give at least one candidate scheme")
    if probes < 1:
        raise ValueError(f"probes={probes}: must be >= 1")
    start = time.perf_counter()
    layers = _linears(model, filter_fn)
    if not layers:
        raise ValueError("layer_sensitivity: the model holds no nn.Linear layer to score")
    deltas: dict[str, list[tuple[str, torch.Tensor, int]]] = {}
    with torch.no_grad():
        for name, layer in layers:
            options = [(c, _quantized(layer.weight.detach(), c)) for c in candidates]
            deltas[name] = [(c, d, size) for c, q in options if q is not None for d, size in [q]]
    forward = forward or _default_forward
    stacked = {
        name: torch.stack([d.float() for _, d, _ in deltas[name]]) if deltas[name] else None
        for name, _ in layers
    }
    sums = {name: torch.zeros(len(deltas[name]), dtype=torch.float64) for name, _ in layers}
    energy = 0.0
    count = 0
    generator = torch.Generator().manual_seed(seed)
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def capture(name):
        def hook(_module, args, out):
            inputs[name] = args[0].detach()
            if not out.requires_grad:
                out.requires_grad_(True)  # a leaf the probe's gradient reaches
            outputs[name] = out

        return hook

    handles = [layer.register_forward_hook(capture(name)) for name, layer in layers]
    saved = {id(p): p.requires_grad for p in model.parameters()}
    try:
        for p in model.parameters():
            p.requires_grad_(False)  # only activation gradients are needed
        for batch in batches:
            count += 1
            with torch.enable_grad():
                inputs.clear()
                outputs.clear()
                out = _output(forward(model, batch))
                energy += out.detach().double().square().sum().item()
                reached = [n for n, _ in layers if n in outputs and outputs[n].requires_grad]
                for probe in range(probes):
                    r = torch.randn(out.shape, generator=generator, dtype=out.dtype)
                    grads = torch.autograd.grad(
                        (out * r).sum(),
                        [outputs[n] for n in reached],
                        allow_unused=True,
                        retain_graph=probe + 1 < probes,
                    )
                    for name, g in zip(reached, grads, strict=True):
                        if g is not None and stacked[name] is not None:
                            sums[name] += _per_sample_scores(inputs[name], g, stacked[name])
    finally:
        for handle in handles:
            handle.remove()
        for p in model.parameters():
            p.requires_grad_(saved[id(p)])
    if count == 0:
        raise ValueError("layer_sensitivity: the batches are empty")
    if energy == 0:
        raise ValueError("layer_sensitivity: the model's output is all zeros on these batches")
    options = {
        name: [
            LayerOption(c, size, (sums[name][k] / probes / energy).item())
            for k, (c, _, size) in enumerate(deltas[name])
        ]
        for name, _ in layers
    }
    elements = {name: layer.weight.numel() for name, layer in layers}
    return Sensitivity(options, elements, count, probes, time.perf_counter() - start)


def _per_sample_scores(x: torch.Tensor, g: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Σ over samples of ``<ΔW_c, G_b>²`` for each candidate c, where ``G_b = g_bᵀ x_b``
    is sample b's weight gradient (samples along the first dimension): one sample per
    squared term, so the estimate's variance falls with the number of samples."""
    x = x.float().reshape(x.shape[0], -1, x.shape[-1])
    g = g.float().reshape(g.shape[0], -1, g.shape[-1])
    per_sample = torch.einsum("bto,bti->boi", g, x)  # [samples, out, in]
    dots = per_sample.reshape(per_sample.shape[0], -1) @ deltas.reshape(deltas.shape[0], -1).T
    return dots.double().square().sum(dim=0)


@dataclass
class MixedPrecision:
    """The chosen scheme per layer, as a recipe, with its predicted error and size."""

    choices: dict[str, LayerOption]
    budget_bytes: int
    sensitivity: Sensitivity
    recipe: ModelRecipe = field(init=False)

    def __post_init__(self) -> None:
        default = Counter(o.scheme for o in self.choices.values()).most_common(1)[0][0]
        rules = tuple(
            (re.escape(m), o.scheme) for m, o in self.choices.items() if o.scheme != default
        )
        self.recipe = ModelRecipe(scheme=default, rules=rules)

    @property
    def bytes(self) -> int:
        return sum(o.bytes for o in self.choices.values())

    @property
    def predicted_error(self) -> float:
        return sum(o.error for o in self.choices.values())

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.bytes / sum(self.sensitivity.elements.values())

    def table(self) -> str:
        width = max(len("layer"), *(len(m) for m in self.choices))
        lines = [f"{'layer':<{width}}  {'scheme':<26} {'bytes':>10} {'predicted error':>16}"]
        for module, o in self.choices.items():
            lines.append(f"{module:<{width}}  {o.scheme:<26} {o.bytes:>10} {o.error:>16.3e}")
        lines.append(
            f"total: {self.bytes} bytes ({self.bits_per_weight:.3f} bits per weight; budget "
            f"{self.budget_bytes}), predicted output error {self.predicted_error:.3e}"
        )
        return "\n".join(lines)


def choose_schemes(
    sensitivity: Sensitivity, budget_bytes: int, resolution: int = 32768
) -> dict[str, LayerOption]:
    """The least total predicted error within ``budget_bytes`` (a multiple-choice
    knapsack), the better of two solutions that both fit:

    - dynamic programming over the budget in ``resolution`` steps, each option's bytes
      rounded up to whole steps (exact when the budget is at most ``resolution`` bytes);
    - a greedy walk up each layer's lower convex hull of (bytes, error), by error saved
      per byte (near-optimal when layers are small against the budget, where rounding
      costs the first a little);

    each then given the best single upgrades that still fit."""
    modules = [m for m, opts in sensitivity.options.items() if opts]
    cheapest = sum(min(o.bytes for o in sensitivity.options[m]) for m in modules)
    if cheapest > budget_bytes:
        raise ValueError(
            f"budget {budget_bytes} bytes: the cheapest candidates need {cheapest} bytes for "
            "these layers; raise the budget or add a smaller candidate"
        )
    solutions = [
        _fill(
            sensitivity,
            _by_dynamic_programming(sensitivity, modules, budget_bytes, resolution),
            budget_bytes,
        ),
        _fill(sensitivity, _by_hull_greedy(sensitivity, modules, budget_bytes), budget_bytes),
    ]
    return min(solutions, key=lambda c: sum(o.error for o in c.values()))


def _hull(options: list[LayerOption]) -> list[LayerOption]:
    """The lower convex hull of (bytes, error), cheapest first."""
    frontier: list[LayerOption] = []
    for o in sorted(options, key=lambda o: (o.bytes, o.error)):
        if frontier and o.error >= frontier[-1].error:
            continue  # costs more, no better
        while len(frontier) >= 2:
            a, b = frontier[-2], frontier[-1]
            if (b.error - a.error) * (o.bytes - a.bytes) >= (o.error - a.error) * (
                b.bytes - a.bytes
            ):
                frontier.pop()  # b lies on or above the segment from a to o
            else:
                break
        frontier.append(o)
    return frontier


def _by_hull_greedy(sensitivity, modules, budget_bytes) -> dict[str, LayerOption]:
    hulls = {m: _hull(sensitivity.options[m]) for m in modules}
    chosen = {m: hulls[m][0] for m in modules}
    spent = sum(o.bytes for o in chosen.values())
    while True:
        steps = [
            ((h[k].error - h[k + 1].error) / max(h[k + 1].bytes - h[k].bytes, 1), m)
            for m, h in hulls.items()
            for k in [h.index(chosen[m])]
            if k + 1 < len(h) and spent + h[k + 1].bytes - h[k].bytes <= budget_bytes
        ]
        if not steps:
            return chosen
        _, m = max(steps)
        nxt = hulls[m][hulls[m].index(chosen[m]) + 1]
        spent += nxt.bytes - chosen[m].bytes
        chosen[m] = nxt


def _by_dynamic_programming(sensitivity, modules, budget_bytes, resolution):
    step = max(1, -(-budget_bytes // resolution))  # bytes per DP cell, rounded up
    cells = budget_bytes // step
    inf = float("inf")
    best = torch.full((cells + 1,), inf, dtype=torch.float64)
    best[0] = 0.0
    picks = []
    for module in modules:
        options = sensitivity.options[module]
        candidates = torch.full((len(options), cells + 1), inf, dtype=torch.float64)
        for k, o in enumerate(options):
            cost = -(-o.bytes // step)
            if cost <= cells:
                candidates[k, cost:] = best[: cells + 1 - cost] + o.error
        best, pick = candidates.min(dim=0)
        picks.append(pick.to(torch.int16))
    end = int(torch.argmin(best))  # the least error among the reachable totals
    chosen: dict[str, LayerOption] = {}
    for module, pick in zip(reversed(modules), reversed(picks), strict=True):
        o = sensitivity.options[module][int(pick[end])]
        chosen[module] = o
        end -= -(-o.bytes // step)
    return {m: chosen[m] for m in modules}


def _fill(sensitivity, chosen, budget_bytes) -> dict[str, LayerOption]:
    """Bytes left over: the best single upgrade that fits, repeatedly."""
    modules = list(chosen)
    spent = sum(o.bytes for o in chosen.values())
    while True:
        upgrades = [
            ((chosen[m].error - o.error) / max(o.bytes - chosen[m].bytes, 1), m, o)
            for m in modules
            for o in sensitivity.options[m]
            if o.error < chosen[m].error and spent - chosen[m].bytes + o.bytes <= budget_bytes
        ]
        if not upgrades:
            return chosen
        _, m, o = max(upgrades, key=lambda u: u[0])
        spent += o.bytes - chosen[m].bytes
        chosen[m] = o


def mixed_precision(
    model: nn.Module,
    candidates: Iterable[str],
    batches: Iterable[Any] | None = None,
    *,
    budget_bytes: int | None = None,
    bits_per_weight: float | None = None,
    forward: Forward | None = None,
    probes: int = 1,
    sensitivity: Sensitivity | None = None,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
) -> MixedPrecision:
    """One candidate scheme per Linear layer with the least predicted output error
    within a size budget: ``budget_bytes`` for the considered weights as stored, or
    ``bits_per_weight`` on average over them. Scores come from :func:`layer_sensitivity`
    on ``batches`` (or a given ``sensitivity``). The result's ``recipe`` applies it
    (``quantize_(model, result.recipe)``, or ``.save()`` it for ``quantkit quantize
    --recipe``)."""
    if (budget_bytes is None) == (bits_per_weight is None):
        raise ValueError("mixed_precision: give exactly one of budget_bytes and bits_per_weight")
    if sensitivity is None:
        if batches is None:
            raise ValueError("mixed_precision: give calibration batches (or a sensitivity)")
        sensitivity = layer_sensitivity(
            model, candidates, batches, forward=forward, probes=probes, filter_fn=filter_fn
        )
    if bits_per_weight is not None:
        if bits_per_weight <= 0:
            raise ValueError(f"bits_per_weight={bits_per_weight}: must be > 0")
        budget_bytes = int(bits_per_weight * sum(sensitivity.elements.values()) / 8)
    choices = choose_schemes(sensitivity, budget_bytes)
    return MixedPrecision(choices, budget_bytes, sensitivity)
