"""Running a model over calibration batches while hooks watch it: the loop that
calibration, SmoothQuant, GPTQ and the reports share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

Forward = Callable[[nn.Module, Any], Any]


def run_batches(
    model: nn.Module,
    batches: Iterable[Any],
    forward: Forward | None = None,
    after_each: Callable[[], None] | None = None,
) -> None:
    """``forward(model, batch)`` for every batch, without gradients; ``after_each()``
    after each one. Default: ``model(**batch)`` for dict batches (a tokenizer's output),
    ``model(batch)`` otherwise."""
    with torch.no_grad():
        for batch in batches:
            if forward is not None:
                forward(model, batch)
            elif isinstance(batch, Mapping):
                model(**batch)
            else:
                model(batch)
            if after_each is not None:
                after_each()


@contextmanager
def hooked(handles: list) -> Iterator[None]:
    """Removes the hook handles when the block ends, however it ends."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
