"""QuantSpec equality and its lossless text see every field; observers of
specs that differ in one field refuse to merge."""

import pytest
import torch

import quantkit as qk

BASE = {"dtype": "int4", "mapping": "asymmetric", "granularity": qk.per_group(32)}
VARIANTS = {
    "dtype": {"dtype": "int3"},
    "mapping": {"mapping": "symmetric"},
    "granularity": {"granularity": qk.per_group(16)},
    "zero_point_domain": {"zero_point_domain": "float"},
    "eps": {"eps": 1e-7},
    "scale_dtype": {"scale_dtype": "bfloat16"},
    "zero_point_dtype": {"zero_point_dtype": "int8"},
}
MX = {"dtype": "fp4_e2m1", "granularity": qk.per_group(32), "scale_dtype": "e8m0"}


def pairs():
    for field, change in VARIANTS.items():
        yield field, qk.QuantSpec(**BASE), qk.QuantSpec(**{**BASE, **change})
    yield "e8m0_rounding", qk.QuantSpec(**MX), qk.QuantSpec(**MX, e8m0_rounding="rceil")


@pytest.mark.parametrize("field,a,b", list(pairs()), ids=[p[0] for p in pairs()])
def test_one_field_apart_is_unequal_and_never_merges(field, a, b):
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
    assert qk.QuantSpec(**MX).e8m0_rounding == "floor"
    assert qk.QuantSpec(**MX, e8m0_rounding="rceil").e8m0_rounding == "rceil"
