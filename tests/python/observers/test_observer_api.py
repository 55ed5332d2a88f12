"""Merge, state, reset and every bad input of the observers."""

import numpy as np
import pytest
import quantkit as qk
import torch


def spec(granularity=None):
    return qk.QuantSpec(
        dtype="int4", mapping="asymmetric", granularity=granularity or qk.per_group(16)
    )


def shards(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(8, 64, generator=g) * (1 + i) for i in range(6)]


GRANULARITIES = {  # factories: module-level extension objects would outlive the module
    "tensor": lambda: qk.per_tensor(),
    "axis": lambda: qk.per_axis(0),
    "group": lambda: qk.per_group(16),
    "token": lambda: qk.per_token(),
    "block": lambda: qk.per_block([4, 32]),
}


@pytest.mark.parametrize("granularity_name", GRANULARITIES)
def test_merge_equals_one_observer_over_everything(granularity_name):
    granularity = GRANULARITIES[granularity_name]()
    data = shards()
    whole = qk.MinMaxObserver(spec(granularity))
    for x in data:
        whole.observe(x)
    left, right = qk.MinMaxObserver(spec(granularity)), qk.MinMaxObserver(spec(granularity))
    for x in data[:2]:
        left.observe(x)
    for x in data[2:]:
        right.observe(x)
    empty = qk.MinMaxObserver(spec(granularity))
    left.merge(right)
    left.merge(empty)  # merging nothing changes nothing
    assert left.batches == whole.batches == 6
    assert torch.equal(left.min, whole.min) and torch.equal(left.max, whole.max)
    assert torch.equal(left.qparams().scale, whole.qparams().scale)
    assert torch.equal(left.qparams().zero_point, whole.qparams().zero_point)


def test_state_round_trips_through_a_file(tmp_path):
    makers = [lambda: qk.MinMaxObserver(spec()), lambda: qk.MovingAverageObserver(spec(), 0.25)]
    for make in makers:
        observer = make()
        for x in shards(1):
            observer.observe(x)
        observer.save(tmp_path / "obs.safetensors")
        back = qk.Observer.load(tmp_path / "obs.safetensors", spec())
        assert type(back) is type(observer)
        assert back.batches == observer.batches
        assert np.array_equal(back.min, observer.min.numpy())
        assert np.array_equal(back.qparams().scale, observer.qparams().scale.numpy())
        same = make()
        same.load_state(observer.state())
        assert torch.equal(same.max, observer.max)
        assert "batches" in observer.describe()


def test_reset_forgets_everything():
    observer = qk.MinMaxObserver(spec())
    observer.observe(torch.randn(8, 64))
    observer.reset()
    assert observer.batches == 0 and observer.min is None
    observer.observe(torch.ones(2, 16))  # a new grid is fine after a reset
    assert observer.qparams().scale.shape == (2, 1)


def test_bad_inputs_raise_clear_errors(tmp_path):
    observer = qk.MinMaxObserver(spec())
    with pytest.raises(ValueError, match="has observed no data"):
        observer.qparams()
    observer.observe(torch.randn(8, 64))
    with pytest.raises(
        ValueError, match=r"gives a qparams grid \[8, 2\].*earlier batches gave \[8, 4\]"
    ):
        observer.observe(torch.randn(8, 32))
    bad = torch.randn(8, 64)
    bad[3, 5] = float("nan")
    with pytest.raises(ValueError, match=r"x holds nan at flat index 197 \(index \[3, 5\]\)"):
        observer.observe(bad)
    with pytest.raises(ValueError, match="cannot merge an observer of spec"):
        observer.merge(qk.MinMaxObserver(spec(qk.per_tensor())))
    with pytest.raises(ValueError, match="cannot merge a different observer kind"):
        observer.merge(qk.MovingAverageObserver(spec()))
    with pytest.raises(ValueError, match="depends on the order of the batches"):
        qk.MovingAverageObserver(spec()).merge(qk.MovingAverageObserver(spec()))
    with pytest.raises(ValueError, match="averaging_constant 1.5 must lie in"):
        qk.MovingAverageObserver(spec(), 1.5)
    with pytest.raises(ValueError, match="was observed with spec"):
        qk.MinMaxObserver(spec(qk.per_tensor())).load_state(observer.state())
    with pytest.raises(ValueError, match="is empty"):
        observer.observe(torch.empty(0, 64))
    with pytest.raises(ValueError, match="holds no observer state"):
        torch_file = tmp_path / "plain.safetensors"
        from safetensors.torch import save_file

        save_file({"x": torch.ones(2)}, str(torch_file))
        qk.Observer.load(torch_file, spec())
