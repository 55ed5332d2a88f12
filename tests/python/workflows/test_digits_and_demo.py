"""digits CNN QAT targets and the report helpers."""

import pytest
import torch
from quantkit.torch import report
from quantkit_examples.experiments import digits_qat, onnx_export

# Model-level: real weights or data sets (deselect with -m "not slow").
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits():
    return {r.label: r for r in digits_qat.run()}


def test_float_model_learns_digits(digits):
    assert digits["fp32"].accuracy >= 0.95


def test_qat_int4_within_one_point(digits):
    assert digits["QAT int4 per-channel"].accuracy >= digits["fp32"].accuracy - 0.01


def test_qat_stretched_2bit_within_three_points(digits):
    assert digits["QAT stretched 2-bit"].accuracy >= digits["fp32"].accuracy - 0.03


def test_exported_digits_models_classify_like_quantkit_in_onnxruntime(digits, tmp_path):
    exports = onnx_export.digits_exports(list(digits.values()), str(tmp_path))
    assert [e.label for e in exports] == list(onnx_export.DIGITS_EXPORTS)
    for e in exports:
        assert e.measures["onnxruntime accuracy"] == e.measures["quantkit accuracy"]
        weights = [r for r in e.parity.rows if r.kind == "weight"]
        assert len(weights) == 4 and all(r.identical == r.elements for r in weights)


def test_terminal_bars_scale_to_the_largest_value():
    text = report.terminal_bars(["a", "bb"], [10.0, 20.0], width=10)
    first, second = text.splitlines()
    assert first.count("█") == 5 and second.count("█") == 10
    assert first.startswith("a  ") and second.endswith("20.00")


def test_layer_errors_match_error_report_of_each_output():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 4))
    noisy = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 4))
    noisy.load_state_dict(net.state_dict())
    with torch.no_grad():
        noisy[1].bias.add_(0.5)
    x = torch.randn(3, 8)
    rows = report.layer_errors(net, noisy, [x])
    assert [r.name for r in rows] == ["0", "1"]
    assert rows[0].summary["max_abs_diff"] == 0.0
    assert rows[1].summary["mean_abs_diff"] == pytest.approx(0.5, abs=1e-6)
    table = report.errors_table(rows).splitlines()
    assert table[1].startswith("1 ") and table[2].startswith("0 ")  # worst SQNR first


def test_png_plots_are_written_atomically(tmp_path):
    rows = [report.LayerError("a", {"sqnr_db": 10.0}), report.LayerError("b", {"sqnr_db": 20.0})]
    report.plot_layer_sqnr(rows, tmp_path / "l.png", "t")
    report.plot_scatter(torch.randn(100), torch.randn(100), tmp_path / "s.png", "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.png", "s.png"]
    assert (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"
