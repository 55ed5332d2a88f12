"""GPTQ: quantize weights column by column, compensating each column's rounding
error on the columns not yet quantized, with the inverse Hessian ``(2 X^T X)^-1``
of the layer's calibration inputs (Frantar et al., 2022).

It runs on a prepared model. For every Linear whose weight rule is per-group or
per-channel, it replaces the float weight by the GPTQ result, values that lie on
the quantization grid, and freezes the weight quantizer's qparams. Because
fake-quantizing an on-grid value returns it unchanged (checked here, per layer),
the prepared model then computes the GPTQ weights and ``convert`` stores their
codes: converted == prepared still holds bit for bit.
"""

from __future__ import annotations

import time
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import QParams
from .. import fake_quantize as _fake_quantize
from . import ops
from ._batches import hooked, run_batches
from .exact_sum import ExactSum, require_world
from .prepared import QATLinear


def _hessians(
    model, layers, batches, forward, distributed: bool = False
) -> dict[str, tuple[torch.Tensor, int]]:
    """2 X^T X / tokens per layer. Layers that read one input tensor (q / k / v,
    gate / up) share one Hessian: found in the first batch by tensor identity (a weak
    reference, so a freed tensor's reused id cannot match), checked in every later one.
    Each batch's X^T X (float32) goes into an exact fixed-point sum (:mod:`.exact_sum`):
    the result does not depend on batch order, and with ``distributed`` the sums of all
    processes (each on its share of the batches) are all-reduced into the Hessian one
    process computes over all the batches, bit for bit."""
    stats: dict[str, list] = {}  # owner layer -> [ExactSum of X^T X, tokens]
    owner: dict[str, str] = {}  # layer -> the layer whose sum it shares
    seen: dict[int, tuple[str, weakref.ref]] = {}  # this batch: input id -> (owner, tensor)
    batch = [0]

    def hook_for(name):
        def hook(_module, args):
            x = args[0]
            entry = seen.get(id(x))
            shared = entry is not None and entry[1]() is x
            if batch[0] == 0:
                owner[name] = entry[0] if shared else name
            elif (entry[0] if shared else name) != owner[name]:
                raise RuntimeError(
                    f"gptq: layer '{name}' shared its input with '{owner[name]}' in the first "
                    f"batch but not in batch {batch[0]}"
                )
            if shared:
                return  # its sibling already added this input
            seen[id(x)] = (name, weakref.ref(x))
            rows = x.detach().reshape(-1, x.shape[-1]).float()
            what = f"gptq: the Hessian of layer '{name}'"
            entry = stats.setdefault(name, [ExactSum(what, distributed), 0])
            entry[0].add(rows.T @ rows)
            entry[1] += rows.shape[0]

        return hook

    def next_batch():
        batch[0] += 1
        seen.clear()

    with hooked([m.register_forward_pre_hook(hook_for(n)) for n, m in layers.items()]):
        run_batches(model, batches, forward, after_each=next_batch)
    if distributed:
        import torch.distributed as dist

        missing = [n for n in layers if owner.get(n, n) not in stats]
        if missing:
            raise RuntimeError(f"gptq: no batch of this process reached layer '{missing[0]}'")
        counts = torch.tensor([entry[1] for entry in stats.values()], dtype=torch.int64)
        dist.all_reduce(counts)
        for entry, count in zip(stats.values(), counts.tolist(), strict=True):
            entry[0].all_reduce()  # in the first batch's layer order, the same on every rank
            entry[1] = count
    normalized = {}
    for o in list(stats):  # one sum's limbs at a time: each is freed once converted
        total, count = stats.pop(o)
        normalized[o] = (total.value().mul_(2.0).div_(max(count, 1)), count)
    return {name: normalized.get(owner.get(name, name), (None, 0)) for name in layers}


@dataclass
class GPTQReport:
    """What GPTQ did to one layer: the damping that made its Hessian invertible (a
    fraction of the mean diagonal), the precision it ran in, the calibration tokens
    it saw against the layer's input width, and whether columns were quantized in
    descending Hessian order (act-order, with static group qparams)."""

    name: str
    damp: float
    precision: str
    tokens: int
    in_features: int
    act_order: bool
    seconds: float


