"""prepare → (calibrate | train) → convert, and ``quantize_`` for the one-call case."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ._batches import run_batches
from .converted import CONVERTED_TYPES, QuantizedConv2d, QuantizedEmbedding, QuantizedLinear
from .fake_quantize import FakeQuantize
from .prepared import PREPARED_TYPES, QATConv2d, QATEmbedding, QATLinear
from .recipes import Recipe, TensorQuant

ModuleFilter = Callable[[nn.Module, str], bool]

# Normalization layers carry per-feature weights (matrices only for multi-dim shapes)
# that no recipe quantizes: they are not reported as skipped.
_NORMALIZATION = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, nn.RMSNorm)


def _is_supported(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module) in (nn.Conv2d, nn.Embedding)


def _has_unquantized_matrix(module: nn.Module) -> bool:
    """A leaf module with a weight matrix that prepare() leaves in float."""
    weight = getattr(module, "weight", None)
    leaf = next(module.children(), None) is None
    return (
        leaf
        and isinstance(weight, torch.Tensor)
        and weight.dim() >= 2
        and not isinstance(module, _NORMALIZATION)
    )


def _recipe_for(
    name: str, default: Recipe, overrides: Mapping[str, Recipe | None], matched: set[str]
):
    for pattern, recipe in overrides.items():
        if re.fullmatch(pattern, name):
            matched.add(pattern)
            return recipe
    return default


def _check_weight_rule(name: str, weight: torch.Tensor, rule: TensorQuant | None) -> None:
    """A config that cannot apply names the module and the rule before anything changes."""
    if rule is None:
        return
    group = rule.spec.group_size
    features = weight[0].numel()
    if group is not None and features % group:
        raise ValueError(
            f"module '{name}': its {features} input features are "
            f"not a multiple of the group size {group}; per-group quantization needs "
            f"in_features % group_size == 0 (exclude it with filter_fn or give it an override)"
        )


def prepare(
    model: nn.Module,
    recipe: Recipe,
    *,
    filter_fn: ModuleFilter | None = None,
    overrides: Mapping[str, Recipe | None] | None = None,
    allow_unmatched: bool = False,
) -> nn.Module:
    """Swaps Linear / Conv2d / Embedding modules for fake-quantized ones, in place.

    ``filter_fn(module, name)`` selects modules (default: all); ``overrides`` maps
    a regular expression on the module name (full match, first wins) to another
    recipe, or to ``None`` to keep that module in float. An override that matches
    no module it could apply to raises ``ValueError`` naming it (a typo would
    otherwise change nothing); ``allow_unmatched=True`` makes that a warning. Other
    leaf modules with a weight matrix are skipped with one warning that lists them.
    A module registered under several names is swapped at each of them and stays
    shared; rules that disagree between its names raise.
    """
    overrides = dict(overrides or {})
    matched: set[str] = set()
    plan: list[tuple[list[str], nn.Module, Recipe]] = []
    skipped: dict[str, list[str]] = {}
    for names, module in _modules_with_all_names(model):
        if isinstance(module, PREPARED_TYPES + CONVERTED_TYPES):
            raise ValueError(f"module '{names[0]}' is already prepared or converted")
        if not _is_supported(module):
            if _has_unquantized_matrix(module) and _selected(filter_fn, module, names[0]):
                skipped.setdefault(type(module).__name__, []).append(names[0])
            continue
        decisions = [
            _recipe_for(name, recipe, overrides, matched)
            if _selected(filter_fn, module, name)
            else None
            for name in names
        ]
        if any(d is not decisions[0] for d in decisions):
            raise ValueError(
                f"module registered as {', '.join(repr(n) for n in names)} would get different "
                "recipes under its names (filter_fn / overrides); one module is quantized once: "
                "make the rules agree or register separate modules"
            )
        chosen = decisions[0]
        if chosen is None:
            continue
        rule = chosen.embedding if isinstance(module, nn.Embedding) else chosen.weight
        _check_weight_rule(names[0], module.weight, rule)
        plan.append((names, module, chosen))
    unmatched = [p for p in overrides if p not in matched]
    if unmatched:
        message = (
            f"quantkit.torch.prepare: override {unmatched[0]!r} matches no module it could "
            "apply to (patterns full-match module names, e.g. 'model\\.layers\\.0\\..*')"
        )
        if not allow_unmatched:
            raise ValueError(message + "; allow_unmatched=True makes this a warning")
        warnings.warn(message, stacklevel=2)
    if skipped:
        listed = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(skipped.items()))
        warnings.warn(
            f"quantkit.torch.prepare: unsupported module types left in float ({listed})",
            stacklevel=2,
        )
    for names, module, chosen in plan:
        if isinstance(module, nn.Embedding):
            if chosen.embedding is None:
                continue
            new = QATEmbedding.from_float(module, chosen.embedding)
        elif isinstance(module, nn.Conv2d):
            new = QATConv2d.from_float(module, chosen.weight, chosen.activation)
        else:
            new = QATLinear.from_float(module, chosen.weight, chosen.activation)
        for name in names:  # a module registered twice stays shared
            _replace(model, name, new)
    return model


def _selected(filter_fn: ModuleFilter | None, module: nn.Module, name: str) -> bool:
    return filter_fn is None or filter_fn(module, name)


def _modules_with_all_names(model: nn.Module) -> list[tuple[list[str], nn.Module]]:
    """Each submodule once, with every name it is registered under (``s.a = s.b = lin``,
    ``Sequential(lin, act, lin)``), in first-seen order; the root is left out."""
    names: dict[int, list[str]] = {}
    modules: dict[int, nn.Module] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if name:
            names.setdefault(id(module), []).append(name)
            modules[id(module)] = module
    return [(names[key], modules[key]) for key in names]


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def fake_quantizers(model: nn.Module) -> list[tuple[str, FakeQuantize]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, FakeQuantize)]


def calibrate(
    model: nn.Module,
    batches: Iterable[Any],
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> nn.Module:
    """Runs ``batches`` through the prepared model with its static quantizers observing
    (fake quantization off, like torch.ao's calibration), then fixes their qparams.

    ``forward(model, batch)`` runs one batch (default: ``model(batch)``). Calibrate
    once, with every batch: a second call on a calibrated model raises (the observers
    are gone once the qparams are fixed, so it could not accumulate).
    """
    every_static = [(n, q) for n, q in fake_quantizers(model) if q.static]
    static = [(n, q) for n, q in every_static if not q.frozen]
    if every_static and not static:
        raise RuntimeError(
            "calibrate: every static quantizer already has qparams from an earlier "
            "calibrate(); calibration does not accumulate across calls: pass all batches "
            "to one call (on a freshly prepared model)"
        )
    if not static:
        return model
    for _, q in static:
        q.start_calibration()
    try:
        run_batches(model, batches, forward)
    finally:
        for _, q in static:
            q.observing = False
    empty = [n for n, q in static if q.observer is None]
    if empty:
        raise RuntimeError(
            f"calibrate: no batch reached {len(empty)} quantizer(s): {', '.join(empty[:8])}"
        )
    for _, q in static:
        q.finish_calibration()
    return model


def freeze(model: nn.Module) -> nn.Module:
    """Fixes every weight quantizer's qparams to those of the current weights (QAT done,
    ready to export); activation quantizers must be calibrated or dynamic."""
    for module in model.modules():
        if isinstance(module, PREPARED_TYPES) and module.weight_fake_quant is not None:
            w = module.weight.detach()
            module.weight_fake_quant.freeze(w.reshape(w.shape[0], -1))
    return model


def convert(model: nn.Module) -> nn.Module:
    """Replaces prepared modules with quantized ones (codes + qparams), in place. The
    converted model's outputs equal the prepared model's bit for bit. ``.half()`` /
    ``.to(dtype)`` afterwards keep codes and qparams exact: weights dequantize in
    their original compute dtype and are then cast to the new one."""
    uncalibrated = [n for n, q in fake_quantizers(model) if q.static and not q.frozen and q.enabled]
    if uncalibrated:
        raise RuntimeError(
            "convert: static quantizers without qparams (run calibrate first): "
            + ", ".join(uncalibrated[:8])
        )
    targets = [(n, m) for n, m in _modules_with_all_names(model) if isinstance(m, PREPARED_TYPES)]
    if not targets:
        converted = any(isinstance(m, CONVERTED_TYPES) for m in model.modules())
        raise ValueError(
            "convert: the model holds no prepared module"
            + (" (it is already converted)" if converted else "; run prepare(model, recipe) first")
        )
    for names, module in targets:
        if module.weight_fake_quant is None:
            continue
        if isinstance(module, QATEmbedding):
            new = QuantizedEmbedding(module)
        elif isinstance(module, QATConv2d):
            new = QuantizedConv2d(module)
        else:
            new = QuantizedLinear(module)
        new.train(module.training)
        for name in names:
            _replace(model, name, new)
    return model


def quantize_(
    model: nn.Module,
    recipe: Recipe,
    *,
    filter_fn: ModuleFilter | None = None,
    overrides: Mapping[str, Recipe | None] | None = None,
    allow_unmatched: bool = False,
) -> nn.Module:
    """``convert(prepare(model, recipe))`` for recipes that need no calibration."""
    recipes = [recipe, *[r for r in (overrides or {}).values() if r is not None]]
    static = [r.name for r in recipes if r.needs_calibration]
    if static:
        raise ValueError(
            f"quantize_: recipe {static[0]} has calibrated activations; use prepare(), "
            "calibrate() and convert()"
        )
    prepared = prepare(
        model, recipe, filter_fn=filter_fn, overrides=overrides, allow_unmatched=allow_unmatched
    )
    return convert(prepared)


def model_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer (quantized weights as stored: packed codes,
    scales, zero points)."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())
