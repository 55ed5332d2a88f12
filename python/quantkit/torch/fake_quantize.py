"""``FakeQuantize``: the module that fake-quantizes one tensor in a prepared model.

Its life cycle follows the two kinds of qparams in a recipe:

- dynamic (weights in QAT, per-token activations): qparams come from each
  tensor it sees; ``freeze(x)`` turns those of ``x`` into constants;
- static (calibrated activations, like torch.ao's ``QuantStub``): during
  :func:`quantkit.torch.calibrate` it only observes and passes its input
  through; ``finish_calibration()`` fixes the observer's qparams; from then on
  it fake-quantizes with them.

The qparams it holds are buffers (``scale``, ``zero_point`` and, for two-level
specs such as NVFP4, ``global_scale``), so a calibrated model's ``state_dict``
carries them.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import observers as _observers
from . import ops
from ._spec import args_from_key
from .recipes import TensorQuant

_OBSERVER_FACTORIES = {
    "minmax": lambda spec: _observers.MinMaxObserver(spec),
    "moving_average": lambda spec: _observers.MovingAverageObserver(spec),
    "histogram": lambda spec: _observers.HistogramObserver(spec),
    "histogram_mse": lambda spec: _observers.HistogramObserver(spec, method="mse"),
    "entropy": lambda spec: _observers.HistogramObserver(spec, method="entropy"),
    "percentile": lambda spec: _observers.HistogramObserver(spec, method="percentile"),
}


def make_observer(config: TensorQuant) -> _observers.Observer:
    """A fresh observer of the kind and spec ``config`` names."""
    return _OBSERVER_FACTORIES[config.observer](config.spec.spec())


_OBSERVER_FACTORIES["mse"] = _OBSERVER_FACTORIES["histogram_mse"]  # the scale searches' name


def keep_exact_through_casts(
    module: nn.Module, fn, recurse: bool, names: tuple[str, ...], dtype: torch.dtype
) -> torch.dtype:
    """``nn.Module._apply`` that moves the named buffers between devices but never
    changes their dtype; returns what ``fn`` makes of a tensor of ``dtype``."""
    kept = {n: module._buffers[n] for n in names if module._buffers.get(n) is not None}
    nn.Module._apply(module, fn, recurse)
    for n, original in kept.items():
        module._buffers[n] = original.to(module._buffers[n].device)
    return fn(torch.empty(0, dtype=dtype)).dtype


class FakeQuantize(nn.Module):
    """Fake-quantizes its input with quantkit's kernels (straight-through gradient)."""

    def __init__(self, config: TensorQuant) -> None:
        super().__init__()
        self.config = config
        self.spec_key = config.spec.key()
        self.static = config.qparams == "static"
        self.enabled = True
        self.observing = False
        self.observer: _observers.Observer | None = None
        self.batches_seen = 0  # calibration batches observed (for the coverage table)
        self.tokens_seen = 0
        self.compute_dtype = "float32"
        self.register_buffer("scale", None)
        self.register_buffer("zero_point", None)
        self.register_buffer("global_scale", None)

    @property
    def frozen(self) -> bool:
        """Whether the qparams are constants (calibrated or frozen)."""
        return self.scale is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            if self.observer is None:
                self.observer = make_observer(self.config)
            self.observer.observe(x.detach())
            self.batches_seen += 1
            channels = x.shape[1] if x.dim() == 4 else (x.shape[-1] if x.dim() else 1)
            self.tokens_seen += x.numel() // max(channels, 1)
            return x
        if not self.enabled:
            return x
        if self.frozen:
            return ops.fake_quantize(
                x, self.scale, self.zero_point, self.spec_key, self.compute_dtype, self.global_scale
            )
        if self.static:
            raise RuntimeError(
                "a static activation quantizer has no qparams yet: run "
                "quantkit.torch.calibrate(model, batches) before using the prepared model"
            )
        return ops.fake_quantize_dynamic(x, self.spec_key)

    def _apply(self, fn, recurse=True):
        # Calibrated qparams stay exact through .half() / .to(dtype): inputs of
        # the new dtype are fake-quantized with the same scales as before.
        keep_exact_through_casts(
            self, fn, recurse, ("scale", "zero_point", "global_scale"), torch.float32
        )
        return self

    def start_calibration(self) -> None:
        self.observing = True
        self.observer = None
        self.batches_seen = self.tokens_seen = 0

    def finish_calibration(self) -> None:
        """Fixes the qparams the observer found. Errors if it saw no data."""
        self.observing = False
        if self.observer is None:
            raise RuntimeError("no calibration data reached this quantizer (observer empty)")
        qp = self.observer.qparams()
        self._set(qp.scale, qp.zero_point, qp.compute_dtype, qp.global_scale)
        self.observer = None  # the qparams are fixed; core observers do not copy or pickle

    def freeze(self, x: torch.Tensor | None = None) -> None:
        """Turns dynamic qparams into constants: those of ``x``."""
        if self.frozen:
            return
        if x is None:
            raise ValueError("freeze(x): a dynamic quantizer needs the tensor to take qparams from")
        scale, zero_point, global_scale = ops.choose_qparams(x.detach(), self.spec_key)
        self._set(scale, zero_point, ops.dtype_name(x.dtype), global_scale)

    def constant_qparams(self) -> tuple[torch.Tensor, torch.Tensor, str]:
        """(scale, zero point, compute dtype) of a frozen quantizer, as convert stores them
        (two-level specs: the per-tensor scale is ``global_scale``)."""
        return self.scale, self.zero_point, self.compute_dtype

    def _set(self, scale, zero_point, compute_dtype: str, global_scale=None) -> None:
        self.scale = torch.as_tensor(scale).clone()
        zp = ops.NO_ZERO_POINT if zero_point is None else torch.as_tensor(zero_point)
        self.zero_point = zp.clone()
        g = None if global_scale is None else torch.as_tensor(global_scale)
        self.global_scale = g.clone() if g is not None and g.numel() else None
        self.compute_dtype = compute_dtype

    def get_extra_state(self) -> dict:
        return {"spec": self.spec_key, "compute_dtype": self.compute_dtype}

    def set_extra_state(self, state: dict) -> None:
        if state["spec"] != self.spec_key:
            raise ValueError(
                f"state_dict spec {args_from_key(state['spec']).describe()!r} does not match "
                f"this quantizer's {self.config.spec.describe()!r}"
            )
        self.compute_dtype = state["compute_dtype"]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Buffers that are None until calibration: take their shape from the checkpoint.
        for name in ("scale", "zero_point", "global_scale"):
            if getattr(self, name) is None and prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        state = "frozen" if self.frozen else ("calibrating" if self.observing else "dynamic")
        if not self.enabled:
            state = "disabled"
        return f"{self.config.describe()}, {state}"
