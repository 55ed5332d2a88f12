"""Layer-by-layer calibration: the model's repeated blocks (decoder layers) one at a
time, each fed the outputs of the blocks before it *after* they were quantized, as
GPTQ's paper and llm-compressor's sequential pipeline do.

:func:`block_list` finds the blocks (Hugging Face decoder and encoder layouts, or the
largest ``nn.ModuleList`` of one module type; a dotted name picks them explicitly).
:func:`run_blocks` captures the first block's inputs once (positional and keyword
arguments: attention masks, position embeddings; caches off), then for each block calls
``visit(name, block, inputs)`` and runs the block on its inputs to make the next
block's. Only one block's statistics exist at a time; the activation cache holds one
block's inputs for every batch, in memory up to a budget and on disk beyond it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
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


def check_inside_blocks(
    model: nn.Module, blocks: str | None, producers: Iterable[str], what: str
) -> None:
    """Refuses, before anything runs, mappings whose producer lies outside the blocks
    (the block-by-block run would never reach them)."""
    path, _ = block_list(model, blocks)
    outside = sorted(p for p in producers if not p.startswith(path + "."))
    if outside:
        raise ValueError(
            f"{what}: sequential mappings must lie inside the blocks ('{path}'); "
            f"'{outside[0]}' does not (run with sequential=False)"
        )


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


def call_block(block: nn.Module, item) -> Any:
    """``forward`` for batches of cached block inputs: ``block(*args, **kwargs)``."""
    args, kwargs = item
    return block(*args, **kwargs)


def _hidden(output):
    """A block's output hidden states (HF blocks return a tensor or a tuple)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    return 0


class ActivationCache(Sequence):
    """Each batch's block inputs, in memory up to ``max_bytes`` (None: no bound), the
    rest in files of a private temporary folder (``torch.save``; read back exactly),
    removed by :meth:`close`. ``peak_bytes``: the most held in memory at once."""

    def __init__(self, items: Inputs, max_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.folder: tempfile.TemporaryDirectory | None = None
        self.entries: list = []
        self.memory_bytes = self.peak_bytes = 0
        for item in items:
            self.entries.append(None)
            self[len(self.entries) - 1] = item

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, k):
        entry = self.entries[k]
        if isinstance(entry, str):
            return torch.load(entry, weights_only=False)
        return entry

    def __setitem__(self, k: int, item) -> None:
        old = self.entries[k]
        if old is not None and not isinstance(old, str):
            self.memory_bytes -= _nbytes(old)
        size = _nbytes(item)
        if self.max_bytes is None or self.memory_bytes + size <= self.max_bytes:
            self.entries[k] = item
            self.memory_bytes += size
            self.peak_bytes = max(self.peak_bytes, self.memory_bytes)
            return
        if self.folder is None:
            self.folder = tempfile.TemporaryDirectory(prefix="quantkit-activations-")
        path = os.path.join(self.folder.name, f"{k}.pt")
        torch.save(item, path)
        self.entries[k] = path

    @property
    def on_disk(self) -> int:
        """Batches whose inputs are in files now."""
        return sum(isinstance(e, str) for e in self.entries)

    def close(self) -> None:
        if self.folder is not None:
            self.folder.cleanup()
            self.folder = None


def run_blocks(
    model: nn.Module,
    batches: Iterable[Any],
    visit: Callable[[str, nn.Module, Inputs], None],
    *,
    forward: Callable | None = None,
    blocks: str | None = None,
    max_cache_bytes: int | None = None,
    progress: bool = False,
    statistics_bytes: Callable[[nn.Module], int] | None = None,
) -> list[str]:
    """Calls ``visit(name, block, inputs)`` for every block in order, then replaces each
    batch's hidden states by the block's output (run after ``visit``, so from the block
    as ``visit`` left it, e.g. quantized). The block inputs of all batches are cached in
    memory up to ``max_cache_bytes``, the rest on disk (:class:`ActivationCache`).
    ``progress``: on stderr, the estimated peak before the run (the cache, and
    ``statistics_bytes(block)`` of the largest block), a line per block (time, cache in
    memory and on disk) and the measured peak RSS after. Returns the block names."""
    path, block_modules = block_list(model, blocks)
    cache = ActivationCache(
        capture_inputs(model, block_modules[0], batches, forward), max_cache_bytes
    )
    if not len(cache):
        raise ValueError(f"no batch reached the first block '{path}.0'")
    if progress:
        print(memory_estimate(block_modules, cache, statistics_bytes), file=sys.stderr)
    names = []
    try:
        with _no_cache(model), torch.no_grad():
            for index, block in enumerate(block_modules):
                started = time.perf_counter()
                name = f"{path}.{index}"
                visit(name, block, cache)
                advance(cache, block)
                names.append(name)
                if progress:
                    print(
                        f"block {index + 1}/{len(block_modules)} {name}: "
                        f"{time.perf_counter() - started:.2f} s, activation cache "
                        f"{cache.memory_bytes / 1e6:.1f} MB in memory, "
                        f"{cache.on_disk} batches on disk",
                        file=sys.stderr,
                    )
    finally:
        cache.close()
    if progress:
        print(f"measured: peak RSS {peak_rss_bytes() / 1e6:.0f} MB", file=sys.stderr)
    return names


def advance(cache: ActivationCache, block: nn.Module) -> None:
    """Replaces each batch's hidden states in ``cache`` by ``block``'s output on them:
    the next block's inputs."""
    for k in range(len(cache)):
        args, kwargs = cache[k]
        hidden = _hidden(block(*args, **kwargs))
        if args:
            cache[k] = ((hidden, *args[1:]), kwargs)
        else:  # hidden states passed by keyword
            cache[k] = (args, {**kwargs, "hidden_states": hidden})


def block_bytes(block: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*block.parameters(), *block.buffers()])


def memory_estimate(
    block_modules: nn.ModuleList, cache: ActivationCache, statistics_bytes: Callable | None
) -> str:
    """What the engine holds at its peak besides the model: the activation cache (its
    in-memory part; the block outputs replace the inputs batch by batch) and the
    statistics of the largest block (``statistics_bytes(block)``, e.g. GPTQ's Hessians)."""
    statistics = (
        max((statistics_bytes(b) for b in block_modules), default=0) if statistics_bytes else 0
    )
    largest = max(block_bytes(b) for b in block_modules)
    total = cache.memory_bytes + statistics
    return (
        f"estimated peak besides the model: {total / 1e6:.1f} MB (activation cache "
        f"{cache.memory_bytes / 1e6:.1f} MB in memory, {cache.on_disk} batches on disk; "
        f"statistics of one block {statistics / 1e6:.1f} MB; largest block {largest / 1e6:.1f} MB)"
    )


def peak_rss_bytes() -> int:
    """The process's peak resident set so far (Linux reports kilobytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
