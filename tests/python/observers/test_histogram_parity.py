"""HistogramObserver equals torch.ao's HistogramObserver (torch 2.13) bit for
bit on float32 data: the histogram buffer and range after every batch, and
the scale / zero point of the L2 search."""

import pytest
import quantkit as qk
import torch
from torch.ao.quantization import observer as tao


def spec_for(dtype, qscheme):
    symmetric = qscheme == torch.per_tensor_symmetric
    return qk.QuantSpec(
        dtype="uint8" if dtype == torch.quint8 else "int8",
        mapping="symmetric" if symmetric else "asymmetric",
        eps=2.0**-23,
        scale_dtype="float32",
    )


def sequences():
    g = torch.Generator().manual_seed(7)
    normal = [torch.randn(4096, generator=g) * (1 + 0.3 * i) for i in range(4)]
    heavy = [torch.distributions.StudentT(2.0).sample((2000,)) for _ in range(3)]
    relu = [torch.relu(torch.randn(64, 64, generator=g)) * 3 for _ in range(3)]
    growing = [torch.rand(1000, generator=g) * (i + 1) - 0.5 * i for i in range(5)]
    constant = [torch.full((10,), 0.5), torch.randn(100, generator=g), torch.full((7,), 0.5)]
    shrinking = [torch.randn(500, generator=g) * 4, torch.randn(500, generator=g) * 0.1]
    return {
        "normal": normal,
        "student_t": heavy,
        "relu": relu,
        "growing": growing,
        "constant_first": constant,
        "inside_range": shrinking,
    }


@pytest.mark.parametrize("name", list(sequences()))
@pytest.mark.parametrize("dtype", [torch.quint8, torch.qint8])
@pytest.mark.parametrize("qscheme", [torch.per_tensor_affine, torch.per_tensor_symmetric])
@pytest.mark.parametrize("bins", [2048, 256])
def test_histogram_observer(name, dtype, qscheme, bins):
    torch.manual_seed(0)
    batches = sequences()[name]
    theirs = tao.HistogramObserver(bins=bins, dtype=dtype, qscheme=qscheme)
    ours = qk.HistogramObserver(spec_for(dtype, qscheme), bins=bins)
    for x in batches:
        theirs(x)
        ours.observe(x)
        assert ours.min == theirs.min_val.item() and ours.max == theirs.max_val.item()
        assert torch.equal(ours.histogram, theirs.histogram)
    lo, hi = theirs._non_linear_param_search()
    assert ours.search_range() == (lo.item(), hi.item())
    scale, zp = theirs.calculate_qparams()
    qp = ours.qparams()
    assert torch.equal(qp.scale.reshape(-1), scale.reshape(-1))
    assert torch.equal(qp.zero_point.reshape(-1).long(), zp.reshape(-1).long())


def test_worked_example():
    # torch.ao's unit test: bins=3, x=[2,3,4,5] then [5,6,7,8] -> histogram [2,3,3],
    # range [2, 8]; the L2 search drops the top bin, so symmetric qint8 gets 6 / 127.5.
    observer = qk.HistogramObserver(spec_for(torch.qint8, torch.per_tensor_symmetric), bins=3)
    observer.observe(torch.tensor([2.0, 3, 4, 5]))
    observer.observe(torch.tensor([5.0, 6, 7, 8]))
    assert observer.histogram.tolist() == [2.0, 3.0, 3.0]
    assert (observer.min, observer.max) == (2.0, 8.0)
    assert observer.qparams().scale.item() == pytest.approx(6 / 127.5, rel=1e-7)


def test_merge_with_agreeing_edges_is_exact():
    spec = spec_for(torch.quint8, torch.per_tensor_affine)
    g = torch.Generator().manual_seed(3)
    frame = torch.tensor([-2.0, 2.0])  # every shard's first batch spans [-2, 2]
    shard_a = [frame, torch.randn(300, generator=g).clamp(-2, 2)]
    shard_b = [frame, torch.randn(300, generator=g).clamp(-2, 2)]
    whole, a, b = (qk.HistogramObserver(spec) for _ in range(3))
    for x in shard_a + shard_b:
        whole.observe(x)
    for x in shard_a:
        a.observe(x)
    for x in shard_b:
        b.observe(x)
    a.merge(b)
    assert torch.equal(a.histogram, whole.histogram)
    assert torch.equal(a.qparams().scale, whole.qparams().scale)


def test_merge_with_other_edges_stays_close():
    # Different ranges: the other histogram is re-binned (16 sub-bins per bin,
    # by midpoint) instead of its raw data, so mass moves by at most one bin of
    # the merged grid. The searched range, and so the scale, moves by a few bins
    # of 2048: documented as 1 % of the scale.
    spec = spec_for(torch.quint8, torch.per_tensor_affine)
    g = torch.Generator().manual_seed(4)
    data = [torch.randn(2000, generator=g) * (1 + i) for i in range(6)]
    whole, a, b = (qk.HistogramObserver(spec) for _ in range(3))
    for i, x in enumerate(data):
        whole.observe(x)
        (a if i % 2 == 0 else b).observe(x)
    a.merge(b)
    assert (a.min, a.max) == (whole.min, whole.max)
    assert a.histogram.sum().item() == whole.histogram.sum().item() == 12000
    ratio = a.qparams().scale.item() / whole.qparams().scale.item()
    assert abs(ratio - 1) < 0.01, ratio


def test_histogram_state_round_trip(tmp_path):
    spec = spec_for(torch.qint8, torch.per_tensor_symmetric)
    observer = qk.HistogramObserver(spec, bins=512)
    for x in sequences()["growing"]:
        observer.observe(x)
    observer.save(tmp_path / "hist.safetensors")
    back = qk.Observer.load(tmp_path / "hist.safetensors", spec)
    assert isinstance(back, qk.HistogramObserver)
    assert torch.equal(torch.from_numpy(back.histogram.copy()), observer.histogram)
    assert back.search_range() == observer.search_range()
    with pytest.raises(ValueError, match="per-tensor"):
        qk.HistogramObserver(qk.QuantSpec(dtype="int8", granularity=qk.per_axis(0)))
    with pytest.raises(ValueError, match="at flat index 2"):
        observer.observe(torch.tensor([0.0, 1.0, float("inf")]))


@pytest.mark.parametrize(
    "values",
    [[0.0, 4.58e-41], [1e30, -1e30, 3.0], [5.0], [-1e-38, 1e-38]],
    ids=["subnormal_max", "huge", "single_value", "tiny_symmetric"],
)
def test_extreme_inputs(values):
    x = torch.tensor(values)
    theirs = tao.HistogramObserver()
    ours = qk.HistogramObserver(spec_for(torch.quint8, torch.per_tensor_affine))
    theirs(x)
    ours.observe(x)
    assert torch.equal(ours.histogram, theirs.histogram)
    scale, zp = theirs.calculate_qparams()
    assert torch.equal(ours.qparams().scale.reshape(-1), scale)
    assert ours.qparams().zero_point.item() == zp.item()
