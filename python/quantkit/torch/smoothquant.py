"""SmoothQuant: move activation outliers into the weights before quantizing.

For each group of Linear layers that read the same input ``X`` (e.g. q/k/v),
with per-input-channel maxima ``a_j = max|X_j|`` over calibration batches and
``w_j = max|W_:,j|`` over the group's weights::

    s_j = a_j ** alpha / w_j ** (1 - alpha)      X' = X / s      W' = W * s

so ``X' W'^T = X W^T`` while ``X'`` has flatter channels. Where ``X`` is the
output of a LayerNorm that nothing else reads (pre-norm blocks), ``1/s`` is
folded into the LayerNorm's weight and bias. Where the LayerNorm output also
feeds a residual add (post-norm blocks such as BERT) or the producer is not a
LayerNorm, folding would change the model; then a :class:`SmoothInput`
multiply is inserted before the Linear instead. Either way the float model
computes the same function (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ._batches import hooked, run_batches


class SmoothInput(nn.Module):
    """Multiplies its input by ``1 / s`` per channel (last dimension)."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("inv_scale", scale.reciprocal())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.inv_scale.to(x.dtype)


class SmoothedLinear(nn.Sequential):
    """``linear(x / s)``: the explicit form of a smoothed Linear."""

    def __init__(self, scale: torch.Tensor, linear: nn.Linear) -> None:
        super().__init__()
        self.smooth = SmoothInput(scale)
        self.linear = linear


def _foldable_layer_norms(model: nn.Module) -> dict[str, set[str]]:
    """LayerNorm name → the set of module names that read its output, for LayerNorms
    whose output only modules read (found with torch.fx; empty if the model does not
    trace)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - any tracing failure means: do not fold
        return {}
    modules = dict(model.named_modules())
    result = {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.LayerNorm):
            continue
        users = list(node.users)
        if users and all(u.op == "call_module" for u in users):
            result[node.target] = {u.target for u in users}
    return result


@torch.no_grad()
def smooth_quant(
    model: nn.Module,
    batches: Iterable[Any],
    alpha: float = 0.5,
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
) -> dict[str, str]:
    """Smooths every ``nn.Linear`` of a float model in place (before ``prepare``).

    Returns, per smoothed Linear, how: ``"folded into <LayerNorm>"`` or ``"explicit"``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha}: must lie in [0, 1]")
    linears = {
        n: m
        for n, m in model.named_modules()
        if type(m) is nn.Linear and (filter_fn is None or filter_fn(m, n))
    }
    layer_norms = {n: m for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
    act_max: dict[str, torch.Tensor] = {}
    first_inputs: dict[str, int] = {}
    ln_outputs: dict[int, str] = {}
    alive: list[torch.Tensor] = []  # keeps first-batch tensors alive so their ids stay unique
    batch_index = [0]

    def on_linear(name):
        def hook(_module, args):
            x = args[0]
            amax = x.detach().abs().reshape(-1, x.shape[-1]).amax(dim=0).float()
            act_max[name] = torch.maximum(act_max[name], amax) if name in act_max else amax
            if batch_index[0] == 0 and name not in first_inputs:
                first_inputs[name] = id(x)
                alive.append(x)

        return hook

    def on_layer_norm(name):
        def hook(_module, _args, out):
            if batch_index[0] == 0:
                ln_outputs.setdefault(id(out), name)
                alive.append(out)

        return hook

    handles = [m.register_forward_pre_hook(on_linear(n)) for n, m in linears.items()]
    handles += [m.register_forward_hook(on_layer_norm(n)) for n, m in layer_norms.items()]

    def next_batch():
        batch_index[0] += 1
        alive.clear()

    with hooked(handles):
        run_batches(model, batches, forward, after_each=next_batch)
    if not act_max:
        raise RuntimeError("smooth_quant: no batch reached any Linear layer")

    groups: dict[int, list[str]] = {}
    for name, key in first_inputs.items():
        groups.setdefault(key, []).append(name)
    foldable = _foldable_layer_norms(model)
    how: dict[str, str] = {}
    for key, names in groups.items():
        a = act_max[names[0]]
        w = torch.stack([linears[n].weight.detach().abs().amax(dim=0).float() for n in names])
        w = w.amax(dim=0)
        scale = (a.pow(alpha) / w.pow(1 - alpha)).clamp(min=1e-5)
        scale = torch.where((a > 0) & (w > 0), scale, torch.ones_like(scale))
        ln_name = ln_outputs.get(key)
        fold = ln_name is not None and foldable.get(ln_name) == set(names)
        for n in names:
            lin = linears[n]
            lin.weight.mul_(scale.to(lin.weight.dtype))
        if fold:
            ln = layer_norms[ln_name]
            ln.weight.div_(scale.to(ln.weight.dtype))
            if ln.bias is not None:
                ln.bias.div_(scale.to(ln.bias.dtype))
            how.update({n: f"folded into {ln_name}" for n in names})
        else:
            for n in names:
                parent, _, child = n.rpartition(".")
                owner = model.get_submodule(parent) if parent else model
                setattr(owner, child, SmoothedLinear(scale, linears[n]))
            how.update({n: "explicit" for n in names})
    return how
