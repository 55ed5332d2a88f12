"""The Python API refuses what it cannot do right, with a message that names
the argument, the value and the rule, and keeps models correct through
shared modules and dtype casts."""

import copy

import pytest
import quantkit as qk
import quantkit.torch as qt
import torch
from quantkit.torch import recipes
from torch import nn


def test_thread_count_is_capped():
    with pytest.raises(ValueError, match=r"threads 100000 must be in 0\.\.1024"):
        qk.set_num_threads(100000)
    with pytest.raises(ValueError, match=r"threads -1 must be in 0\.\.1024"):
        qk.set_num_threads(-1)
    x = torch.randn(64, 64)
    spec = qk.QuantSpec(dtype="int8")
    expected = qk.fake_quantize(x, qk.choose_qparams(x, spec))
    qk.set_num_threads(3)
    try:
        assert torch.equal(qk.fake_quantize(x, qk.choose_qparams(x, spec)), expected)
    finally:
        qk.set_num_threads(0)


def test_pack_codes_refuses_codes_that_would_wrap():
    with pytest.raises(
        ValueError, match=r"code 100 at index 0 does not fit in 4 bits \(-8\.\.15\)"
    ):
        qk.pack_codes([100, -100, 7], 4)
    with pytest.raises(ValueError, match="code -9 at index 1"):
        qk.pack_codes([0, -9], 4)
    # The extremes of both readings of 4 bits pack and come back.
    packed = qk.pack_codes([-8, 15], 4)
    assert list(qk.unpack_codes(packed, 2, 4, False)) == [8, 15]


def test_fp8_scale_underflow_in_float16_is_an_error():
    w = torch.full((2, 64), 5e-6, dtype=torch.float16)  # amax / 448 < the smallest f16
    spec = qk.QuantSpec(dtype="fp8_e4m3fn", granularity=qk.per_axis(0))
    with pytest.raises(ValueError, match="underflows to 0 in float16"):
        qk.choose_qparams(w, spec)
    scale = qk.choose_qparams(w.float(), spec).scale  # float32 holds it
    assert torch.all(scale > 0)


def test_codes_match_the_dequantized_values():
    x = torch.randn(8, 96)
    for dtype, mapping in (("int4", "symmetric"), ("uint3", "asymmetric"), ("int8", "symmetric")):
        spec = qk.QuantSpec(dtype=dtype, mapping=mapping, granularity=qk.per_group(32))
        qp = qk.choose_qparams(x, spec)
        codes = qk.quantize(x, qp).codes()
        assert codes.shape == x.shape
        scale = qp.scale.repeat_interleave(32, dim=1)
        zero_point = qp.zero_point.repeat_interleave(32, dim=1).float()
        by_hand = (codes.float() - zero_point) * scale
        assert torch.equal(by_hand, qk.fake_quantize(x, qp)), (dtype, mapping)


def test_missing_zero_point_message_names_the_rule():
    with pytest.raises(ValueError, match="zero_point is missing: int8 symmetric"):
        qk.QParams(scale=torch.tensor([0.1]), spec=qk.QuantSpec(dtype="int8"))


# -- observer state ------------------------------------------------------------


def observed(observer):
    observer.observe(torch.randn(4, 64))
    return observer


def corrupted(state: dict, **tensors) -> dict:
    out = copy.deepcopy(state)
    out["tensors"].update(tensors)
    return out


def test_corrupted_histogram_state_is_refused():
    spec = qk.QuantSpec(dtype="uint8", mapping="asymmetric")
    state = observed(qk.HistogramObserver(spec)).state()
    hist = state["tensors"]["histogram"]
    cases = {
        "holds nan at element 3": {
            "histogram": hist.clone().index_fill_(0, torch.tensor([3]), float("nan"))
        },
        "holds -1 at element 0": {
            "histogram": hist.clone().index_fill_(0, torch.tensor([0]), -1.0)
        },
        "has dtype float64": {"histogram": hist.double()},
        "has 7 bins": {"histogram": hist[:7].clone()},
        "'min' exceeds 'max'": {"min": torch.tensor([5.0]), "max": torch.tensor([1.0])},
    }
    for message, tensors in cases.items():
        fresh = qk.HistogramObserver(spec)
        with pytest.raises(ValueError, match=message):
            fresh.load_state(corrupted(state, **tensors))
        assert fresh.batches == 0
    bad_count = copy.deepcopy(state)
    bad_count["attributes"]["batches"] = "many"
    with pytest.raises(ValueError, match="field 'batches' is 'many', not an integer"):
        qk.HistogramObserver(spec).load_state(bad_count)


