"""The QuantSpec each `quantkit quantize` scheme stands for (docs/formats.md),
written out independently of the tool's own table."""

import quantkit as qk


def spec_of(scheme: str) -> tuple[qk.QuantSpec, str]:
    """The QuantSpec each scheme stands for (docs/formats.md), and its format."""
    for search in ("mse", "hqq"):
        if scheme.endswith(f":search={search}"):
            spec, kind = spec_of(scheme.removesuffix(f":search={search}"))
            text = spec.to_text() + f";scale_search={search}"
            return qk.QuantSpec.from_text(text), kind
    if scheme.startswith(("int", "stretched")):
        head, *rest = scheme.split("-")
        bits = int(head.removeprefix("int").removeprefix("stretched"))
        group = next((int(p[1:]) for p in rest if p.startswith("g")), None)
        mapping = (
            "stretched"
            if head.startswith("stretched")
            else "asymmetric"
            if "asym" in rest
            else "symmetric_signed"
            if "signed" in rest
            else "symmetric"
        )
        granularity = qk.per_group(group) if group else qk.per_axis(0)
        return qk.QuantSpec(dtype=f"int{bits}", mapping=mapping, granularity=granularity), "pack"
    if scheme == "fp8":
        return qk.QuantSpec(dtype="fp8_e4m3fn", scale_dtype="float32"), "fp8"
    if scheme == "fp8-channel":
        return qk.QuantSpec(
            dtype="fp8_e4m3fn", granularity=qk.per_axis(0), scale_dtype="float32"
        ), "fp8"
    if scheme == "mxfp8":
        return qk.QuantSpec(
            dtype="fp8_e4m3fn", granularity=qk.per_group(32), scale_dtype="e8m0"
        ), "mx8"
    if scheme == "mxfp4":
        return qk.QuantSpec(
            dtype="fp4_e2m1", granularity=qk.per_group(32), scale_dtype="e8m0"
        ), "mx4"
    assert scheme == "nvfp4"
    return qk.QuantSpec(
        dtype="fp4_e2m1", granularity=qk.per_group(16), scale_dtype="fp8_e4m3fn", global_scale=True
    ), "nv4"
