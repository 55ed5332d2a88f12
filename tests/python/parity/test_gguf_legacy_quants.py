"""The symmetric_signed mapping (schemes int4-g32-signed, int5-g32-signed) against
llama.cpp's Q4_0 and Q5_0, as the `gguf` package (pinned in scripts/install-deps.sh)
quantizes and dequantizes them: the largest-magnitude value of each block of 32
lands on -8 (-16), the scale is stored as float16.

The two differ by construction in rounding details only: gguf multiplies by the
reciprocal of the unrounded scale and rounds halves up; quantkit multiplies by
the reciprocal of the stored float16 scale and rounds halves to even. So almost
every value is identical (99.9 %), the others are one step apart, and the error is
the same.
"""

import numpy as np
import pytest
import quantkit as qk
import torch
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize
from quantkit_examples.models import minilm
from safetensors.torch import load_file

KINDS = {4: GGMLQuantizationType.Q4_0, 5: GGMLQuantizationType.Q5_0}


def weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {"gaussian": rng.standard_normal((64, 512)).astype(np.float32) * 0.02}
    out["heavy tails"] = rng.standard_t(3, (64, 512)).astype(np.float32)
    state = load_file(str(minilm.model_dir() / "model.safetensors"))
    out["minilm ffn"] = state["encoder.layer.0.intermediate.dense.weight"].numpy()
    return out


def sqnr(x: np.ndarray, y: np.ndarray) -> float:
    x64 = x.astype(np.float64)
    return float(10 * np.log10(np.square(x64).sum() / np.square(x64 - y).sum()))


@pytest.mark.parametrize("bits", [4, 5])
@pytest.mark.parametrize("name", ["gaussian", "heavy tails", "minilm ffn"])
def test_symmetric_signed_is_llama_cpp_legacy_quant(bits, name):
    x = weights()[name]
    llama = dequantize(quantize(x, KINDS[bits]), KINDS[bits]).reshape(x.shape)
    spec = qk.QuantSpec(
        dtype=f"int{bits}",
        mapping="symmetric_signed",
        granularity=qk.per_group(32),
        zero_point_domain="none",
        scale_dtype="float16",
    )
    qparams = qk.choose_qparams(torch.from_numpy(x), spec)
    ours = qk.fake_quantize(torch.from_numpy(x), qparams).numpy()
    # The same scales, sign included: the block's extreme over -2^(bits-1), in float16.
    blocks = x.reshape(-1, 32)
    extreme = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=1)[:, None], axis=1)
    expected_scale = (extreme / -(2 ** (bits - 1))).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(qparams.scale.numpy().reshape(-1, 1), expected_scale)
    assert (qparams.scale.numpy() < 0).any() and (qparams.scale.numpy() > 0).any()
    # quantkit's reciprocal is the float16 one (torch's rule for a float16 scale):
    # about 2^-12 relative, so codes near a rounding boundary (a fraction of a
    # percent at 4-5 bits) may land one step apart.
    same = ours == llama
    assert same.mean() > 0.995, f"{same.mean():.5f} identical"
    step = np.abs(np.repeat(expected_scale, 32, axis=1).reshape(x.shape))
    np.testing.assert_allclose(np.abs(ours - llama)[~same], step[~same], rtol=1e-6)
    assert abs(sqnr(x, ours) - sqnr(x, llama)) < 0.01
