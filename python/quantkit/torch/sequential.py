"""Layer-by-layer calibration: the model's repeated blocks (decoder layers) one at a
time, each fed the outputs of the blocks before it *after* they were quantized, as
GPTQ's paper and llm-compressor's sequential pipeline do.

:func:`block_list` finds the blocks (Hugging Face decoder and encoder layouts, or the
largest ``nn.ModuleList`` of one module type; a dotted name picks them explicitly).
:func:`run_blocks` captures the first block's inputs once (positional and keyword
arguments: attention masks, position embeddings; caches off), then for each block calls
``visit(name, block, inputs)`` and runs the block on its inputs to make the next
block's. Only one block's statistics exist at a time; the activation cache holds one
block's inputs for every batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ._batches import run_batches

#: Where common Hugging Face models keep their repeated blocks.
BLOCK_PATHS = (
    "model.layers",  # Llama, Qwen2, Mistral, Phi3, Gemma (CausalLM)
    "layers",  # the same architectures' base models
    "model.decoder.layers",  # OPT
    "transformer.h",  # GPT-2, Falcon
    "gpt_neox.layers",
    "encoder.layer",  # BERT
    "bert.encoder.layer",
)

Inputs = list[tuple[tuple, dict]]


class _Captured(Exception):
    """Stops the forward pass once the first block's inputs are recorded."""


def block_list(model: nn.Module, blocks: str | None = None) -> tuple[str, nn.ModuleList]:
    """(dotted name, the ModuleList of blocks): ``blocks`` if given, else the first of
    :data:`BLOCK_PATHS` the model has, else its largest ``nn.ModuleList`` whose modules
    share one type."""
    if blocks is not None:
        found = model.get_submodule(blocks)
        if not isinstance(found, nn.ModuleList):
            raise ValueError(f"blocks='{blocks}' is a {type(found).__name__}, not an nn.ModuleList")
        return blocks, found
    for path in BLOCK_PATHS:
        try:
            found = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(found, nn.ModuleList) and len(found) > 0:
            return path, found
    candidates = [
        (len(m), name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.ModuleList) and len(m) > 1 and len({type(c) for c in m}) == 1
    ]
    if not candidates:
        raise ValueError(
            "no repeated blocks found (an nn.ModuleList of one module type); pass "
            "blocks='dotted.name' of the model's block list"
        )
    _, name, found = max(candidates, key=lambda c: c[0])
    return name, found


@contextmanager
def _no_cache(model: nn.Module):
    config = getattr(model, "config", None)
    old = getattr(config, "use_cache", None)
    if old is not None:
        config.use_cache = False
    try:
        yield
    finally:
        if old is not None:
            config.use_cache = old


def capture_inputs(
    model: nn.Module, first: nn.Module, batches: Iterable[Any], forward: Callable | None
) -> Inputs:
    """The positional and keyword arguments ``first`` is called with, per batch (the rest
    of the model does not run)."""
    captured: Inputs = []

    def hook(_module, args, kwargs):
        captured.append((_detached(args), _detached(kwargs)))
        raise _Captured

    def one(m, batch):
        try:
            if forward is not None:
                forward(m, batch)
            elif isinstance(batch, dict):
                m(**batch)
            else:
                m(batch)
        except _Captured:
            return

    handle = first.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with _no_cache(model):
            run_batches(model, batches, one)
    finally:
        handle.remove()
    return captured


def _detached(value):
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, tuple):
        return tuple(_detached(v) for v in value)
    if isinstance(value, list):
        return [_detached(v) for v in value]
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    return value


def _hidden(output):
    """A block's output hidden states (HF blocks return a tensor or a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def run_blocks(
    model: nn.Module,
    batches: Iterable[Any],
    visit: Callable[[str, nn.Module, Inputs], None],
    *,
    forward: Callable | None = None,
    blocks: str | None = None,
) -> list[str]:
    """Calls ``visit(name, block, inputs)`` for every block in order, then replaces each
    batch's hidden states by the block's output (run after ``visit``, so from the block
    as ``visit`` left it, e.g. quantized). Returns the block names."""
    path, block_modules = block_list(model, blocks)
    inputs = capture_inputs(model, block_modules[0], batches, forward)
    if not inputs:
        raise ValueError(f"no batch reached the first block '{path}.0'")
    names = []
    with _no_cache(model), torch.no_grad():
        for index, block in enumerate(block_modules):
            name = f"{path}.{index}"
            visit(name, block, inputs)
            for k, (args, kwargs) in enumerate(inputs):
                hidden = _hidden(block(*args, **kwargs))
                if args:
                    inputs[k] = ((hidden, *args[1:]), kwargs)
                else:  # hidden states passed by keyword
                    inputs[k] = (args, {**kwargs, "hidden_states": hidden})
            names.append(name)
    return names
