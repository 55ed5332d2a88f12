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
