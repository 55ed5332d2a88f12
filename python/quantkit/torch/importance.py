"""Importance of each weight column from calibration data: the mean squared input of
every ``nn.Linear`` input channel (the quantity llama.cpp's imatrix holds). The
checkpoint tool weights its scale search with it (``quantkit quantize
--importance FILE`` with a ``:search=mse`` scheme): columns that see large inputs
count more in each group's error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ._batches import Forward, hooked, run_batches


def collect_importance(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    forward: Forward | None = None,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
) -> dict[str, torch.Tensor]:
    """``{"<module>.weight": mean(x**2) per input channel}`` (float32) for every
    ``nn.Linear`` that ``filter_fn(module, name)`` keeps (default: all), over the rows of
    every batch (all leading dimensions; float64 sums). Raises ``ValueError`` when a layer
    saw no input."""
    layers = {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and (filter_fn is None or filter_fn(m, name))
    }
    if not layers:
        raise ValueError("collect_importance: the model has no nn.Linear the filter keeps")
    sums: dict[str, torch.Tensor] = {}
    rows = dict.fromkeys(layers, 0)

    def hook_for(name):
        def hook(_module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            squares = x.square().sum(dim=0)
            sums[name] = squares if name not in sums else sums[name] + squares
            rows[name] += x.shape[0]

        return hook

    with hooked([m.register_forward_pre_hook(hook_for(n)) for n, m in layers.items()]):
        run_batches(model, batches, forward)
    unseen = [n for n, count in rows.items() if count == 0]
    if unseen:
        raise ValueError(f"collect_importance: no calibration input reached {unseen[:5]}")
    return {f"{n}.weight": (sums[n] / rows[n]).float() for n in layers}


def save_importance(importance: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Writes :func:`collect_importance`'s result as the safetensors file that
    ``quantkit quantize --importance`` reads."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous().float().cpu() for k, v in importance.items()}, os.fspath(path))
