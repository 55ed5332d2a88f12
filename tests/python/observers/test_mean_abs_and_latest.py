"""MeanAbs (the stretched initialisation) and LatestMinMax observers."""

import numpy as np
import pytest
import quantkit as qk
import torch


def stretched(bits=2, granularity=None):
    return qk.QuantSpec(
        dtype=f"int{bits}", mapping="stretched", granularity=granularity or qk.per_group(64)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bits", [2, 3])
def test_one_batch_equals_choose_qparams(dtype, bits):
    x = (torch.randn(16, 256, generator=torch.Generator().manual_seed(bits)) * 0.1).to(dtype)
    obs = qk.MeanAbsObserver(stretched(bits))
    obs.observe(x)
    expected = qk.choose_qparams(x, stretched(bits))
    assert torch.equal(obs.qparams().scale, expected.scale)
    assert torch.equal(obs.qparams().zero_point, expected.zero_point)


def test_batches_pool_their_mean_and_merge():
    g = torch.Generator().manual_seed(1)
    batches = [torch.randn(8, 128, generator=g) * (1 + i) for i in range(4)]
    whole, a, b = (qk.MeanAbsObserver(stretched()) for _ in range(3))
    for i, x in enumerate(batches):
        whole.observe(x)
        (a if i < 2 else b).observe(x)
    a.merge(b)
    # Shards merged: the pooled double sums differ from one observer's only by
    # summation order, at most one float32 ulp of the scale.
    got = whole.qparams().scale.reshape(-1)
    assert got.shape == (16,)
    ulps = (a.qparams().scale.view(torch.int32) - whole.qparams().scale.view(torch.int32)).abs()
    assert ulps.max().item() <= 1
    # mean|x| over the 4 batches of each block, computed in double, then the formula.
    x = torch.stack(batches).double()  # [4, 8, 128]
    blocks = x.reshape(4, 8, 2, 64).abs()
    mean = blocks.mean(dim=(0, 3))
    amax = blocks.amax(dim=(0, 3))
    scale = torch.minimum(2 * mean, amax) / 1.5
    assert np.allclose(got.numpy(), scale.reshape(-1).numpy(), rtol=2e-7)


def test_latest_keeps_only_the_last_batch():
    spec = qk.QuantSpec(dtype="int8", mapping="asymmetric")
    obs = qk.LatestMinMaxObserver(spec)
    obs.observe(torch.tensor([-5.0, 5.0]))
    obs.observe(torch.tensor([-1.0, 2.0]))
    assert (obs.min.item(), obs.max.item()) == (-1.0, 2.0)
    with pytest.raises(ValueError, match="keeps only the latest batch"):
        obs.merge(qk.LatestMinMaxObserver(spec))


def test_errors_and_state(tmp_path):
    with pytest.raises(ValueError, match="serves the stretched mapping"):
        qk.MeanAbsObserver(qk.QuantSpec(dtype="int4"))
    with pytest.raises(ValueError, match="needs mean"):
        qk.MinMaxObserver(stretched())
    obs = qk.MeanAbsObserver(stretched())
    obs.observe(torch.randn(4, 128))
    obs.observe(torch.randn(4, 128))
    with pytest.raises(ValueError, match="earlier batches were float32 with grid"):
        obs.observe(torch.randn(4, 64))
    obs.save(tmp_path / "m.safetensors")
    back = qk.Observer.load(tmp_path / "m.safetensors", stretched())
    assert isinstance(back, qk.MeanAbsObserver)
    assert np.array_equal(back.qparams().scale, obs.qparams().scale.numpy())
