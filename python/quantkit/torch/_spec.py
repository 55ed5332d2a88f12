"""Quantization specs as plain, hashable values.

``torch.library`` ops take strings, modules keep their config in ``state_dict``
extras and recipes are frozen dataclasses, so the torch layer describes a spec
by a :class:`SpecArgs` value and builds the core ``QuantSpec`` from it once
(cached by its canonical JSON key).
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
from dataclasses import dataclass

from .. import _core

Granularity = tuple  # ("per_tensor",) | ("per_axis", a) | ("per_group", size, axis)
#                     | ("per_token",) | ("per_block", (b0, b1, ...))


@dataclass(frozen=True)
class SpecArgs:
    """The keyword arguments of ``quantkit.QuantSpec``, granularity as a tuple."""

    dtype: str = "int8"
    mapping: str = "symmetric"
    granularity: Granularity = ("per_tensor",)
    zero_point_domain: str | None = None
    eps: float | None = None
    scale_dtype: str | None = None
    zero_point_dtype: str | None = None
    quant_min: int | None = None
    quant_max: int | None = None
    e8m0_rounding: str = "floor"
    global_scale: bool = False
    scale_search: str | None = None  # "mse": clipping searched per block; "hqq": HQQ

    def key(self) -> str:
        """Canonical string form, the argument of the ``quantkit::`` torch ops."""
        fields = dataclasses.asdict(self)
        # fields added later are left out at their defaults, so keys stay as saved models hold them
        if not fields["global_scale"]:
            del fields["global_scale"]
        if fields["scale_search"] is None:
            del fields["scale_search"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    def spec(self) -> _core.QuantSpec:
        return spec_from_key(self.key())

    def replace(self, **changes) -> SpecArgs:
        return dataclasses.replace(self, **changes)

    @property
    def group_size(self) -> int | None:
        return self.granularity[1] if self.granularity[0] == "per_group" else None

    def describe(self) -> str:
        g = self.granularity
        gran = g[0] if len(g) == 1 else f"{g[0]}({', '.join(str(v) for v in g[1:])})"
        parts = [self.dtype, self.mapping, gran]
        if self.scale_dtype:
            parts.append(f"scale {self.scale_dtype}")
        if self.global_scale:
            parts.append("global scale")
        if self.scale_search:
            parts.append(f"search {self.scale_search}")
        return " ".join(parts)


def _granularity(g: Granularity) -> _core.Granularity:
    kind, *args = g
    if kind == "per_block":
        return _core.Granularity.per_block(list(args[0]))
    factories = {
        "per_tensor": _core.Granularity.per_tensor,
        "per_axis": _core.Granularity.per_axis,
        "per_group": _core.Granularity.per_group,
        "per_token": _core.Granularity.per_token,
    }
    if kind not in factories:
        raise ValueError(f"granularity {g!r}: kind must be one of {sorted(factories)} or per_block")
    return factories[kind](*args)


@functools.lru_cache(maxsize=256)
def spec_from_key(key: str) -> _core.QuantSpec:
    """The core spec of a :meth:`SpecArgs.key` string."""
    fields = json.loads(key)
    granularity = _granularity(tuple(fields.pop("granularity")))
    if fields.get("scale_search", "") is None:
        del fields["scale_search"]
    return _core.QuantSpec(granularity=granularity, **fields)


# Cached core objects must be gone before the extension unloads (nanobind checks).
atexit.register(spec_from_key.cache_clear)


@functools.lru_cache(maxsize=1024)  # forward passes ask per call; SpecArgs is frozen
def args_from_key(key: str) -> SpecArgs:
    fields = json.loads(key)
    gran = fields.pop("granularity")
    if gran[0] == "per_block":
        gran = ["per_block", tuple(gran[1])]
    return SpecArgs(granularity=tuple(gran), **fields)


def args_from_spec(spec: _core.QuantSpec) -> SpecArgs:
    """The :class:`SpecArgs` of a core spec (read from its lossless text form)."""
    fields = dict(item.split("=", 1) for item in spec.to_text().split(";"))
    dtype, _, value_range = fields["dtype"].partition("[")
    quant_min = quant_max = None
    if value_range:
        quant_min, quant_max = (int(v) for v in value_range.rstrip("]").split(","))
    kind, _, params = fields["granularity"].partition("(")
    numbers = [int(v) for v in params.rstrip(")").split(",")] if params else []
    if kind == "per_group" and numbers[1:] == [-1]:
        numbers = numbers[:1]  # the default axis, as recipes write it
    granularity = (kind, tuple(numbers)) if kind == "per_block" else (kind, *numbers)

    def unset(value: str) -> str | None:
        return None if value == "-" else value

    args = SpecArgs(
        dtype=dtype,
        mapping=fields["mapping"],
        granularity=granularity,
        zero_point_domain=unset(fields["zero_point_domain"]),
        eps=None if fields["eps"] == "-" else float(fields["eps"]),
        scale_dtype=unset(fields["scale_dtype"]),
        zero_point_dtype=unset(fields["zero_point_dtype"]),
        quant_min=quant_min,
        quant_max=quant_max,
        e8m0_rounding=fields["e8m0_rounding"],
        global_scale=fields.get("global_scale") == "true",
        scale_search=fields.get("scale_search"),
    )
    if args.spec() != spec:
        raise ValueError(f"spec {spec!r} does not round-trip through SpecArgs ({args})")
    return args
