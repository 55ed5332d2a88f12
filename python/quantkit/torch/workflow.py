"""prepare → (calibrate | train) → convert, and ``quantize_`` for the one-call case."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ._batches import run_batches
from .algorithms import Algorithm, run_stage
from .algorithms import check as check_algorithms
from .converted import CONVERTED_TYPES, QuantizedConv2d, QuantizedEmbedding, QuantizedLinear
from .coverage import Coverage, CoverageRow, coverage, record, record_calibration
from .fake_quantize import FakeQuantize
from .model_recipe import ModelRecipe, Rule, scheme_name
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


def _name_matches(pattern: str, name: str) -> bool:
    """Rules full-match the module name or its weight's tensor name (as the CLI's)."""
    return re.fullmatch(pattern, name) is not None or re.fullmatch(pattern, name + ".weight")


def _rules(
    recipe: Recipe | ModelRecipe, overrides: Mapping[str, Recipe | None] | None
) -> tuple[Recipe, list[Rule]]:
    """The default recipe and every rule in precedence order: ``overrides``, then a
    ModelRecipe's rules (and its preset's role rules)."""
    rules = [Rule(p, r, f"override '{p}'") for p, r in (overrides or {}).items()]
    for rule in rules:
        try:
            re.compile(rule.pattern)
        except re.error as error:
            raise ValueError(f"{rule.origin} is not a valid regular expression: {error}") from None
    if isinstance(recipe, ModelRecipe):
        default, more = recipe.resolve()
        return default, rules + more
    return recipe, rules


def _decide(name: str, default: Recipe, rules: list[Rule], matched: set[str]):
    """(recipe or None, the rule that decided or "default")."""
    for rule in rules:
        if _name_matches(rule.pattern, name):
            if rule.counted:
                matched.add(rule.origin)
            return rule.recipe, rule.origin
    return default, "default"


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
    recipe: Recipe | ModelRecipe,
    *,
    filter_fn: ModuleFilter | None = None,
    overrides: Mapping[str, Recipe | None] | None = None,
    allow_unmatched: bool = False,
    verbose: bool = False,
) -> nn.Module:
    """Swaps Linear / Conv2d / Embedding modules for fake-quantized ones, in place.

    ``recipe``: one :class:`Recipe` for every module, or a :class:`ModelRecipe` (a
    recipe file's default scheme and ordered rules, :func:`load_recipe`).
    ``filter_fn(module, name)`` selects modules (default: all); ``overrides`` maps a
    regular expression to another recipe, or to ``None`` to keep the module in float;
    overrides come before a ModelRecipe's rules. Patterns full-match the module name
    (or the tensor name, ``name + ".weight"``); the first match wins. A rule that
    matches no module it could apply to raises ``ValueError`` naming it (a typo would
    otherwise change nothing); ``allow_unmatched=True`` (or the recipe's
    ``allow_unmatched``) makes that a warning.

    Every module with a weight matrix gets a row in the applied-scheme table
    (:func:`coverage`; ``verbose=True`` prints it): its scheme and the rule that chose
    it, or why it stays float. Other leaf modules with a weight matrix and the
    projections of ``nn.MultiheadAttention`` (its forward reads their weights itself,
    so a swapped Linear would never run) are kept float with one warning.
    A module registered under several names is swapped at each of them and stays
    shared; rules that disagree between its names raise.
    """
    default, rules = _rules(recipe, overrides)
    allow_unmatched = allow_unmatched or getattr(recipe, "allow_unmatched", False)
    matched: set[str] = set()
    plan: list[tuple[list[str], nn.Module, Recipe]] = []
    rows: list[CoverageRow] = []
    skipped: dict[str, list[str]] = {}
    attention_parts = multihead_attention_parts(model)
    for names, module in _modules_with_all_names(model):
        if isinstance(module, PREPARED_TYPES + CONVERTED_TYPES):
            raise ValueError(f"module '{names[0]}' is already prepared or converted")
        kind = type(module).__name__
        if isinstance(module, nn.MultiheadAttention) and _selected(filter_fn, module, names[0]):
            if module.in_proj_weight is not None or module.q_proj_weight is not None:
                reason = "nn.MultiheadAttention reads its input projection weights itself"
                rows.append(CoverageRow(names[0] + ".in_proj", kind, None, reason))
                skipped.setdefault("MultiheadAttention (input projections)", []).append(names[0])
            continue
        if id(module) in attention_parts:
            if _selected(filter_fn, module, names[0]):
                reason = "nn.MultiheadAttention reads out_proj.weight itself (never calls it)"
                rows.append(CoverageRow(names[0], kind, None, reason))
                skipped.setdefault("MultiheadAttention.out_proj", []).append(names[0])
            continue
        if not _is_supported(module):
            if _has_unquantized_matrix(module) and _selected(filter_fn, module, names[0]):
                skipped.setdefault(kind, []).append(names[0])
                rows.append(CoverageRow(names[0], kind, None, f"unsupported type {kind}"))
            continue
        decisions = [
            _decide(name, default, rules, matched)
            if _selected(filter_fn, module, name)
            else (None, "left out by filter_fn")
            for name in names
        ]
        if any(d[0] is not decisions[0][0] for d in decisions):
            raise ValueError(
                f"module registered as {', '.join(repr(n) for n in names)} would get different "
                "recipes under its names (filter_fn / overrides); one module is quantized once: "
                "make the rules agree or register separate modules"
            )
        chosen, origin = decisions[0]
        if chosen is None:
            why = origin if origin == "left out by filter_fn" else f"skipped by {origin}"
            rows.append(CoverageRow(names[0], kind, None, why))
            continue
        rule = chosen.embedding if isinstance(module, nn.Embedding) else chosen.weight
        if rule is None:
            what = "embedding tables" if isinstance(module, nn.Embedding) else "weights"
            rows.append(CoverageRow(names[0], kind, None, f"{chosen.name} quantizes no {what}"))
            continue
        _check_weight_rule(names[0], module.weight, rule)
        plan.append((names, module, chosen))
        rows.append(CoverageRow(names[0], kind, scheme_name(chosen), origin))
    unmatched = [r.origin for r in rules if r.counted and r.origin not in matched]
    if unmatched:
        message = (
            f"quantkit.torch.prepare: {unmatched[0]} matches no module it could "
            "apply to (patterns full-match module names, e.g. 'model\\.layers\\.0\\..*')"
        )
        if not allow_unmatched:
            raise ValueError(message + "; allow_unmatched=True makes this a warning")
        warnings.warn(message, stacklevel=2)
    if skipped:
        listed = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(skipped.items()))
        warnings.warn(
            f"quantkit.torch.prepare: modules left in float ({listed}); "
            "quantkit.torch.coverage(model) lists every module and why",
            stacklevel=2,
        )
    for names, module, chosen in plan:
        if isinstance(module, nn.Embedding):
            new = QATEmbedding.from_float(module, chosen.embedding)
        elif isinstance(module, nn.Conv2d):
            new = QATConv2d.from_float(module, chosen.weight, chosen.activation)
        else:
            new = QATLinear.from_float(module, chosen.weight, chosen.activation)
        for name in names:  # a module registered twice stays shared
            _replace(model, name, new)
    report = Coverage(rows)
    record(model, report)
    if verbose:
        print(report.table())
    return model


def multihead_attention_parts(model: nn.Module) -> set[int]:
    """ids of the out_proj Linears of ``nn.MultiheadAttention`` modules."""
    return {id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)}


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
    *,
    verbose: bool = False,
    distributed: bool = False,
) -> nn.Module:
    """Runs ``batches`` through the prepared model with its static quantizers observing
    (fake quantization off, like torch.ao's calibration), then fixes their qparams.

    ``distributed=True`` (torch.distributed initialized): each process passes its share
    of the batches; every observer's state is gathered and merged in rank order
    (``Observer.merge``) before the qparams are fixed, so every process gets the same
    qparams. For min / max observers they equal one process's over all batches, bit for
    bit; order-dependent observers (moving average, histograms) merge as their ``merge``
    defines.

    ``forward(model, batch)`` runs one batch (default: ``model(batch)``; tokenizer dicts
    are passed as keyword arguments). Calibrate once, with every batch: a second call
    on a calibrated model raises (the observers are gone once the qparams are fixed, so
    it could not accumulate). A quantizer no batch reached raises, naming it. The
    applied-scheme table (:func:`coverage`) records the batches and tokens each
    quantizer saw; ``verbose=True`` prints it.
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
    if distributed:
        _merge_across_processes(static)
    empty = [n for n, q in static if q.observer is None]
    if empty:
        raise RuntimeError(
            f"calibrate: no batch reached {len(empty)} quantizer(s): {', '.join(empty[:8])}"
        )
    for _, q in static:
        q.finish_calibration()
    seen = {n.rpartition(".")[0]: (q.batches_seen, q.tokens_seen) for n, q in static}
    record_calibration(model, seen)
    if verbose:
        print(coverage(model).table())
    return model


def _merge_across_processes(static: list[tuple[str, FakeQuantize]]) -> None:
    """Every quantizer's observer becomes the rank-order merge of all processes' ones
    (quantizers in the same order on every rank: the model's)."""
    import torch.distributed as dist

    from .exact_sum import require_world
    from .fake_quantize import make_observer

    world = require_world("calibrate")
    local = [
        None if q.observer is None else (q.observer.state(), q.batches_seen, q.tokens_seen)
        for _, q in static
    ]
    gathered: list = [None] * world
    dist.all_gather_object(gathered, local)  # one collective for every quantizer
    for k, (_, q) in enumerate(static):
        merged = None
        q.batches_seen = q.tokens_seen = 0
        for entry in (per_rank[k] for per_rank in gathered):  # rank order
            if entry is None:
                continue
            state, batches_seen, tokens_seen = entry
            observer = make_observer(q.config)
            observer.load_state(state)
            if merged is None:
                merged = observer
            else:
                merged.merge(observer)
            q.batches_seen += batches_seen
            q.tokens_seen += tokens_seen
        q.observer = merged


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
    recipe: Recipe | ModelRecipe,
    *,
    calibration: Iterable[Any] | None = None,
    algorithms: Sequence[Algorithm] = (),
    forward: Callable[[nn.Module, Any], Any] | None = None,
    filter_fn: ModuleFilter | None = None,
    overrides: Mapping[str, Recipe | None] | None = None,
    allow_unmatched: bool = False,
    verbose: bool = False,
) -> nn.Module:
    """The whole workflow in one call, in place: ``algorithms`` that change the float
    model (:class:`SmoothQuant`, :class:`AWQ`), ``prepare``, those that change the prepared
    weights (:class:`GPTQ`), ``calibrate`` (when the recipe has calibrated activations),
    ``convert``. ``calibration``: the batches every step that needs data runs on (tokenizer
    dicts run as ``model(**batch)``; ``forward(model, batch)`` otherwise). Without
    calibration, recipes with calibrated activations are refused. What each algorithm
    reported (GPTQ's per-layer reports, AWQ's kept alphas, how SmoothQuant smoothed each
    layer) is in ``coverage(model).algorithms``."""
    algorithms = list(algorithms)
    check_algorithms(algorithms, calibration)
    default, rules = _rules(recipe, overrides)
    recipes = [default, *[r.recipe for r in rules if r.recipe is not None]]
    static = [r.name for r in recipes if r.needs_calibration]
    if static and calibration is None:
        raise ValueError(
            f"quantize_: recipe {static[0]} has calibrated activations; pass calibration=batches "
            "(or use prepare(), calibrate() and convert())"
        )
    batches = list(calibration) if calibration is not None else None
    reports = run_stage(model, algorithms, batches, forward, default, before_prepare=True)
    prepared = prepare(
        model,
        recipe,
        filter_fn=filter_fn,
        overrides=overrides,
        allow_unmatched=allow_unmatched,
        verbose=verbose and not static,
    )
    if not any(isinstance(m, PREPARED_TYPES) for m in prepared.modules()):
        kept = coverage(prepared).kept()
        raise ValueError(
            f"quantize_: no module was quantized ({len(kept)} modules with weight matrices "
            "kept float; quantkit.torch.coverage(model) says why for each)"
        )
    reports.update(run_stage(prepared, algorithms, batches, forward, default, before_prepare=False))
    if static:
        calibrate(prepared, batches, forward, verbose=verbose)
    coverage(prepared).algorithms = reports
    return convert(prepared)


def model_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer (quantized weights as stored: packed codes,
    scales, zero points)."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def parameter_count(model: nn.Module) -> int:
    """Elements of every parameter, with each quantized weight counted as the matrix it
    stands for (``sum(p.numel() for p in model.parameters())`` leaves them out: they are
    buffers of packed codes). Shared tensors count once."""
    from .converted import QuantizedWeight

    seen = {id(p): p.numel() for p in model.parameters()}
    for module in model.modules():
        if isinstance(module, QuantizedWeight):
            seen[id(module.packed)] = math.prod(module.full_shape)
    return sum(seen.values())
