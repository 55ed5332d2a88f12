"""Quantizing a Hugging Face checkpoint larger than memory, one block at a time.

:func:`quantize_checkpoint` builds the model from its config with every parameter on
the meta device (no memory), loads the parts outside the repeated blocks (embeddings,
final norm, LM head) from the checkpoint's memory-mapped safetensors, and prepares
it. Then, for each block in order: its weights are read from the checkpoint, its
algorithms run (GPTQ from the block's calibration inputs, as the sequential engine
runs it), the block produces the next block's inputs from its quantized form, and
it is converted, written as one shard of the output and dropped back to the meta
device. Peak memory is the Python runtime, the parts outside the blocks, one block,
its statistics and the activation cache; ``max_memory`` bounds it: the cache gets
what the rest leaves and spills to disk beyond that, and a budget below what one
block needs is refused before anything runs. The estimate does not count heap
fragmentation or a batch's forward pass through a block: leave some headroom (measured
at hidden 2048 over 48 GPTQ blocks: peak 2.16 GiB, estimate 2.21, budget 2.5;
docs/performance.md).

The output is a sharded compressed-tensors folder (``model-0000i-of-0000n`` shards,
their index and ``config.json``) that transformers and compressed-tensors load, and
``quantkit`` reads; it appears only when the whole run succeeds.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import _core
from .converted import CONVERTED_TYPES
from .gptq import GPTQReport, _gptq_from_inputs, _hessian_bytes
from .prepared import QATLinear
from .save import _tied_embedding_problem, checkpoint_items
from .sequential import (
    ActivationCache,
    _no_cache,
    advance,
    block_bytes,
    block_list,
    call_block,
    capture_inputs,
    peak_rss_bytes,
)
from .workflow import convert, prepare

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_bytes(value: int | str) -> int:
    """``2GiB``, ``512MiB``, ``1.5GB`` or a number of bytes."""
    if isinstance(value, int):
        amount = value
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        unit = match.group(2).upper() if match else None
        if unit not in _UNITS:
            raise ValueError(
                f"max_memory {value!r} is not a size: write e.g. 2GiB, 512MiB, 1.5GB or bytes"
            )
        amount = int(float(match.group(1)) * _UNITS[unit])
    if amount <= 0:
        raise ValueError(f"max_memory {value!r} must be positive")
    return amount


@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return None


def _return_freed_memory() -> None:
    """Hands freed heap pages back to the system after a block (the tensors below the
    mmap threshold leave free pages in the heap: without this the resident set crept
    from 0.9 to 3.8 GiB over 64 blocks of a 5.5 GiB checkpoint)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
_MMAP_THRESHOLD = 4 << 20  # tensors of 4 MiB and more: mapped apart, unmapped when freed
_MMAP_THRESHOLD_AFTER = 32 << 20  # where glibc's own adaptive threshold settles


@contextlib.contextmanager
def _large_tensors_off_the_heap():
    """glibc's mmap threshold fixed at 4 MiB while blocks run. Its adaptive threshold
    grows to 32 MiB once a block that large is freed, so every tensor below that (a
    block's activations, the chunks of the Hessian conversions) then lives in the heap,
    where freed space is reused only by requests that fit in it: measured at hidden
    2048, the resident set at the end of each block's Hessian pass crept 0.2 GiB over
    10 blocks, and the peak with it. Mapped apart, a freed tensor's pages go back at
    once. Afterwards the threshold is set where the adaptive one settles (32 MiB)."""
    libc = _libc()
    tune = libc is not None and hasattr(libc, "mallopt")
    if tune:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    try:
        yield
    finally:
        if tune:
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_AFTER)


