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

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from . import ops
from ._batches import hooked, run_batches
from .prepared import QATLinear


def _hessians(model, layers, batches, forward) -> dict[str, tuple[torch.Tensor, int]]:
    stats: dict[str, list] = {name: [None, 0] for name in layers}

    def hook_for(name):
        def hook(_module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            entry = stats[name]
            xtx = x.T @ x
            entry[0] = xtx if entry[0] is None else entry[0] + xtx
            entry[1] += x.shape[0]

        return hook

    with hooked([m.register_forward_pre_hook(hook_for(n)) for n, m in layers.items()]):
        run_batches(model, batches, forward)
    return {n: (2.0 * h / max(count, 1), count) for n, (h, count) in stats.items()}


def _gptq_layer(layer: QATLinear, hessian: torch.Tensor, block: int, damp: float) -> None:
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

    w = weight.double().clone()
    h = hessian.clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h += damp * torch.diag(h).mean() * torch.eye(cols, dtype=h.dtype)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)

    q = torch.empty_like(weight)
    scales, zero_points = [], []
    for b0 in range(0, cols, block):
        b1 = min(b0 + block, cols)
        w1 = w[:, b0:b1].clone()
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[b0:b1, b0:b1]
        for i in range(b1 - b0):
            col = b0 + i
            if col % group == 0:
                # group qparams from the weights as updated so far (GPTQ's static=False)
                ahead = torch.cat([w1[:, i:], w[:, b1:]], dim=1)[:, :group].to(dtype)
                scale, zp, _ = ops.choose_qparams(ahead.contiguous(), column_key)
                scales.append(scale)
                zero_points.append(zp)
            x = w1[:, i : i + 1].to(dtype).contiguous()
            qcol = ops.fake_quantize(x, scales[-1], zero_points[-1], column_key, compute)
            q[:, col] = qcol[:, 0]
            err = (w1[:, i] - qcol[:, 0].double()) / hinv1[i, i]
            w1[:, i:] -= err[:, None] * hinv1[i, i:][None, :]
            err1[:, i] = err
        w[:, b1:] -= err1 @ hinv[b0:b1, b1:]

    scale = torch.cat(scales, dim=1)
    zero_point = torch.cat(zero_points, dim=1) if zero_points[0].numel() else zero_points[0]
    again = ops.fake_quantize(q, scale, zero_point, fq.spec_key, compute)
    if not torch.equal(again, q):
        raise RuntimeError("GPTQ weights are not fixed points of fake_quantize")  # never expected
    with torch.no_grad():
        layer.weight.copy_(q)
    fq._set(scale, zero_point, compute)


def gptq(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    block_size: int = 128,
    damp: float = 0.01,
) -> list[str]:
    """GPTQ on every prepared Linear with a per-group or per-channel weight rule, from the
    inputs it sees on ``batches`` (the float model's, all layers at once). Returns the
    names of the layers it quantized."""
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
    quantizers = [m.weight_fake_quant for m in layers.values()]
    for fq in quantizers:
        fq.enabled = False  # Hessians of the float model
    try:
        hessians = _hessians(model, layers, batches, forward)
    finally:
        for fq in quantizers:
            fq.enabled = True
    for name, layer in layers.items():
        hessian, count = hessians[name]
        if count == 0:
            raise RuntimeError(f"gptq: no batch reached layer '{name}'")
        _gptq_layer(layer, hessian, block_size, damp)
    return list(layers)