_GATHER_ROWS = 64  # rows of the Hessian permuted and rounded at a time (a few MB)


def _damped(
    hessian: torch.Tensor, order: torch.Tensor, diagonal: torch.Tensor, shift, precision
) -> torch.Tensor:
    """``hessian[order][:, order]`` with ``diagonal + shift`` on its diagonal, rounded to
    ``precision``. Built in row chunks, so a float32 factorization of a float64 Hessian
    never holds a second float64 copy of it (5632 wide: 254 MB each)."""
    n = hessian.shape[0]
    out = torch.empty((n, n), dtype=precision)
    gathered = torch.empty((min(_GATHER_ROWS, n), n), dtype=hessian.dtype)
    permuted = torch.empty_like(gathered)  # buffers made once: no freed pieces in the heap
    for r0 in range(0, n, _GATHER_ROWS):
        rows = order[r0 : r0 + _GATHER_ROWS]
        g, p = gathered[: len(rows)], permuted[: len(rows)]
        torch.index_select(hessian, 0, rows, out=g)
        out[r0 : r0 + len(rows)] = torch.index_select(g, 1, order, out=p)
    out.diagonal().copy_(diagonal + shift)
    return out


def _inverse_hessian_factor(
    hessian: torch.Tensor, order: torch.Tensor, diagonal: torch.Tensor, damp: float
) -> tuple[torch.Tensor, float, str]:
    """Upper Cholesky factor of the damped inverse of the Hessian with rows and columns
    in ``order`` and ``diagonal`` (already in that order) on its diagonal. Retries with
    10x the damping (at least 1e-6, up to the whole mean diagonal), then in float64;
    raises if nothing works."""
    mean_diag = diagonal.mean()
    for precision in (torch.float32, torch.float64):
        d = damp
        while d <= 1.0:
            # damping on the diagonal in float64, then rounded: no identity matrix
            damped = _damped(hessian, order, diagonal, d * mean_diag, precision)
            factor, info = torch.linalg.cholesky_ex(damped)
            del damped
            if info == 0:
                inverse = torch.cholesky_inverse(factor)
                del factor
                upper, info = torch.linalg.cholesky_ex(inverse, upper=True)
                del inverse
                if info == 0:
                    return upper, d, str(precision).removeprefix("torch.")
            d = max(d * 10, 1e-6)
    raise RuntimeError("gptq: the Hessian is not positive definite even with full damping")


def _group_qparams(w: torch.Tensor, column_key: str, compute: str, dtype) -> QParams:
    """Per-row qparams of one group of columns (``w`` [rows, group], float32)."""
    scale, zero_point, _ = ops.choose_qparams(w.to(dtype).contiguous(), column_key)
    return ops._qparams(scale, zero_point, column_key, compute)