def current_rss_bytes() -> int:
    """The resident set now (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class OffloadReport:
    """What :func:`quantize_checkpoint` did and measured."""

    blocks: int
    shards: int
    seconds: float
    estimate_bytes: int  # the peak predicted before the run
    peak_rss_bytes: int  # the process's measured peak
    budget_bytes: int | None
    cache_on_disk: int  # batches whose block inputs went to disk
    gptq: list[GPTQReport] = field(default_factory=list)
    round_to_nearest: list[str] = field(default_factory=list)  # quantized without GPTQ

    def summary(self) -> str:
        budget = f" of a {self.budget_bytes / 2**30:.2f} GiB budget" if self.budget_bytes else ""
        return (
            f"{self.blocks} blocks in {self.seconds:.1f} s; peak RSS "
            f"{self.peak_rss_bytes / 2**30:.2f} GiB{budget} (estimated "
            f"{self.estimate_bytes / 2**30:.2f} GiB); {self.shards} shards; "
            f"{len(self.gptq)} layers by GPTQ, {len(self.round_to_nearest)} round-to-nearest"
        )


_DTYPES = {
    "F32": torch.float32,
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


class _CheckpointTensors:
    """The tensors of a safetensors checkpoint (one file or shards with an index), read
    one at a time through quantkit's C++ memory map (``_core.SafetensorsFile``): each
    read copies the tensor and hands its pages back, so the resident set holds what the
    caller keeps, not the file."""

    def __init__(self, folder: Path):
        index = folder / "model.safetensors.index.json"
        if index.exists():
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        else:
            files = ["model.safetensors"]
            if not (folder / files[0]).exists():
                raise FileNotFoundError(f"{folder} has neither model.safetensors nor an index")
        self._where: dict[str, tuple[Any, str, list[int]]] = {}
        for name in files:
            opened = _core.SafetensorsFile.open(os.fspath(folder / name))
            for tensor, dtype, shape in opened.tensors():
                self._where[tensor] = (opened, dtype, shape)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def load(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        opened, stored, shape = self._where[name]
        if stored not in _DTYPES:
            raise ValueError(f"tensor '{name}' is {stored}, which quantize_checkpoint cannot load")
        raw = torch.from_dlpack(opened.read(name))
        return raw.view(_DTYPES[stored]).reshape(shape).to(dtype)


def _materialize(owners: Iterable[tuple[str, nn.Module]], tensors: _CheckpointTensors, dtype):
    """Replaces the meta parameters of each (name, module) of ``owners`` (their own, not
    their children's) by the checkpoint's tensors; tied parameters stay tied (one new
    tensor per meta tensor)."""
    made: dict[int, nn.Parameter] = {}
    missing = []
    for owner_name, owner in owners:
        for leaf, param in list(owner._parameters.items()):
            if param is None or not param.is_meta:
                continue
            name = f"{owner_name}.{leaf}" if owner_name else leaf
            if id(param) not in made:
                if name not in tensors:
                    missing.append((owner, leaf, param, name))
                    continue
                made[id(param)] = nn.Parameter(tensors.load(name, dtype), requires_grad=False)
            owner._parameters[leaf] = made[id(param)]
    for owner, leaf, param, name in missing:
        if id(param) not in made:
            raise KeyError(f"the checkpoint has no tensor '{name}' (nor one tied to it)")
        owner._parameters[leaf] = made[id(param)]


def _write_part(parts: Path, index: int, items: list, config_text: str) -> Path:
    folder = parts / f"part-{index:05d}"
    _core.save_compressed_tensors(os.fspath(folder), items, config_text, False, 2**62)
    return folder


def _merged_config(parts: list[Path]) -> dict:
    """config.json of the whole model from the parts' configs: quantization groups of
    the same scheme merged, their targets concatenated in block order."""
    merged = None
    groups: dict[str, dict] = {}
    for part in parts:
        config = json.loads((part / "config.json").read_text())
        quantization = config.get("quantization_config")
        if merged is None:
            merged = config
        if not quantization:
            continue
        notes = quantization.get("quantkit", {})
        for key, group in quantization["config_groups"].items():
            same = {k: v for k, v in group.items() if k != "targets"}
            signature = json.dumps([same, notes.get(key)], sort_keys=True)
            if signature not in groups:
                groups[signature] = {"group": dict(group, targets=[]), "note": notes.get(key)}
            groups[signature]["group"]["targets"] += group["targets"]
        base = merged.setdefault("quantization_config", quantization)
        base["ignore"] = sorted(set(base.get("ignore", [])) | set(quantization.get("ignore", [])))
    if merged is not None and groups:
        quantization = merged["quantization_config"]
        quantization["config_groups"] = {
            f"group_{i}": g["group"] for i, g in enumerate(groups.values())
        }
        quantization["quantkit"] = {
            f"group_{i}": g["note"] for i, g in enumerate(groups.values()) if g["note"]
        }
    return merged or {}


def _assemble(parts: list[Path], source: Path, output: Path, replace: bool) -> int:
    """Moves the parts' tensors into one sharded folder next to ``output``, then renames
    it into place (a failed run leaves no output)."""
    from safetensors import safe_open

    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        total = len(parts)
        weight_map: dict[str, str] = {}
        size = 0
        for k, part in enumerate(parts):
            shard = f"model-{k + 1:05d}-of-{total:05d}.safetensors"
            files = sorted(part.glob("*.safetensors"))
            if len(files) != 1:
                raise RuntimeError(f"part {part} holds {len(files)} safetensors files, not one")
            with safe_open(str(files[0]), framework="pt") as opened:
                names = list(opened.keys())
            weight_map.update(dict.fromkeys(names, shard))
            size += files[0].stat().st_size
            shutil.move(str(files[0]), staging / shard)
        index = {"metadata": {"total_size": size}, "weight_map": weight_map}
        (staging / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
        (staging / "config.json").write_text(json.dumps(_merged_config(parts), indent=2))
        for extra in source.iterdir():  # tokenizer and generation files travel along
            skip = extra.suffix == ".safetensors" or extra.name.endswith(".index.json")
            if extra.is_file() and not skip and extra.name != "config.json":
                shutil.copy2(extra, staging / extra.name)
        if output.exists():
            if not replace:
                raise FileExistsError(f"{output} exists; pass replace=True to replace it")
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(parts)


def quantize_checkpoint(
    source: str | os.PathLike,
    output: str | os.PathLike,
    recipe: Any,
    calibration: Iterable[Any] | None = None,
    *,
    algorithms: Iterable[Any] = (),
    max_memory: int | str | None = None,
    dtype: torch.dtype | None = None,
    forward=None,
    blocks: str | None = None,
    progress: bool = False,
    replace: bool = False,
) -> OffloadReport:
    """Quantizes the Hugging Face causal LM checkpoint in ``source`` block by block,
    never holding more than one block's float weights, into the compressed-tensors
    folder ``output``.

    ``recipe``: what :func:`quantkit.torch.prepare` takes (a weight recipe or a
    ModelRecipe). ``algorithms``: ``[]`` (round to nearest; no calibration needed) or
    ``[quantkit.torch.GPTQ()]`` (its damping, block size and act-order are used; layers
    outside the blocks, such as an LM head, are rounded to nearest and reported).
    ``calibration``: token batches (tensors or tokenizer dicts) for GPTQ.
    ``max_memory``: a bound on the process's resident set (``"2GiB"``); the activation
    cache gets what the rest of the estimate leaves and goes to disk beyond it.
    ``dtype``: the blocks' compute dtype (default: the checkpoint's).
    """
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    from .algorithms import GPTQ

    started = time.perf_counter()
    source, output = Path(source), Path(output)
    algorithms = list(algorithms)
    unknown = [a for a in algorithms if not isinstance(a, GPTQ)]
    if unknown:
        raise ValueError(
            f"quantize_checkpoint runs GPTQ or round-to-nearest block by block; "
            f"{type(unknown[0]).__name__} changes float weights across blocks and is not "
            "available here (run it with quantize_ on a model that fits in memory)"
        )
    gptq = algorithms[0] if algorithms else None
    if gptq is not None and calibration is None:
        raise ValueError("GPTQ needs calibration batches (calibration=...)")
    if output.exists() and not replace:
        raise FileExistsError(f"{output} exists; pass replace=True to replace it")
    budget = parse_bytes(max_memory) if max_memory is not None else None

    config = AutoConfig.from_pretrained(source)
    dtype = dtype or getattr(config, "dtype", None) or torch.float32
    with init_empty_weights():  # parameters on meta; buffers (rotary tables) real
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    tensors = _CheckpointTensors(source)
    path, block_modules = block_list(model, blocks)
    in_blocks = re.compile(rf"{re.escape(path)}(\..*)?")
    _materialize(
        [(n, m) for n, m in model.named_modules() if not in_blocks.fullmatch(n)], tensors, dtype
    )
    prepare(model, recipe)
    config_text = config.to_json_string(use_diff=False)

    # The estimate: what is resident now (runtime, the parts outside the blocks), one
    # float block and its converted copy, its statistics; the cache gets the rest.
    largest = max(block_bytes(b) for b in block_modules)  # meta tensors know their size
    statistics = max(_hessian_bytes(b) for b in block_modules) if gptq else 0
    resident = current_rss_bytes()
    fixed = resident + 2 * largest + statistics
    cache_budget = None
    if budget is not None:
        cache_budget = budget - fixed
        if cache_budget <= 0:
            raise ValueError(
                f"max_memory {budget / 2**30:.2f} GiB is below what one block needs: "
                f"{fixed / 2**30:.2f} GiB (runtime and the parts outside the blocks "
                f"{resident / 2**30:.2f}, a block as float and converted "
                f"{2 * largest / 2**30:.2f}, its GPTQ statistics {statistics / 2**30:.2f})"
            )
    cache = None
    if gptq is not None:
        cache = ActivationCache(
            capture_inputs(model, block_modules[0], calibration, forward), cache_budget
        )
        if not len(cache):
            raise ValueError(f"no batch reached the first block '{path}.0'")
    estimate = fixed + (cache.memory_bytes if cache is not None else 0)
    if progress:
        print(
            f"estimated peak {estimate / 2**30:.2f} GiB"
            + (f" (budget {budget / 2**30:.2f} GiB)" if budget else ""),
            file=sys.stderr,
        )
    report = OffloadReport(
        blocks=len(block_modules),
        shards=0,
        seconds=0.0,
        estimate_bytes=estimate,
        peak_rss_bytes=0,
        budget_bytes=budget,
        cache_on_disk=0,
    )
    parts_root = Path(tempfile.mkdtemp(prefix=f".{output.name}.parts.", dir=output.parent))
    parts: list[Path] = []
    try:
        with _no_cache(model), torch.no_grad(), _large_tensors_off_the_heap():
            for index, block in enumerate(block_modules):
                began = time.perf_counter()
                name = f"{path}.{index}"
                _materialize(block.named_modules(prefix=name), tensors, dtype)
                if cache is not None:
                    options = (gptq.block_size, gptq.damp, gptq.act_order, False)
                    layers = {
                        f"{name}.{n}": m
                        for n, m in block.named_modules()
                        if isinstance(m, QATLinear) and m.weight_fake_quant is not None
                    }
                    report.gptq.extend(_gptq_from_inputs(block, layers, cache, call_block, options))
                    advance(cache, block)
                convert(block)
                parts.append(
                    _write_part(parts_root, index, checkpoint_items(block, name + "."), config_text)
                )
                block.to("meta")  # its memory goes back
                _return_freed_memory()
                if progress:
                    print(
                        f"block {index + 1}/{len(block_modules)} {name}: "
                        f"{time.perf_counter() - began:.2f} s, RSS "
                        f"{current_rss_bytes() / 2**30:.2f} GiB",
                        file=sys.stderr,
                    )
        if cache is not None:
            report.cache_on_disk = cache.on_disk
        rest = [
            n
            for n, m in model.named_modules()
            if isinstance(m, QATLinear) and m.weight_fake_quant is not None
        ]
        report.round_to_nearest = rest
        if rest:
            convert(model)
        converted = {n for n, m in model.named_modules() if isinstance(m, CONVERTED_TYPES)}
        problem = _tied_embedding_problem(config_text, converted)
        if problem:
            raise ValueError(problem)
        parts.append(
            _write_part(parts_root, len(block_modules), checkpoint_items(model), config_text)
        )
        report.shards = _assemble(parts, source, output, replace)
    finally:
        if cache is not None:
            cache.close()
        shutil.rmtree(parts_root, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    report.peak_rss_bytes = peak_rss_bytes()
    if progress:
        print(report.summary(), file=sys.stderr)
    return report
