"""scale_search="hqq" against the two HQQ implementations users know: the hqq
package's `Quantizer` and torchao's `_choose_qparams_and_quantize_affine_hqq`
(tinygemm's float zero point). On a single group (where their whole-tensor early stop
is our per-group one) the dequantized weight equals the package's to float rounding;
on whole matrices the SQNR is the package's to within 0.05 dB and at least torchao's
(torchao rounds the starting zero point for 4 bits; the package and quantkit do not).
Under compressed-tensors' integer zero point (the CLI's `-asym:search=hqq`) it is never
below the MSE search it starts from."""

import pytest
import quantkit as qk
import torch
from hqq.core.quantize import Quantizer
from torchao.quantization.quant_primitives import _choose_qparams_and_quantize_affine_hqq


def tinygemm(group: int, search: str = "hqq") -> qk.QuantSpec:
    return qk.QuantSpec(
        dtype="uint4",
        mapping="asymmetric",
        granularity=qk.Granularity.per_group(group),
        zero_point_domain="float",
        scale_search=search,
    )


def torchao_hqq(w: torch.Tensor, group: int) -> torch.Tensor:
    codes, scale, zero, _ = _choose_qparams_and_quantize_affine_hqq(
        w, nbits=4, group_size=group, axis=1, compute_dtype=torch.float32, device="cpu",
        raw_output=True,
    )  # fmt: skip
    grouped = (codes.float().reshape(-1, group) - zero.reshape(-1, 1)) * scale.reshape(-1, 1)
    return grouped.reshape(w.shape)


def sqnr(w: torch.Tensor, y: torch.Tensor) -> float:
    return 10 * torch.log10(w.square().sum() / (w - y).square().sum()).item()


def weights(rows: int, columns: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, columns, generator=g) * 0.02
    w[torch.rand(w.shape, generator=g) < 0.02] *= 8  # outliers, where HQQ's l_p loss pays
    return w


def package_hqq(w: torch.Tensor, group: int) -> torch.Tensor:
    codes, meta = Quantizer.quantize(
        w,
        nbits=4,
        group_size=group,
        axis=1,
        compute_dtype=torch.float32,
        device="cpu",
        bitpack=False,
    )
    return Quantizer.dequantize(codes, meta)


def test_one_group_equals_the_hqq_package_to_float_rounding():
    for seed in range(40):
        w = weights(1, 64, seed)
        ours = qk.fake_quantize(w, qk.choose_qparams(w, tinygemm(64)))
        theirs = package_hqq(w, 64)
        assert torch.allclose(ours, theirs, rtol=0, atol=2e-6 * w.abs().max().item()), seed


@pytest.mark.parametrize("group", [32, 64, 128])
def test_whole_matrices_match_torchao_and_the_hqq_package(group):
    w = weights(256, 1024, group)
    ours = sqnr(w, qk.fake_quantize(w, qk.choose_qparams(w, tinygemm(group))))
    rounded = sqnr(w, qk.fake_quantize(w, qk.choose_qparams(w, tinygemm(group, "none"))))
    package = sqnr(w, package_hqq(w, group))
    assert ours == pytest.approx(package, abs=0.05)
    # torchao rounds the starting zero point for 4 bits; ours and the package do not
    assert ours >= sqnr(w, torchao_hqq(w, group)) - 0.01
    assert ours > rounded + 0.1


def test_integer_zero_points_never_lose_to_the_mse_search():
    w = weights(64, 512, 3)
    for group in (32, 128):
        args = dict(dtype="int4", mapping="asymmetric", granularity=qk.Granularity.per_group(group))
        hqq = qk.QuantSpec(**args, scale_search="hqq")
        mse = qk.QuantSpec(**args, scale_search="mse")
        ours = qk.fake_quantize(w, qk.choose_qparams(w, hqq)).double()
        theirs = qk.fake_quantize(w, qk.choose_qparams(w, mse)).double()
        error_ours = (w.double() - ours).square().reshape(-1, group).sum(1)
        error_theirs = (w.double() - theirs).square().reshape(-1, group).sum(1)
        # the search compares float32 sums: equal to within their rounding
        assert (error_ours <= error_theirs * (1 + 1e-5)).all()
        assert (error_ours < error_theirs * (1 - 1e-4)).sum() > 10