def _gptq_layer(
    name: str,
    layer: QATLinear,
    hessian: torch.Tensor,
    tokens: int,
    block: int,
    damp: float,
    act_order: bool,
) -> GPTQReport:
    started = time.perf_counter()
    fq = layer.weight_fake_quant
    args = fq.config.spec
    if args.global_scale:
        raise ValueError(
            f"gptq: weight spec {args.describe()!r} is two-level (a per-tensor scale over the "
            "block scales), which gptq's column-by-column qparams do not support yet; use "
            "a single-level spec or round-to-nearest for this layer"
        )
    kind = args.granularity[0]
    weight = layer.weight.detach()
    dtype = weight.dtype
    rows, cols = weight.shape
    group = args.group_size if kind == "per_group" else cols
    column_key = args.replace(granularity=("per_axis", 0)).key()
    compute = ops.dtype_name(dtype)

    w = weight.float().clone()
    diagonal = hessian.diagonal().clone()
    dead = diagonal == 0  # an input that is always zero: its column is zeroed, its
    diagonal[dead] = 1.0  # diagonal entry set to 1 so the Hessian stays invertible
    w[:, dead] = 0.0
    # act-order: columns in descending Hessian diagonal, each with the qparams of its
    # own group chosen up front (static groups), so groups stay in column order.
    order = torch.argsort(diagonal, descending=True, stable=True) if act_order else None
    static = {}
    if act_order:
        static = {
            g: _group_qparams(w[:, g : g + group], column_key, compute, dtype)
            for g in range(0, cols, group)
        }
    index = order if act_order else torch.arange(cols)
    hinv, used_damp, precision = _inverse_hessian_factor(hessian, index, diagonal[index], damp)
    hinv = hinv.float()

    # Columns as rows: every column GPTQ touches is contiguous.
    wt = (w[:, order] if act_order else w).T.contiguous()
    qt = torch.empty_like(wt)
    used: dict[int, QParams] = dict(static)  # group start -> the qparams its columns used
    current: QParams | None = None
    for b0 in range(0, cols, block):
        b1 = min(b0 + block, cols)
        w1 = wt[b0:b1].clone()
        err1 = torch.empty_like(w1)
        hinv1 = hinv[b0:b1, b0:b1]
        for i in range(b1 - b0):
            col = b0 + i
            source = int(order[col]) if act_order else col
            if act_order:
                current = static[source - source % group]
            elif col % group == 0:
                # qparams from the weights as updated so far (GPTQ's static=False)
                ahead = (
                    torch.cat([w1[i:], wt[b1:]])[:group] if col + group > b1 else w1[i : i + group]
                )
                current = used[col] = _group_qparams(ahead.T, column_key, compute, dtype)
            x = w1[i].to(dtype).reshape(rows, 1)
            q = torch.as_tensor(_fake_quantize(x, current)).reshape(rows).float()
            qt[col] = q
            err = (w1[i] - q) / hinv1[i, i]
            w1[i + 1 :].sub_(hinv1[i, i + 1 :, None] * err[None, :])
            err1[i] = err
        wt[b1:].sub_(hinv[b0:b1, b1:].T @ err1)

    q = qt.T
    if act_order:
        q = q[:, torch.argsort(order)]
    q = q.to(dtype).contiguous()
    groups = [used[g] for g in range(0, cols, group)]
    scale = torch.cat([qp.scale for qp in groups], dim=1)
    zero_point = (
        torch.cat([qp.zero_point for qp in groups], dim=1)
        if groups[0].zero_point is not None
        else ops.NO_ZERO_POINT
    )
    again = ops.fake_quantize(q, scale, zero_point, fq.spec_key, compute)
    if not torch.equal(again, q):
        raise RuntimeError("GPTQ weights are not fixed points of fake_quantize")  # never expected
    with torch.no_grad():
        layer.weight.copy_(q)
    fq._set(scale, zero_point, compute)
    return GPTQReport(
        name, used_damp, precision, tokens, cols, act_order, time.perf_counter() - started
    )