def test_corrupted_min_max_state_is_refused():
    spec = qk.QuantSpec(dtype="int8", granularity=qk.per_axis(0))
    state = observed(qk.MinMaxObserver(spec)).state()
    lo = state["tensors"]["min"]
    cases = {
        "'max' has shape": {"max": torch.zeros(3)},
        "'min' has dtype bfloat16": {"min": lo.bfloat16()},
        "holds inf": {"max": torch.full_like(lo, float("inf"))},
    }
    for message, tensors in cases.items():
        with pytest.raises(ValueError, match=message):
            qk.MinMaxObserver(spec).load_state(corrupted(state, **tensors))
    missing = copy.deepcopy(state)
    del missing["tensors"]["max"]
    with pytest.raises(ValueError, match="field 'max' is missing"):
        qk.MinMaxObserver(spec).load_state(missing)


def test_corrupted_mean_abs_state_is_refused():
    spec = qk.QuantSpec(dtype="int4", mapping="stretched", granularity=qk.per_group(32))
    state = observed(qk.MeanAbsObserver(spec)).state()
    with pytest.raises(ValueError, match="field 'sum_abs' holds -1"):
        sums = state["tensors"]["sum_abs"].clone()
        sums[0, 0] = -1
        qk.MeanAbsObserver(spec).load_state(corrupted(state, sum_abs=sums))
    with pytest.raises(ValueError, match="one element per block"):
        qk.MeanAbsObserver(spec).load_state(corrupted(state, amax=torch.ones(1)))


# -- PyTorch workflows -----------------------------------------------------------


def test_module_registered_twice_is_converted_at_every_name():
    torch.manual_seed(0)
    lin = nn.Linear(64, 64)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    model.alias = lin
    x = torch.randn(4, 64)
    reference = copy.deepcopy(model)
    qt.quantize_(reference, recipes.W4A16(group_size=32))  # unshared copy: the expected result
    qt.quantize_(model, recipes.W4A16(group_size=32))
    assert isinstance(model[0], qt.QuantizedLinear)
    assert model[0] is model[2] is model.alias
    assert torch.equal(model(x), reference(x))


def test_shared_module_with_disagreeing_rules_is_refused():
    lin = nn.Linear(64, 64)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    with pytest.raises(ValueError, match="would get different recipes"):
        qt.prepare(model, recipes.W4A16(group_size=32), overrides={"2": None})


@pytest.mark.parametrize("recipe", [recipes.W8A8(), recipes.W4A16(group_size=32), recipes.MXFP4()])
def test_converted_model_runs_after_half(recipe):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
    qt.prepare(model, recipe)
    if recipe.needs_calibration:
        qt.calibrate(model, [torch.randn(8, 64) for _ in range(2)])
    qt.convert(model)
    weight = model[0].weight
    scale = model[0].qweight.scale.clone()
    model.half()
    assert model[0].qweight.scale.dtype == scale.dtype and torch.equal(
        model[0].qweight.scale, scale
    )
    assert torch.equal(model[0].weight, weight.half())  # exact weights, then cast
    assert model(torch.randn(4, 64).half()).dtype == torch.float16


def test_second_calibrate_raises():
    model = nn.Sequential(nn.Linear(64, 64))
    qt.prepare(model, recipes.W8A8())
    qt.calibrate(model, [torch.randn(8, 64)])
    with pytest.raises(RuntimeError, match="already has qparams from an earlier calibrate"):
        qt.calibrate(model, [torch.randn(8, 64)])


def test_state_dict_of_the_wrong_types_is_refused_by_field():
    spec = qk.QuantSpec(dtype="int8")
    state = observed(qk.MinMaxObserver(spec)).state()
    cases = {
        "attributes\\['batches'\\] is int, not a string": ("attributes", "batches", 3),
        "tensors\\['min'\\] is .*, not a numeric array": ("tensors", "min", "x"),
    }
    for message, (part, key, value) in cases.items():
        bad = copy.deepcopy(state)
        bad[part][key] = value
        with pytest.raises(ValueError, match=message):
            qk.MinMaxObserver(spec).load_state(bad)
    without_kind = {k: v for k, v in state.items() if k != "kind"}
    with pytest.raises(ValueError, match="key 'kind' is missing"):
        qk.MinMaxObserver(spec).load_state(without_kind)
