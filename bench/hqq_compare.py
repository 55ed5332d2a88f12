"""HQQ side by side on the real all-MiniLM-L6-v2 Linear weights (37 matrices, float32):
quantkit's `scale_search="hqq"` against the hqq package's `Quantizer` and torchao's
`_choose_qparams_and_quantize_affine_hqq`, 4-bit per group, mean SQNR over the matrices
and the time to quantize them all (this process, CPU). Float zero points (tinygemm's
layout, where HQQ's zero lives) and, for the checkpoint tool, integer zero points
(compressed-tensors' asymmetric layout: min-max, MSE clipping search, HQQ).

    python3 bench/hqq_compare.py [--groups 32,64,128]
"""

import argparse
import time

import quantkit as qk
import torch
from hqq.core.quantize import Quantizer
from quantkit_examples.models import minilm
from torchao.quantization.quant_primitives import _choose_qparams_and_quantize_affine_hqq


def sqnr(w: torch.Tensor, y: torch.Tensor) -> float:
    return 10 * torch.log10(w.square().sum() / (w - y).square().sum()).item()


def package(w, group):
    codes, meta = Quantizer.quantize(
        w, nbits=4, group_size=group, axis=1, compute_dtype=torch.float32, device="cpu"
    )
    return Quantizer.dequantize(codes, meta)


def torchao(w, group):
    codes, scale, zero, _ = _choose_qparams_and_quantize_affine_hqq(
        w, nbits=4, group_size=group, axis=1, compute_dtype=torch.float32, device="cpu",
        raw_output=True,
    )  # fmt: skip
    return (
        (codes.float().reshape(-1, group) - zero.reshape(-1, 1)) * scale.reshape(-1, 1)
    ).reshape(w.shape)


def quantkit(spec):
    return lambda w, _group: qk.fake_quantize(w, qk.choose_qparams(w, spec))


def spec(group, search, float_zero):
    return qk.QuantSpec(
        dtype="uint4" if float_zero else "int4",
        mapping="asymmetric",
        granularity=qk.Granularity.per_group(group),
        zero_point_domain="float" if float_zero else None,
        scale_search=search,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", default="32,64,128")
    args = parser.parse_args()
    weights = [
        m.weight.detach().float().contiguous()
        for m in minilm.load_model().modules()
        if isinstance(m, torch.nn.Linear)
    ]
    print(f"{len(weights)} matrices, {sum(w.numel() for w in weights) / 1e6:.1f} M weights")
    print("| group | zero point | method | mean SQNR dB | seconds |")
    print("| ---: | --- | --- | ---: | ---: |")
    for group in map(int, args.groups.split(",")):
        rows = [
            ("float", "min-max rounding (quantkit)", quantkit(spec(group, "none", True))),
            ("float", "HQQ, quantkit", quantkit(spec(group, "hqq", True))),
            ("float", "HQQ, hqq package", package),
            ("float", "HQQ, torchao", torchao),
            ("integer", "min-max rounding (quantkit)", quantkit(spec(group, "none", False))),
            ("integer", "MSE clipping search (quantkit)", quantkit(spec(group, "mse", False))),
            ("integer", "HQQ on the scale (quantkit)", quantkit(spec(group, "hqq", False))),
        ]
        for zero, label, method in rows:
            start = time.perf_counter()
            results = [method(w, group) for w in weights]
            seconds = time.perf_counter() - start
            mean = sum(sqnr(w, y) for w, y in zip(weights, results, strict=True)) / len(weights)
            print(f"| {group} | {zero} | {label} | {mean:.2f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
