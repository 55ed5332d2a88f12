"""Quantization recipes: what a model's weights and activations become.

A :class:`Recipe` says, for the modules it covers, how the weight is quantized
and how the module's input activation is quantized. Each tensor's rule is a
:class:`TensorQuant`: a spec and where its qparams come from:

- ``"dynamic"``: chosen from the tensor at every call (weights during QAT,
  per-token activations at inference);
- ``"static"``: calibrated by an observer, then constant.

The named recipes follow the torchao / torch.ao configurations of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._spec import SpecArgs

FLOAT32_EPS = 2.0**-23
OBSERVERS = (
    "minmax",
    "moving_average",
    "histogram",
    "histogram_mse",
    "mse",  # the same observer as histogram_mse, by the name scale searches use
    "entropy",
    "percentile",
)


@dataclass(frozen=True)
class TensorQuant:
    """How one tensor is quantized: its spec and where its qparams come from."""

    spec: SpecArgs
    qparams: str = "dynamic"  # "dynamic" | "static"
    observer: str = "histogram"  # for static qparams; one of OBSERVERS

    def __post_init__(self) -> None:
        if self.qparams not in ("dynamic", "static", "learnable"):
            raise ValueError(
                f"qparams={self.qparams!r}: must be 'dynamic', 'static' or 'learnable'"
            )
        if self.observer not in OBSERVERS:
            raise ValueError(f"observer={self.observer!r}: must be one of {', '.join(OBSERVERS)}")

    def describe(self) -> str:
        how = f"static ({self.observer})" if self.qparams == "static" else self.qparams
        return f"{self.spec.describe()}, {how}"


@dataclass(frozen=True)
class Recipe:
    """Weight and input-activation quantization for Linear / Conv2d, and the weight rule
    for Embedding (``None``: embeddings stay in float)."""

    name: str
    weight: TensorQuant | None
    activation: TensorQuant | None = None
    embedding: TensorQuant | None = None

    @property
    def needs_calibration(self) -> bool:
        return self.activation is not None and self.activation.qparams != "dynamic"

    def describe(self) -> str:
        parts = [f"weights: {self.weight.describe() if self.weight else 'float'}"]
        parts.append(f"activations: {self.activation.describe() if self.activation else 'float'}")
        if self.embedding:
            parts.append(f"embeddings: {self.embedding.describe()}")
        return f"{self.name} ({'; '.join(parts)})"


def _weight(dtype: str, group_size: int | None, mapping: str = "symmetric", **kw) -> TensorQuant:
    granularity = ("per_group", group_size) if group_size else ("per_axis", 0)
    return TensorQuant(SpecArgs(dtype=dtype, mapping=mapping, granularity=granularity, **kw))


def _int_weight(
    bits: int, group_size: int | None, symmetric: bool, scale_search: str | None = None
) -> TensorQuant:
    mapping = "symmetric" if symmetric else "asymmetric"
    return _weight(f"int{bits}", group_size, mapping, scale_search=scale_search)


def W8A8(observer: str = "histogram", scale_dtype: str | None = None) -> Recipe:  # noqa: N802
    """int8 symmetric per-channel weights, uint8 per-tensor activations calibrated by
    ``observer`` (torch.ao's static default; QDQ-exportable). ``scale_dtype``: the dtype
    the activation scale is stored in (None: float32); ``"bfloat16"`` / ``"float16"`` for
    a model saved with :func:`save_pretrained` in that dtype, where compressed-tensors
    keeps input scales."""
    act = SpecArgs(dtype="uint8", mapping="asymmetric", scale_dtype=scale_dtype)
    return Recipe("W8A8", _int_weight(8, None, True), TensorQuant(act, "static", observer))


def W8A8Dynamic() -> Recipe:  # noqa: N802
    """int8 symmetric per-channel weights, int8 symmetric per-token dynamic activations."""
    act = SpecArgs(dtype="int8", mapping="symmetric", granularity=("per_token",))
    return Recipe("W8A8-dynamic", _int_weight(8, None, True), TensorQuant(act))


def _search_suffix(scale_search: str | None) -> str:
    return f"-{scale_search}" if scale_search else ""


def W4A16(  # noqa: N802
    group_size: int | None = 128, symmetric: bool = True, scale_search: str | None = None
) -> Recipe:
    """int4 weights per group (``None``: per channel), float activations: symmetric by
    default, as compressed-tensors' W4A16 preset and the CLI's ``int4-g128`` (``symmetric=False``:
    an integer zero point per group, compressed-tensors' W4A16_ASYM). ``scale_search="mse"``:
    each group's clipping ratio searched for the least squared error (data-free; codes stay
    round-to-nearest); ``"hqq"`` (asymmetric only): that search, then the scale refined by
    half-quadratic quantization under the integer zero point."""
    name = "W4A16" + (f"-g{group_size}" if group_size else "") + ("" if symmetric else "-asym")
    return Recipe(
        name + _search_suffix(scale_search), _int_weight(4, group_size, symmetric, scale_search)
    )


def W8A16(  # noqa: N802
    group_size: int | None = None, symmetric: bool = True, scale_search: str | None = None
) -> Recipe:
    """int8 weights per channel (or per group), float activations; ``scale_search`` as
    :func:`W4A16`'s."""
    name = "W8A16" + (f"-g{group_size}" if group_size else "") + ("" if symmetric else "-asym")
    return Recipe(
        name + _search_suffix(scale_search), _int_weight(8, group_size, symmetric, scale_search)
    )


def Int8DynActInt4Weight(group_size: int = 32) -> Recipe:  # noqa: N802
    """8da4w: int8 asymmetric per-token dynamic activations, int4 symmetric per-group
    weights (torchao's ``Int8DynamicActivationInt4WeightConfig`` / QAT quantizer)."""
    # float32 scales and float32 eps whatever the input dtype, as torchao's QAT config
    act = SpecArgs(
        dtype="int8",
        mapping="asymmetric",
        granularity=("per_token",),
        scale_dtype="float32",
        eps=FLOAT32_EPS,
    )
    return Recipe(f"8da4w-g{group_size}", _int_weight(4, group_size, True), TensorQuant(act))


def FP8(granularity: str = "tensor") -> Recipe:  # noqa: N802
    """e4m3fn weights and dynamic activations with float32 scales, per tensor or per row
    (``granularity="row"`` or ``"channel"``: per output channel, as the CLI's ``fp8-channel``,
    and per token; compressed-tensors' FP8_DYNAMIC)."""
    if granularity not in ("tensor", "row", "channel"):
        raise ValueError(f"granularity={granularity!r}: must be 'tensor' or 'row' ('channel')")
    row = granularity in ("row", "channel")
    w = SpecArgs(
        dtype="fp8_e4m3fn",
        granularity=("per_axis", 0) if row else ("per_tensor",),
        scale_dtype="float32",
    )
    a = w.replace(granularity=("per_token",) if row else ("per_tensor",))
    return Recipe("FP8" + ("-row" if row else ""), TensorQuant(w), TensorQuant(a))


def MXFP4() -> Recipe:  # noqa: N802
    """OCP MXFP4 weights: e2m1 with one E8M0 scale per 32 elements; float activations."""
    return Recipe("MXFP4", _weight("fp4_e2m1", 32, scale_dtype="e8m0"))


def MXFP8() -> Recipe:  # noqa: N802
    """OCP MXFP8 weights: e4m3fn with one E8M0 scale per 32 elements; float activations."""
    return Recipe("MXFP8", _weight("fp8_e4m3fn", 32, scale_dtype="e8m0"))


def NVFP4(global_scale: bool = True) -> Recipe:  # noqa: N802
    """NVFP4 weights: e2m1 with one e4m3 scale per 16 elements under a float32 per-tensor
    scale (two-level, as the format defines and llm-compressor writes; the per-tensor scale
    is the power of two at or above amax / 2688). ``global_scale=False``: single level, as
    torchao's ``NVFP4Tensor`` without a per-tensor scale. Float activations."""
    weight = _weight("fp4_e2m1", 16, scale_dtype="fp8_e4m3fn", global_scale=global_scale)
    return Recipe("NVFP4" if global_scale else "NVFP4-single-level", weight)


def Stretched(bits: int, group_size: int | None = 32) -> Recipe:  # noqa: N802
    """PARQ's stretched uniform grid ``(k + 1/2) * s`` with ``s`` from mean |w| per group
    (``None``: per channel), for 2- and 3-bit (up to 4-bit) QAT; float activations."""
    if bits not in (1, 2, 3, 4):
        raise ValueError(f"bits={bits}: the stretched grid is defined for 1..4 bits")
    name = f"stretched{bits}" + (f"-g{group_size}" if group_size else "")
    return Recipe(name, _weight(f"int{bits}", group_size, "stretched"))


def with_embeddings(recipe: Recipe, bits: int = 8, group_size: int | None = None) -> Recipe:
    """``recipe`` with ``nn.Embedding`` tables quantized too: int``bits`` symmetric per
    row (or per group of ``group_size`` along the row)."""
    rule = _int_weight(bits, group_size, symmetric=True)
    suffix = f"+emb{bits}" + (f"-g{group_size}" if group_size else "")
    return Recipe(recipe.name + suffix, recipe.weight, recipe.activation, rule)


def LSQ(bits: int = 4, activation_bits: int | None = 8) -> Recipe:  # noqa: N802
    """Learned step size QAT: int``bits`` symmetric per-channel weights and (unless
    ``None``) uint``activation_bits`` per-tensor activations, with scales (and the
    activation zero point) trained as parameters. Calibrate before building the
    optimizer: that creates the activation parameters."""
    weight = TensorQuant(
        SpecArgs(dtype=f"int{bits}", granularity=("per_axis", 0)), qparams="learnable"
    )
    act = None
    if activation_bits is not None:
        spec = SpecArgs(dtype=f"uint{activation_bits}", mapping="asymmetric")
        act = TensorQuant(spec, "learnable", "minmax")
    name = f"LSQ-w{bits}" + (f"a{activation_bits}" if activation_bits else "")
    return Recipe(name, weight, act)
