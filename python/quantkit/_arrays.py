"""Zero-copy array interop: NumPy arrays and torch tensors in, the same kind out."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

NUMPY = "numpy"
TORCH = "torch"


def _torch():
    return sys.modules.get("torch")


def framework_of(x: Any) -> str:
    """'torch' for torch tensors, 'numpy' for everything else."""
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor):
        return TORCH
    return NUMPY


def as_core_input(x: Any) -> Any:
    """An object the extension reads through DLPack without copying.

    torch tensors that require grad are detached (a view, no copy); torch
    tensors on other devices are rejected; other inputs go through
    ``np.asarray`` (a view for NumPy arrays).
    """
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor):
        if x.device.type != "cpu":
            raise ValueError(f"x is on device {x.device}; quantkit runs on the CPU")
        return x.detach()
    return np.asarray(x)


def as_core_output(out: Any) -> Any:
    """The destination of an out= argument: a writable, C-contiguous CPU array.

    torch tensors that require grad are refused (an in-place write would bypass
    autograd), as torch refuses them for its own out= arguments.
    """
    torch = _torch()
    if torch is not None and isinstance(out, torch.Tensor):
        if out.device.type != "cpu":
            raise ValueError(f"out is on device {out.device}; quantkit runs on the CPU")
        if out.requires_grad:
            raise ValueError("out requires grad; out= writes in place, outside autograd")
        if not out.is_contiguous():
            raise ValueError(f"out must be contiguous (strides {out.stride()})")
        return out
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array or a torch tensor, not {type(out).__name__}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable, C-contiguous array")
    return out


class _DLPackCapsule:
    """Presents a DLPack capsule from the extension through the ``__dlpack__`` protocol."""

    __slots__ = ("_capsule",)

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __dlpack__(self, **_: Any) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU


def to_framework(array: Any, framework: str) -> Any:
    """Wraps an extension result (a DLPack capsule) as a NumPy array or torch tensor, zero-copy."""
    if array is None:
        return None
    if framework == TORCH:
        return _torch().from_dlpack(array)
    return np.from_dlpack(_DLPackCapsule(array))


def dtype_name(dtype: Any) -> str:
    """Canonical dtype name from a string, a torch dtype or a NumPy dtype."""
    if isinstance(dtype, str):
        return dtype
    torch = _torch()
    if torch is not None and isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    return np.dtype(dtype).name
