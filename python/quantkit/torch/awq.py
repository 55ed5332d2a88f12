"""AWQ (activation-aware weight quantization, Lin et al. 2023): per input channel
scales that protect the weights seeing large activations, searched against the
quantized output and folded into the layer before, so the float model computes the
same function.

For each group of Linear layers that read one input ``X`` (a mapping: the module that
produces ``X``, then the Linears reading it) and ``a_j = mean|X_j|`` over the
calibration tokens, every ``alpha`` of the grid 0, 1/n, ..., 1 gives::

    s = a ** alpha,  s / sqrt(max(s) * min(s))      W' = W * s      X' = X / s

and the kept ``alpha`` minimizes ``|| X' Q(W')^T - X W^T ||^2`` over a sample of
calibration rows, with ``Q`` the recipe's weight quantization (quantkit's kernel).
``1/s`` is then folded into the producer: a norm's weight (and bias), or a Linear's
output rows (``v_proj`` before ``o_proj`` when their shapes match, ``up_proj`` before
``down_proj``). Run it on the float model, then ``prepare`` with the same recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from . import ops
from ._batches import hooked, run_batches
from .exact_sum import ExactSum, require_world
from .recipes import Recipe
from .smoothquant import DECODER_MAPPINGS, Mapping, _fold_into_layer_norm, _mapped_groups

AWQ_DECODER_MAPPINGS: tuple[Mapping, ...] = (
    *DECODER_MAPPINGS,
    ("self_attn.v_proj", ("self_attn.o_proj",)),
    ("mlp.up_proj", ("mlp.down_proj",)),
)
"""Hugging Face decoder blocks: both pre-norms (as SmoothQuant), and v -> o, up -> down."""


class _Inputs:
    """Per group: mean |X| per channel over every token (an exact sum,
    :mod:`.exact_sum`, so it does not depend on how batches are split), and the first
    ``rows`` input rows."""

    def __init__(self, rows: int, distributed: bool = False) -> None:
        self.rows = rows
        self.distributed = distributed
        self.abs_sum: dict[str, ExactSum] = {}
        self.count: dict[str, int] = {}
        self.sample: dict[str, list[torch.Tensor]] = {}

    def hook(self, name: str):
        def record(_module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            if name not in self.abs_sum:
                what = f"awq: the input magnitudes of '{name}'"
                self.abs_sum[name] = ExactSum(what, self.distributed)
            self.abs_sum[name].add(x.abs().sum(dim=0))
            self.count[name] = self.count.get(name, 0) + x.shape[0]
            kept = sum(t.shape[0] for t in self.sample.get(name, []))
            if kept < self.rows:
                self.sample.setdefault(name, []).append(x[: self.rows - kept].clone())

        return record

    def mean_abs(self, name: str) -> torch.Tensor:
        return (self.abs_sum[name].value() / self.count[name]).float()

    def merge_processes(self, names: list[str]) -> None:
        """Sums and counts all-reduced; the samples of all processes in rank order, cut
        to ``rows`` (one process's first rows when the shares are contiguous)."""
        import torch.distributed as dist

        missing = [n for n in names if n not in self.count]
        if missing:
            raise RuntimeError(f"awq: no batch of this process reached '{missing[0]}'")
        counts = torch.tensor([self.count[n] for n in names], dtype=torch.int64)
        dist.all_reduce(counts)
        gathered: list = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, [self.sample[n] for n in names])
        for k, name in enumerate(names):
            self.abs_sum[name].all_reduce()
            self.count[name] = int(counts[k])
            rows = torch.cat([torch.cat(per_rank[k]) for per_rank in gathered])
            self.sample[name] = [rows[: self.rows]]


def _quantized(weight: torch.Tensor, spec_key: str) -> torch.Tensor:
    return ops.fake_quantize_dynamic(weight.contiguous(), spec_key)


def _search(x, weights, mean_abs, spec_key, grid) -> tuple[float, torch.Tensor]:
    """The alpha (and its scale) of least output error for one group."""
    reference = [x @ w.float().T for w in weights]
    best = (float("inf"), 0.0, torch.ones_like(mean_abs))
    for step in range(grid + 1):
        alpha = step / grid
        scale = mean_abs.clamp(min=1e-8).pow(alpha)
        scale = (scale / (scale.max() * scale.min()).sqrt()).clamp(min=1e-4)
        scaled_x = x / scale
        error = 0.0
        for w, y in zip(weights, reference, strict=True):
            q = _quantized((w.float() * scale).to(w.dtype), spec_key).float()
            error += (scaled_x @ q.T - y).square().sum().item()
        if error < best[0]:
            best = (error, alpha, scale)
    return best[1], best[2]


