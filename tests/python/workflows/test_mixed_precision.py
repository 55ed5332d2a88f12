"""Sensitivity and mixed precision: the per-sample score is the hand formula, the
probe estimate converges to the exact first-order output error, the budgeted choice
is the brute-force optimum on small cases and never exceeds its budget, and the result
is a recipe that quantize_ applies as chosen."""

import itertools

import pytest
import quantkit.torch as qkt
import torch
from quantkit.torch.mixed_precision import (
    LayerOption,
    Sensitivity,
    _per_sample_scores,
    choose_schemes,
)
from torch import nn


def test_per_sample_scores_equal_the_hand_formula():
    g = torch.Generator().manual_seed(0)
    x, grad = torch.randn(3, 5, 4, generator=g), torch.randn(3, 5, 2, generator=g)
    deltas = torch.randn(2, 2, 4, generator=g)
    expected = torch.zeros(2, dtype=torch.float64)
    for c in range(2):
        for b in range(3):  # <ΔW, g_bᵀ x_b> = Σ_t g_btᵀ ΔW x_bt, squared per sample
            s = sum(grad[b, t].double() @ deltas[c].double() @ x[b, t].double() for t in range(5))
            expected[c] += s**2
    assert torch.allclose(_per_sample_scores(x, grad, deltas), expected, rtol=1e-5)


def test_the_probe_estimate_converges_to_the_exact_output_error():
    """Two Linear layers in a row: quantizing the first changes the output by
    W2 ΔW1 x; the estimate over many samples approaches ||W2 ΔW1 x||² / ||f(x)||²."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32, bias=False), nn.Linear(32, 16, bias=False))
    x = torch.randn(4000, 64)
    s = qkt.layer_sensitivity(model, ["int3-g32", "skip"], [x], probes=4)
    with torch.no_grad():
        w1 = model[0].weight
        dw1 = (
            qkt.ops.fake_quantize_dynamic(w1, qkt.recipe_by_name("int3-g32").weight.spec.key()) - w1
        )
        exact = (x @ dw1.T @ model[1].weight.T).double().square().sum() / model(
            x
        ).double().square().sum()
    assert s.error("0", "int3-g32") == pytest.approx(exact.item(), rel=0.05)
    assert s.error("0", "skip") == 0 and s.batches == 1 and s.probes == 4
    assert s.options["0"][0].bytes < s.options["0"][1].bytes == 64 * 32 * 4


def _sensitivity(table):
    options = {m: [LayerOption(s, b, e) for s, b, e in opts] for m, opts in table.items()}
    return Sensitivity(options, dict.fromkeys(table, 8), batches=1, probes=1, seconds=0)


def test_the_budgeted_choice_is_the_brute_force_optimum():
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        table = {}
        for layer in range(4):
            sizes = sorted(torch.randint(1, 50, (3,), generator=g).tolist())
            errors = sorted(torch.rand(3, generator=g).tolist(), reverse=True)
            table[f"l{layer}"] = [(f"s{k}", sizes[k], errors[k]) for k in range(3)]
        budget = int(torch.randint(4, 150, (1,), generator=g))
        s = _sensitivity(table)
        fitting = [
            combo
            for combo in itertools.product(*s.options.values())
            if sum(o.bytes for o in combo) <= budget
        ]
        best = min((sum(o.error for o in c), c) for c in fitting) if fitting else None
        if best is None:
            with pytest.raises(ValueError, match="cheapest candidates need"):
                choose_schemes(s, budget)
            continue
        chosen = choose_schemes(s, budget)
        assert sum(o.bytes for o in chosen.values()) <= budget
        # budgets under `resolution` bytes are solved exactly
        assert sum(o.error for o in chosen.values()) == pytest.approx(best[0], rel=1e-12)


def test_a_hand_example():
    # l0 is 10x more sensitive than l1: the extra bytes go to l0 first
    s = _sensitivity({
        "l0": [("int4", 10, 1.0), ("int8", 20, 0.1)],
        "l1": [("int4", 10, 0.1), ("int8", 20, 0.01)],
    })  # fmt: skip
    assert {m: o.scheme for m, o in choose_schemes(s, 30).items()} == {"l0": "int8", "l1": "int4"}
    assert {m: o.scheme for m, o in choose_schemes(s, 40).items()} == {"l0": "int8", "l1": "int8"}


def test_mixed_precision_returns_a_recipe_that_applies_as_chosen(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8)
    )
    with torch.no_grad():
        model[2].weight[:, 0] *= 20  # an outlier column: this layer wants more bits
    batches = [torch.randn(16, 64) for _ in range(4)]
    mix = qkt.mixed_precision(model, ["int4-g32", "int8"], batches, bits_per_weight=6)
    assert mix.bits_per_weight <= 6 and "predicted output error" in mix.table()
    applied = qkt.quantize_(model, mix.recipe)
    assert qkt.coverage(applied).quantized() == {m: o.scheme for m, o in mix.choices.items()}
    mix.recipe.save(tmp_path / "mix.json")
    assert qkt.load_recipe(tmp_path / "mix.json") == mix.recipe
    with pytest.raises(ValueError, match="exactly one of"):
        qkt.mixed_precision(model, ["int8"], batches)
