"""Calibration algorithms by name, for the one-call workflow
``quantize_(model, recipe, calibration=batches, algorithms=[AWQ(), GPTQ()])``.

Each is a small frozen value holding its options; :func:`run_stage` applies those that
change the float model (SmoothQuant, AWQ: scales folded into the norms or the layers
before), then, after ``prepare``, those that change the prepared weights (GPTQ), in the
order llm-compressor's ``oneshot`` applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from .recipes import Recipe


@dataclass(frozen=True)
class SmoothQuant:
    """:func:`quantkit.torch.smooth_quant` (activation outliers moved into the weights);
    ``sequential`` as :func:`smooth_quant`'s (default: one pass)."""

    alpha: float = 0.5
    mappings: tuple | None = None
    sequential: bool = False
    blocks: str | None = None
    max_cache_bytes: int | None = None

    def run(self, model, batches, forward, recipe: Recipe):
        from .smoothquant import smooth_quant

        return smooth_quant(
            model,
            batches,
            self.alpha,
            forward=forward,
            mappings=self.mappings,
            sequential=self.sequential,
            blocks=self.blocks,
            max_cache_bytes=self.max_cache_bytes,
        )


@dataclass(frozen=True)
class AWQ:
    """:func:`quantkit.torch.awq` (activation-aware scales searched against the recipe's
    weight rule, folded into the producers). ``sequential=None``: block by block where
    the model has a block list, else in one pass."""

    mappings: tuple | None = None
    grid: int = 20
    sequential: bool | None = None
    blocks: str | None = None
    max_cache_bytes: int | None = None
    distributed: bool = False  # statistics all-reduced over torch.distributed (see awq)

    def run(self, model, batches, forward, recipe: Recipe):
        from .awq import awq

        return awq(
            model,
            batches,
            recipe,
            forward=forward,
            mappings=self.mappings,
            grid=self.grid,
            sequential=_sequential(model, self.sequential, self.blocks),
            blocks=self.blocks,
            max_cache_bytes=self.max_cache_bytes,
            distributed=self.distributed,
        )


def _sequential(model, sequential: bool | None, blocks: str | None) -> bool:
    """``None``: whether the model has a block list to run on."""
    if sequential is not None:
        return sequential
    from .sequential import block_list

    try:
        block_list(model, blocks)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class GPTQ:
    """:func:`quantkit.torch.gptq` on the prepared weights. ``sequential=None``: block by
    block (each block's Hessians from the quantized blocks before it) when the model has
    a block list (:func:`quantkit.torch.sequential.block_list`), else in one pass."""

    block_size: int = 128
    damp: float = 0.01
    act_order: bool = True
    sequential: bool | None = None
    blocks: str | None = None
    max_cache_bytes: int | None = None  # block inputs beyond this go to disk
    progress: bool = False
    distributed: bool = False  # Hessians all-reduced over torch.distributed (see gptq)

    def run(self, model, batches, forward, recipe: Recipe):
        from .gptq import gptq

        sequential = _sequential(model, self.sequential, self.blocks)
        return gptq(
            model,
            batches,
            forward=forward,
            block_size=self.block_size,
            damp=self.damp,
            act_order=self.act_order,
            report=True,
            sequential=sequential,
            blocks=self.blocks,
            max_cache_bytes=self.max_cache_bytes,
            progress=self.progress,
            distributed=self.distributed,
        )


Algorithm = SmoothQuant | AWQ | GPTQ
_BEFORE_PREPARE = (SmoothQuant, AWQ)


def check(algorithms: Sequence[Algorithm], calibration: Iterable[Any] | None) -> None:
    for algorithm in algorithms:
        if not isinstance(algorithm, (SmoothQuant, AWQ, GPTQ)):
            raise TypeError(
                f"algorithms: {algorithm!r} is not one of quantkit.torch.SmoothQuant(), AWQ(), "
                "GPTQ()"
            )
        if calibration is None:
            raise ValueError(
                f"algorithms: {type(algorithm).__name__} needs calibration batches "
                "(calibration=...)"
            )
    if len(algorithms) != len({type(a) for a in algorithms}):
        raise ValueError("algorithms: each algorithm may appear once")


def run_stage(
    model: nn.Module,
    algorithms,
    batches,
    forward: Callable | None,
    recipe: Recipe,
    *,
    before_prepare: bool,
) -> dict[str, Any]:
    """The algorithms of one stage, in the given order: those that change the float
    model (``before_prepare``) or those that change the prepared weights."""
    return {
        type(a).__name__: a.run(model, batches, forward, recipe)
        for a in algorithms
        if isinstance(a, _BEFORE_PREPARE) == before_prepare
    }