def gptq(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    block_size: int = 128,
    damp: float = 0.01,
    act_order: bool = True,
    report: bool = False,
    sequential: bool = False,
    blocks: str | None = None,
    max_cache_bytes: int | None = None,
    progress: bool = False,
    distributed: bool = False,
) -> list[str] | list[GPTQReport]:
    """GPTQ on every prepared Linear with a per-group or per-channel weight rule, from the
    inputs it sees on ``batches``.

    Columns go in blocks of ``block_size`` with lazy updates (the trailing columns take
    one matrix product per block). ``act_order``: columns in descending Hessian diagonal,
    with each group's qparams chosen up front, so the stored groups keep column order
    (llm-compressor's static act-order). A Hessian that is not positive definite is
    damped further (x10 up to its mean diagonal), then factored in float64; a layer that
    saw fewer calibration tokens than it has input features gets a warning (its Hessian
    is rank-deficient: GPTQ can then lose to round-to-nearest).

    ``sequential=False``: every layer's Hessian from the float model in one pass (all
    Hessians held at once). ``sequential=True``: the model's repeated blocks one at a
    time (:mod:`quantkit.torch.sequential`; ``blocks`` names their ModuleList when it is
    not found), each block's Hessians from the outputs of the blocks before it as
    quantized, only one block's Hessians in memory; layers outside the blocks (an LM
    head) last, from the fully quantized blocks. The block inputs of all batches stay in
    memory up to ``max_cache_bytes``, the rest on disk; ``progress`` prints a line per
    block. Returns the layer names, or with ``report=True`` a :class:`GPTQReport` per
    layer.

    ``distributed=True`` (torch.distributed initialized, gloo or NCCL): each process
    passes its share of the batches (rank 0 the first one); the Hessians, summed exactly
    in fixed point, are all-reduced, so every process gets the weights one process
    computes from all the batches, bit for bit (any split, any batch order)."""
    layers = {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, QATLinear)
        and m.weight_fake_quant is not None
        and not m.weight_fake_quant.frozen
        and m.weight_fake_quant.config.spec.granularity[0] in ("per_group", "per_axis")
    }
    if not layers:
        return []
    if distributed:
        require_world("gptq")
    options = (block_size, damp, act_order, distributed)
    reports: list[GPTQReport] = []
    if sequential:
        from .sequential import call_block, run_blocks

        def visit(name: str, block: nn.Module, inputs) -> None:
            local = {n: m for n, m in layers.items() if n.startswith(name + ".")}
            if local:
                reports.extend(_gptq_from_inputs(block, local, inputs, call_block, options))

        run_blocks(
            model,
            batches,
            visit,
            forward=forward,
            blocks=blocks,
            max_cache_bytes=max_cache_bytes,
            progress=progress,
            statistics_bytes=_hessian_bytes,
        )
        done = {r.name for r in reports}
        rest = {n: m for n, m in layers.items() if n not in done}
        if rest:
            reports.extend(_gptq_from_inputs(model, rest, batches, forward, options))
    else:
        reports.extend(_gptq_from_inputs(model, layers, batches, forward, options))
    return reports if report else list(layers)


def _hessian_bytes(block: nn.Module) -> int:
    """GPTQ's memory for a block, an upper bound: every prepared Linear's exact Hessian
    sum (two int64 limbs per entry; siblings that read one input share one, counted here
    apiece), and 16 bytes per entry of the widest layer on top: the float32 product of
    one batch beside its limbs, its float64 result while the limbs are converted, then
    two float32 matrices of its factorization at a time."""
    widths = [
        m.in_features
        for m in block.modules()
        if isinstance(m, QATLinear) and m.weight_fake_quant is not None
    ]
    return 16 * sum(w * w for w in widths) + 16 * max((w * w for w in widths), default=0)


def _gptq_from_inputs(model, layers, batches, forward, options) -> list[GPTQReport]:
    """Hessians of ``layers`` (names as ``model`` calls them) with their own quantizers
    off, from running ``batches`` through ``model``; then GPTQ on each."""
    block_size, damp, act_order, distributed = options
    quantizers = [m.weight_fake_quant for m in layers.values()]
    for fq in quantizers:
        fq.enabled = False  # Hessians of the float layers
    try:
        hessians = _hessians(model, layers, batches, forward, distributed)
    finally:
        for fq in quantizers:
            fq.enabled = True
    reports = []
    for name, layer in layers.items():
        hessian, count = hessians[name]
        if count == 0:
            raise RuntimeError(f"gptq: no batch reached layer '{name}'")
        if count < layer.in_features:
            warnings.warn(
                f"gptq: layer '{name}' saw {count} calibration tokens for {layer.in_features} "
                "input features, so its Hessian is rank-deficient and GPTQ may do worse than "
                f"round-to-nearest; calibrate on at least {layer.in_features} tokens",
                stacklevel=3,
            )
        reports.append(_gptq_layer(name, layer, hessian, count, block_size, damp, act_order))
        if reports[-1].damp != damp or reports[-1].precision != "float32":
            warnings.warn(
                f"gptq: layer '{name}' needed damping {reports[-1].damp} "
                f"({reports[-1].precision}) for an invertible Hessian",
                stacklevel=3,
            )
    return reports
