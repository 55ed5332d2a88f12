"""Fixed ranges (either end optional) and fixed qparams."""

import numpy as np
import pytest
import quantkit as qk
import torch


def uint8(granularity=None, domain=None):
    return qk.QuantSpec(
        dtype="uint8",
        mapping="asymmetric",
        granularity=granularity or qk.per_tensor(),
        zero_point_domain=domain,
    )


def test_both_ends_given():
    # [-1, 3] on uint8: scale 4 / 255, zero point 0 - round(-1 / scale) = round(63.75) = 64.
    observer = qk.FixedRangeObserver(uint8(), -1.0, 3.0)
    observer.observe(torch.randn(4, 4) * 100)  # the data does not move a fixed range
    qp = observer.qparams()
    assert qp.scale.item() == np.float32(4.0) / np.float32(255.0)
    assert qp.zero_point.item() == 64


def test_missing_end_comes_from_the_data_clamped_to_zero():
    observer = qk.FixedRangeObserver(uint8(qk.per_axis(0)), max=2.0)
    observer.observe(torch.tensor([[0.5, 1.0], [-3.0, 1.0]]))
    expected = qk.choose_qparams_from_min_max(
        torch.tensor([0.0, -3.0]), torch.tensor([2.0, 2.0]), uint8(qk.per_axis(0))
    )
    assert torch.equal(observer.qparams().scale.reshape(-1), expected.scale.reshape(-1))
    assert torch.equal(observer.qparams().zero_point.reshape(-1), expected.zero_point.reshape(-1))


def test_ranges_far_from_zero_need_the_float_domain():
    with pytest.raises(ValueError, match="excludes 0.*zero_point_domain=float"):
        qk.FixedRangeObserver(uint8(), 10.0, 12.0)
    spec = uint8(domain="float")
    observer = qk.FixedRangeObserver(spec, 10.0, 12.0)
    observer.observe(torch.full((3,), 11.0))
    expected = qk.choose_qparams_from_min_max(torch.tensor([10.0]), torch.tensor([12.0]), spec)
    assert torch.equal(observer.qparams().scale.reshape(-1), expected.scale.reshape(-1))
    # The float domain keeps the whole grid inside [10, 12]: 2 / 255 resolution,
    # where an integer zero point would have spread 256 levels over [0, 12].
    assert observer.qparams().scale.item() == pytest.approx(2 / 255, rel=1e-6)


def test_fixed_qparams():
    qp = qk.QParams(
        scale=torch.tensor([0.5]), zero_point=torch.tensor([3], dtype=torch.int32), spec=uint8()
    )
    observer = qk.FixedQParamsObserver(qp)
    observer.observe(torch.randn(5))
    assert torch.equal(observer.qparams().scale, qp.scale)
    per_channel = qk.QParams(
        scale=torch.ones(3),
        zero_point=torch.zeros(3, dtype=torch.int32),
        spec=uint8(qk.per_axis(0)),
    )
    with pytest.raises(ValueError, match="has 4 blocks.*fixed qparams hold 3"):
        qk.FixedQParamsObserver(per_channel).observe(torch.randn(4, 2))


def test_merge_and_state(tmp_path):
    a, b = qk.FixedRangeObserver(uint8(), max=4.0), qk.FixedRangeObserver(uint8(), max=4.0)
    a.observe(torch.tensor([-1.0, 0.5]))
    b.observe(torch.tensor([-2.0, 0.5]))
    a.merge(b)
    assert a.min.item() == -2.0
    with pytest.raises(ValueError, match="same float_range"):
        a.merge(qk.FixedRangeObserver(uint8(), max=5.0))
    a.save(tmp_path / "range.safetensors")
    back = qk.Observer.load(tmp_path / "range.safetensors", uint8())
    assert isinstance(back, qk.FixedRangeObserver)
    assert back.describe() == a.describe()
    qp = qk.QParams(
        scale=torch.tensor([0.25]), zero_point=torch.tensor([7], dtype=torch.int32), spec=uint8()
    )
    fixed = qk.FixedQParamsObserver(qp)
    fixed.save(tmp_path / "fixed.safetensors")
    restored = qk.Observer.load(tmp_path / "fixed.safetensors", uint8())
    assert restored.qparams().zero_point.item() == 7
