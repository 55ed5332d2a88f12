"""The non-torch histogram methods: percentile, entropy (KL) and mse."""

import pytest
import quantkit as qk
import torch


def spec(mapping="asymmetric", dtype="int8"):
    return qk.QuantSpec(dtype=dtype, mapping=mapping)


def sqnr(x, qp):
    err = x.double() - qk.fake_quantize(x, qp).double()
    return 10 * torch.log10(x.double().pow(2).sum() / err.pow(2).sum()).item()


def samples(name):
    torch.manual_seed(5)
    if name == "laplace":
        return torch.distributions.Laplace(0.0, 1.0).sample((50000,))
    if name == "student_t3":
        return torch.distributions.StudentT(3.0).sample((50000,))
    return torch.randn(50000)


def test_percentile_quantiles_of_a_known_histogram():
    # 1000 evenly spread values over [0, 1): the p % quantile is p / 100 within a bin.
    x = (torch.arange(1000, dtype=torch.float32) + 0.5) / 1000
    obs = qk.HistogramObserver(spec(), bins=1000, method="percentile", percentile=99.0)
    obs.observe(x)
    lo, hi = obs.search_range()
    assert lo == pytest.approx(0.01, abs=2e-3) and hi == pytest.approx(0.99, abs=2e-3)
    full = qk.HistogramObserver(spec(), bins=1000, method="percentile", percentile=100.0)
    full.observe(x)
    assert full.search_range() == (x.min().item(), x.max().item())


@pytest.mark.parametrize("dtype", ["int4", "int8"])
@pytest.mark.parametrize("distribution", ["normal", "laplace", "student_t3"])
def test_mse_is_the_best_range_for_sqnr(distribution, dtype):
    # SQNR is a squared-error measure, so the mse method, which minimises the
    # squared error over shrunk ranges (the full range included), must match or
    # beat min/max and every other method (up to its bin-centre approximation).
    x = samples(distribution)
    minmax = qk.MinMaxObserver(spec("symmetric", dtype))
    minmax.observe(x)
    results = {"minmax": sqnr(x, minmax.qparams())}
    for method in ["torch_l2", "entropy", "mse", "percentile"]:
        obs = qk.HistogramObserver(spec("symmetric", dtype), method=method)
        obs.observe(x)
        lo, hi = obs.search_range()
        assert x.min().item() <= lo < hi <= x.max().item()
        results[method] = sqnr(x, obs.qparams())
    assert results["mse"] >= max(results.values()) - 0.05, results
    if dtype == "int4":  # clipping pays off at 4 bits on every one of these
        assert results["mse"] > results["minmax"] + 3, results
        assert results["entropy"] > results["minmax"] + 1, results


def test_method_is_part_of_the_state(tmp_path):
    obs = qk.HistogramObserver(spec(), method="entropy")
    obs.observe(samples("laplace"))
    obs.save(tmp_path / "h.safetensors")
    back = qk.Observer.load(tmp_path / "h.safetensors", spec())
    assert back.describe() == obs.describe() and "method entropy" in obs.describe()
    assert back.search_range() == obs.search_range()
    with pytest.raises(ValueError, match="expected one of torch_l2, entropy, percentile, mse"):
        qk.HistogramObserver(spec(), method="kl")
    with pytest.raises(ValueError, match=r"percentile 40 must lie in \(50, 100\]"):
        qk.HistogramObserver(spec(), method="percentile", percentile=40)
