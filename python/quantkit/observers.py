"""Observers: value ranges collected over calibration batches, turned into qparams.

Every observer works at any granularity of its spec; the first batch fixes the
qparams grid. ``merge`` folds in an observer that saw other shards of the
data; ``save`` / ``load`` store the state as a safetensors file.
"""

from __future__ import annotations

import os
from typing import Any

from . import _core
from ._arrays import NUMPY, as_core_input, framework_of, to_framework

__all__ = [
    "FixedQParamsObserver",
    "FixedRangeObserver",
    "HistogramObserver",
    "LatestMinMaxObserver",
    "MeanAbsObserver",
    "MinMaxObserver",
    "MovingAverageObserver",
    "Observer",
]


class Observer:
    """Common interface; use a concrete observer."""

    _core: _core.Observer

    def __init__(self, core: _core.Observer) -> None:
        self._core = core
        self._framework = NUMPY

    def observe(self, x: Any) -> Any:
        """Fold one batch in; returns ``x`` unchanged (usable inside a forward pass)."""
        self._framework = framework_of(x)
        self._core.observe(as_core_input(x))
        return x

    def qparams(self):
        from . import QParams

        return QParams._wrap(self._core.qparams(), self._framework)

    def reset(self) -> None:
        self._core.reset()

    def merge(self, other: Observer) -> None:
        """Fold in what ``other`` observed (same kind, spec and grid)."""
        self._core.merge(other._core)

    def state(self) -> dict:
        state = self._core.state()
        state["tensors"] = {
            k: to_framework(v, self._framework) for k, v in state["tensors"].items()
        }
        return state

    def load_state(self, state: dict) -> None:
        tensors = {k: as_core_input(v) for k, v in state["tensors"].items()}
        self._core.load_state({**state, "tensors": tensors})
        if state["tensors"]:
            self._framework = framework_of(next(iter(state["tensors"].values())))

    def save(self, path: str | os.PathLike) -> None:
        """Write the state as a safetensors file (atomically)."""
        _core.save_observer_state(os.fspath(path), self._core.state())

    @staticmethod
    def load(path: str | os.PathLike, spec: _core.QuantSpec) -> Observer:
        """The observer saved at ``path``; ``spec`` must be the one it observed with."""
        core = _core.observer_from_state(_core.load_observer_state(os.fspath(path)), spec)
        kind = globals()[type(core).__name__]
        out = kind.__new__(kind)
        Observer.__init__(out, core)
        return out

    @property
    def spec(self) -> _core.QuantSpec:
        return self._core.spec

    @property
    def batches(self) -> int:
        return self._core.batches

    def describe(self) -> str:
        return self._core.describe()

    def __repr__(self) -> str:
        return self.describe()


class MinMaxObserver(Observer):
    """Running per-block min / max (torch.ao ``MinMaxObserver`` /
    ``PerChannelMinMaxObserver``); ``merge`` is exact."""

    def __init__(self, spec: _core.QuantSpec) -> None:
        super().__init__(_core.MinMaxObserver(spec))

    @property
    def min(self) -> Any:
        return to_framework(self._core.min, self._framework)

    @property
    def max(self) -> Any:
        return to_framework(self._core.max, self._framework)


class MovingAverageObserver(MinMaxObserver):
    """EMA of the per-block min / max (torch.ao ``MovingAverageMinMaxObserver``):
    the first batch sets the range, later ones move it by ``averaging_constant``."""

    def __init__(self, spec: _core.QuantSpec, averaging_constant: float = 0.01) -> None:
        Observer.__init__(self, _core.MovingAverageObserver(spec, averaging_constant))


class FixedRangeObserver(MinMaxObserver):
    """A user-given range, either end optional (``float_range``); missing ends come
    from the observed data. With an integer zero point the range must include 0;
    ranges far from zero need ``zero_point_domain="float"``."""

    def __init__(
        self, spec: _core.QuantSpec, min: float | None = None, max: float | None = None
    ) -> None:
        Observer.__init__(self, _core.FixedRangeObserver(spec, min, max))


class FixedQParamsObserver(Observer):
    """Fixed scale / zero point; ``observe`` only checks that a batch fits the grid."""

    def __init__(self, qparams) -> None:
        super().__init__(_core.FixedQParamsObserver(qparams._core))
        self._framework = qparams._framework


class HistogramObserver(Observer):
    """A histogram over the running range (torch.ao's accumulation, bit for bit on
    float32 data) and a range chosen from it by ``method``: ``"torch_l2"``
    (torch.ao's non-linear L2 search, bit-identical), ``"entropy"`` (TensorRT-style
    KL threshold), ``"percentile"`` (``percentile`` % quantiles) or ``"mse"``."""

    def __init__(
        self,
        spec: _core.QuantSpec,
        bins: int = 2048,
        method: str = "torch_l2",
        percentile: float = 99.99,
    ) -> None:
        super().__init__(_core.HistogramObserver(spec, bins, method, percentile))

    @property
    def histogram(self) -> Any:
        return to_framework(self._core.histogram, self._framework)

    @property
    def min(self) -> float:
        return self._core.min

    @property
    def max(self) -> float:
        return self._core.max

    def search_range(self) -> tuple[float, float]:
        """The [min, max] the L2 search keeps."""
        return self._core.search_range()


class LatestMinMaxObserver(MinMaxObserver):
    """The range of the latest batch only (QAT weights, dynamic ranges)."""

    def __init__(self, spec: _core.QuantSpec) -> None:
        Observer.__init__(self, _core.LatestMinMaxObserver(spec))


class MeanAbsObserver(Observer):
    """The stretched (PARQ) initialisation ``min(b * mean|x|, max|x|)`` per block,
    over every observed element; one batch gives ``choose_qparams`` exactly."""

    def __init__(self, spec: _core.QuantSpec) -> None:
        super().__init__(_core.MeanAbsObserver(spec))
