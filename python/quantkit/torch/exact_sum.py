"""Sums of float32 matrices whose result depends neither on the order of the terms nor
on how they are split across processes, so that GPTQ's Hessians are the same bit for
bit in one process and in N data-parallel ones.

Each term is converted exactly to fixed point: ``round(t * 2^s)`` (half to even) as a
96-bit integer held in two int64 limbs (``hi * 2^32 + lo``, ``0 <= lo < 2^32``), with
the shift ``s`` set once by the first term (the first calibration batch: in a
data-parallel run rank 0's, broadcast) so that its largest magnitude becomes about
2^40. Integer addition is associative, so limbs summed in any order, or all-reduced
across processes, give the same integers; the float64 value is rounded once, at the
end. Precision: 2^-40 of the first term's largest entry (a float32 term itself carries
2^-24 of its own), with room for terms up to 2^21 times larger; a larger one raises.
"""

from __future__ import annotations

import torch

_LOW = 32  # bits in the low limb
_TOP = 40  # the first term's largest magnitude lands at 2^_TOP
_LIMIT = 2.0**62  # |round(t * 2^s)| must stay below this (int64 limb sums stay exact)
_CHUNK = 1 << 18  # elements converted at a time (2 MiB of float64)


def distributed_world() -> int:
    """The number of processes of the default torch.distributed group (1 without one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def require_world(caller: str) -> int:
    """The world size, refusing ``distributed=True`` without 2 or more processes."""
    world = distributed_world()
    if world < 2:
        raise ValueError(
            f"{caller}: distributed=True needs torch.distributed initialized with 2 or more "
            "processes (each passes its share of the calibration batches)"
        )
    return world


class ExactSum:
    """A running sum of float32 tensors of one shape, exact in fixed point."""

    def __init__(self, what: str, distributed: bool = False):
        self.what = what  # named in errors
        self.distributed = distributed
        self.shift: int | None = None
        self.hi: torch.Tensor | None = None
        self.lo: torch.Tensor | None = None
        self.terms = 0

    def _first_shift(self, term: torch.Tensor) -> int:
        largest = term.abs().max().double()
        if not torch.isfinite(largest):
            raise ValueError(f"{self.what}: the first calibration batch gives non-finite values")
        if largest == 0:
            raise ValueError(
                f"{self.what}: the first calibration batch gives all zeros, and it sets the "
                "scale of the exact sum; put a representative batch first"
            )
        _, exponent = torch.frexp(largest)
        shift = torch.tensor([_TOP - int(exponent) + 1], dtype=torch.int64)
        if self.distributed:
            import torch.distributed as dist

            dist.broadcast(shift, src=0)  # every rank uses rank 0's first batch
        return int(shift)

    def add(self, term: torch.Tensor) -> None:
        if self.shift is None:
            self.shift = self._first_shift(term)
        if self.hi is None:
            self.hi = torch.zeros(term.shape, dtype=torch.int64)
            self.lo = torch.zeros(term.shape, dtype=torch.int64)
        flat, hi_sum, lo_sum = term.reshape(-1), self.hi.view(-1), self.lo.view(-1)
        scale = 2.0**self.shift  # a power of two: the product is exact (ldexp)
        # In chunks, through buffers made once: a large Hessian's temporaries are a few
        # MB beside its limbs, and converting it leaves no freed pieces in the heap.
        width = min(_CHUNK, flat.numel())
        scaled = torch.empty(width, dtype=torch.float64)
        fixed = torch.empty(width, dtype=torch.int64)
        limb = torch.empty(width, dtype=torch.int64)
        for start in range(0, flat.numel(), _CHUNK):
            part = slice(start, start + _CHUNK)
            n = min(_CHUNK, flat.numel() - start)
            s, f, piece = scaled[:n], fixed[:n], limb[:n]
            s.copy_(flat[part]).mul_(scale).round_()
            low, high = torch.aminmax(s)  # NaN fails both comparisons
            if not (bool(low > -_LIMIT) and bool(high < _LIMIT)):
                raise ValueError(
                    f"{self.what}: calibration batch {self.terms} has values over 2^21 times "
                    "the first batch's largest; the exact sum's scale comes from the first "
                    "batch: put a representative batch first"
                )
            f.copy_(s)  # an integer below 2^62: exact
            hi_sum[part].add_(torch.bitwise_right_shift(f, _LOW, out=piece))  # floor(/2^32)
            lo_sum[part].add_(torch.bitwise_and(f, 2**_LOW - 1, out=piece))  # in [0, 2^32)
        self.terms += 1

    def all_reduce(self) -> None:
        """Sums the limbs over the default process group (integers: any order is exact)."""
        import torch.distributed as dist

        dist.all_reduce(self.hi)
        dist.all_reduce(self.lo)

    def value(self) -> torch.Tensor:
        """The sum in float64: the exact integer rounded once, then scaled back. Converted
        in chunks, so the only large new tensor is the result."""
        out = torch.empty(self.hi.shape, dtype=torch.float64)
        flat, hi, lo = out.view(-1), self.hi.view(-1), self.lo.view(-1)
        scale = 2.0**-self.shift
        low = torch.empty(min(_CHUNK, flat.numel()), dtype=torch.float64)
        for start in range(0, flat.numel(), _CHUNK):
            part = slice(start, start + _CHUNK)
            piece = flat[part]
            piece.copy_(hi[part]).mul_(2.0**_LOW)
            piece.add_(low[: piece.numel()].copy_(lo[part])).mul_(scale)  # one rounding, then exact
        return out