def _fold_into_producer(producer: nn.Module, scale: torch.Tensor) -> None:
    if isinstance(producer, nn.Linear):  # its output rows feed the group's input channels
        producer.weight.div_(scale.to(producer.weight.dtype)[:, None])
        if producer.bias is not None:
            producer.bias.div_(scale.to(producer.bias.dtype))
    else:
        _fold_into_layer_norm(producer, scale)


@torch.no_grad()
def awq(
    model: nn.Module,
    batches: Iterable[Any],
    recipe: Recipe,
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    mappings: Iterable[Mapping] | None = None,
    grid: int = 20,
    rows: int = 512,
    sequential: bool = False,
    blocks: str | None = None,
    max_cache_bytes: int | None = None,
    distributed: bool = False,
) -> dict[str, float]:
    """Searches and folds AWQ scales into a float model in place (then ``prepare`` it
    with ``recipe``, whose weight rule the search quantizes with). ``mappings``:
    ``(producer, (linear, ...))`` name suffixes, default :data:`AWQ_DECODER_MAPPINGS` for
    Hugging Face decoder blocks (a ``v_proj -> o_proj`` pair is skipped where grouped-query
    attention makes their widths differ). ``rows``: calibration rows per group the error
    is measured on. ``sequential``: block by block on the sequential engine
    (:mod:`quantkit.torch.sequential`), holding one block's statistics; the folded blocks
    compute the float function, so the result is the one-pass one up to float rounding.
    ``distributed=True`` (torch.distributed initialized): each process passes a
    contiguous share of the batches, rank 0 the first; the statistics are all-reduced
    (exact sums; the error rows are the first ``rows`` in rank order), so every process
    folds the scales one process computes from all the batches, bit for bit.
    Returns the kept alpha per producer."""
    if recipe.weight is None:
        raise ValueError(f"awq: recipe {recipe.name} quantizes no weights")
    spec_key = recipe.weight.spec.key()
    linears = {n: m for n, m in model.named_modules() if type(m) is nn.Linear}
    if mappings is None:
        names = {name.rpartition(".")[2] for name, _ in model.named_modules()}
        if not {"input_layernorm", "post_attention_layernorm"} <= names:
            raise ValueError("awq: give mappings (producer -> Linears) for this model")
        mappings = AWQ_DECODER_MAPPINGS
    modules = dict(model.named_modules())
    groups = [
        (producer, members)
        for producer, members in _mapped_groups(model, mappings, linears)
        if not isinstance(modules[producer], nn.Linear)
        or modules[producer].out_features == linears[members[0]].in_features
    ]
    if not groups:
        raise ValueError("awq: no mapping matched the model")
    if distributed:
        require_world("awq")
    search = (linears, modules, spec_key, grid, rows, distributed)
    if not sequential:
        return _awq_groups(model, groups, batches, forward, search)
    from .sequential import call_block, check_inside_blocks, run_blocks

    check_inside_blocks(model, blocks, (producer for producer, _ in groups), "awq")
    chosen: dict[str, float] = {}

    def visit(name: str, block: nn.Module, inputs) -> None:
        local = [g for g in groups if g[0].startswith(name + ".")]
        if local:
            chosen.update(_awq_groups(block, local, inputs, call_block, search))

    run_blocks(
        model, batches, visit, forward=forward, blocks=blocks, max_cache_bytes=max_cache_bytes
    )
    return chosen


def _awq_groups(runner: nn.Module, groups, batches, forward, search) -> dict[str, float]:
    """Statistics of ``groups`` from running ``batches`` through ``runner``, then the
    search and the fold for each."""
    linears, modules, spec_key, grid, rows, distributed = search
    inputs = _Inputs(rows, distributed)
    firsts = {members[0]: producer for producer, members in groups}
    with hooked([linears[n].register_forward_pre_hook(inputs.hook(n)) for n in firsts]):
        run_batches(runner, batches, forward)
    if distributed:
        inputs.merge_processes(list(firsts))
    chosen: dict[str, float] = {}
    for producer, members in groups:
        first = members[0]
        if first not in inputs.count:
            raise RuntimeError(f"awq: no calibration batch reached '{first}'")
        mean_abs = inputs.mean_abs(first)
        x = torch.cat(inputs.sample[first])
        alpha, scale = _search(x, [linears[n].weight for n in members], mean_abs, spec_key, grid)
        for n in members:
            linears[n].weight.mul_(scale.to(linears[n].weight.dtype))
        _fold_into_producer(modules[producer], scale)
        chosen[producer] = alpha
    return chosen
