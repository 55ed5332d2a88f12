"""QuantSpec equality and its lossless text see every field; observers of
specs that differ in one field refuse to merge."""

import pytest
import quantkit as qk
import torch

# Spec arguments only: QuantSpec objects are built inside each test, so none
# outlives the test session's teardown of the extension.
BASE = {"dtype": "int4", "mapping": "asymmetric", "group_size": 32}
VARIANTS = {
    "dtype": {"dtype": "int3"},
    "mapping": {"mapping": "symmetric"},
    "granularity": {"group_size": 16},
    "zero_point_domain": {"zero_point_domain": "float"},
    "eps": {"eps": 1e-7},
    "scale_dtype": {"scale_dtype": "bfloat16"},
    "zero_point_dtype": {"zero_point_dtype": "int8"},
}
MX = {"dtype": "fp4_e2m1", "group_size": 32, "scale_dtype": "e8m0"}


def spec(group_size: int, **kwargs) -> qk.QuantSpec:
    return qk.QuantSpec(granularity=qk.per_group(group_size), **kwargs)


def pair(field: str) -> tuple[qk.QuantSpec, qk.QuantSpec]:
    if field == "e8m0_rounding":
        return spec(**MX), spec(**MX, e8m0_rounding="rceil")
    return spec(**BASE), spec(**{**BASE, **VARIANTS[field]})


@pytest.mark.parametrize("field", [*VARIANTS, "e8m0_rounding"])
def test_one_field_apart_is_unequal_and_never_merges(field):
    a, b = pair(field)
    assert a == qk.QuantSpec.from_text(a.to_text())
    assert hash(a) == hash(qk.QuantSpec.from_text(a.to_text()))
    assert a != b and a.to_text() != b.to_text()
    x = torch.randn(4, 64)
    first, second = qk.MinMaxObserver(a), qk.MinMaxObserver(b)
    first.observe(x)
    second.observe(x)
    with pytest.raises(ValueError, match=f"they differ in {field}"):
        first.merge(second)
    with pytest.raises(ValueError, match=f"they differ in {field}"):
        first.load_state(second.state())


def test_e8m0_rounding_is_exposed():
    assert spec(**MX).e8m0_rounding == "floor"
    assert spec(**MX, e8m0_rounding="rceil").e8m0_rounding == "rceil"


@pytest.mark.parametrize(
    "fields",
    [
        dict(dtype="int4", mapping="asymmetric", granularity=("per_group", 32)),
        dict(dtype="int8", quant_min=-127, quant_max=127, granularity=("per_axis", 0)),
        dict(dtype="uint4", mapping="asymmetric", zero_point_domain="float", eps=1e-6),
        dict(dtype="int3", mapping="stretched", granularity=("per_group", 64)),
        dict(
            dtype="fp4_e2m1",
            granularity=("per_group", 32),
            scale_dtype="e8m0",
            e8m0_rounding="rceil",
        ),
        dict(
            dtype="int8",
            mapping="asymmetric",
            granularity=("per_block", [2, 4]),
            scale_dtype="bfloat16",
            zero_point_dtype="int8",
        ),
        dict(dtype="fp8_e5m2", granularity=("per_token",)),
    ],
)
def test_torch_spec_args_read_back_every_field(fields):
    from quantkit.torch._spec import args_from_spec

    kind, *args = fields.pop("granularity", ("per_tensor",))
    spec = qk.QuantSpec(granularity=getattr(qk, kind)(*args), **fields)
    assert args_from_spec(spec).spec() == spec
