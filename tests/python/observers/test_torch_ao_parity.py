"""quantkit observers give torch.ao's scale and zero point bit for bit over
multi-batch sequences (torch 2.13): MinMaxObserver, PerChannelMinMaxObserver,
MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver, every
qscheme, quint8/qint8, reduce_range and narrower ranges."""

import itertools

import pytest
import quantkit as qk
import torch
from torch.ao.quantization import observer as tao

F32_EPS = 2.0**-23  # torch.ao's default eps: torch.finfo(torch.float32).eps


def torch_range(dtype, reduce_range, quant_range):
    if quant_range is not None:
        lo, hi = quant_range
    else:
        lo, hi = (0, 255) if dtype == torch.quint8 else (-128, 127)
    return (lo // 2, hi // 2) if reduce_range else (lo, hi)


def spec_for(dtype, qscheme, reduce_range, quant_range, ch_axis=None):
    lo, hi = torch_range(dtype, reduce_range, quant_range)
    symmetric = qscheme in (torch.per_tensor_symmetric, torch.per_channel_symmetric)
    return qk.QuantSpec(
        dtype="uint8" if dtype == torch.quint8 else "int8",
        quant_min=lo,
        quant_max=hi,
        mapping="symmetric" if symmetric else "asymmetric",
        granularity=qk.per_tensor() if ch_axis is None else qk.per_axis(ch_axis),
        eps=F32_EPS,
        scale_dtype="float32",
    )


def batches(seed, shape, count=4):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        x = torch.randn(shape, generator=g) * (0.5 + i) + (i - 1.5) * 0.3
        out.append(x)
    out.append(torch.full(shape, 0.25))  # a constant batch
    return out


def assert_same_qparams(torch_obs, ours):
    scale, zp = torch_obs.calculate_qparams()
    qp = ours.qparams()
    assert torch.equal(qp.scale.reshape(-1), scale.reshape(-1).float()), (qp.scale, scale)
    assert torch.equal(qp.zero_point.reshape(-1).long(), zp.reshape(-1).long()), (qp.zero_point, zp)


CONFIGS = [
    (dtype, qscheme, reduce_range, quant_range)
    for dtype, reduce_range, quant_range in itertools.product(
        [torch.quint8, torch.qint8], [False, True], [None, "narrow"]
    )
    for qscheme in ["affine", "symmetric"]
    if not (dtype == torch.quint8 and qscheme == "symmetric" and reduce_range)  # torch.ao refuses
]


def resolve(dtype, qscheme, quant_range, per_channel):
    narrow = (0, 200) if dtype == torch.quint8 else (-100, 100)
    schemes = {
        ("affine", False): torch.per_tensor_affine,
        ("symmetric", False): torch.per_tensor_symmetric,
        ("affine", True): torch.per_channel_affine,
        ("symmetric", True): torch.per_channel_symmetric,
    }
    return schemes[(qscheme, per_channel)], narrow if quant_range == "narrow" else None


def torch_kwargs(dtype, qscheme, reduce_range, quant_range):
    kwargs = {"dtype": dtype, "qscheme": qscheme, "reduce_range": reduce_range}
    if quant_range is not None:
        kwargs.update(quant_min=quant_range[0], quant_max=quant_range[1])
    return kwargs


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("moving", [False, True])
def test_per_tensor_observers(config, moving):
    dtype, qscheme_name, reduce_range, quant_range = config
    qscheme, quant_range = resolve(dtype, qscheme_name, quant_range, per_channel=False)
    kwargs = torch_kwargs(dtype, qscheme, reduce_range, quant_range)
    spec = spec_for(dtype, qscheme, reduce_range, quant_range)
    if moving:
        theirs = tao.MovingAverageMinMaxObserver(averaging_constant=0.1, **kwargs)
        ours = qk.MovingAverageObserver(spec, averaging_constant=0.1)
    else:
        theirs, ours = tao.MinMaxObserver(**kwargs), qk.MinMaxObserver(spec)
    for x in batches(1, (16, 33)):
        theirs(x)
        ours.observe(x)
        assert float(ours.min) == theirs.min_val.item() and float(ours.max) == theirs.max_val.item()
        assert_same_qparams(theirs, ours)


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("moving", [False, True])
@pytest.mark.parametrize("ch_axis", [0, 1, 2])
def test_per_channel_observers(config, moving, ch_axis):
    dtype, qscheme_name, reduce_range, quant_range = config
    qscheme, quant_range = resolve(dtype, qscheme_name, quant_range, per_channel=True)
    kwargs = torch_kwargs(dtype, qscheme, reduce_range, quant_range)
    spec = spec_for(dtype, qscheme, reduce_range, quant_range, ch_axis=ch_axis)
    if moving:
        theirs = tao.MovingAveragePerChannelMinMaxObserver(ch_axis=ch_axis, **kwargs)
        ours = qk.MovingAverageObserver(spec)
    else:
        theirs = tao.PerChannelMinMaxObserver(ch_axis=ch_axis, **kwargs)
        ours = qk.MinMaxObserver(spec)
    for x in batches(2, (6, 5, 7)):
        theirs(x)
        ours.observe(x)
        assert torch.equal(ours.min.reshape(-1), theirs.min_val)
        assert torch.equal(ours.max.reshape(-1), theirs.max_val)
        assert_same_qparams(theirs, ours)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_widen_exactly(dtype):
    spec = spec_for(torch.qint8, torch.per_tensor_affine, False, None)
    theirs, ours = tao.MinMaxObserver(dtype=torch.qint8), qk.MinMaxObserver(spec)
    for x in batches(3, (64,)):
        theirs(x.to(dtype))
        ours.observe(x.to(dtype))
    assert_same_qparams(theirs, ours)
