"""Converted Linear layers against torch's own matmul, in one process on one machine:
decode-shaped products (1 token) and prefill (--tokens rows), every weight format, the
old path (dequantize the whole weight, then F.linear) beside the kernel that reads the
codes in place, torchao's CPU paths for int8 weights (weight-only and dynamic
int8 inputs), and the DRAM roofline of the weight bytes.

Weights are read from memory, not from cache, as in a model's decode step: each
measurement cycles through enough copies of the layer to fill --footprint MB, and
reports the time per layer. The roofline is the time `copy_` takes to move the
weight's bytes at the rate it moves a buffer of that footprint (a product that reads
its weight once cannot be much faster).

    python3 bench/linear_speed.py [--shapes 4096x4096,11008x4096] [--tokens 128] [--threads 1,2]
"""

import argparse
import copy
import time

import quantkit
import quantkit.torch as qkt
import torch
import torch.nn.functional as F
from quantkit.torch import recipes
from torch import nn

FORMATS = {
    "int4-g128 (W4A16)": lambda: recipes.W4A16(128, symmetric=True),
    "int4-g32 (W4A16)": lambda: recipes.W4A16(32, symmetric=True),
    "int8 channel (W8A16)": lambda: recipes.W8A16(),
    "8da4w g32": lambda: recipes.Int8DynActInt4Weight(32),
    "W8A8 dynamic": lambda: recipes.W8A8Dynamic(),
    "fp8 channel": lambda: recipes.FP8("row"),
    "mxfp4": lambda: recipes.MXFP4(),
    "nvfp4": lambda: recipes.NVFP4(),
}


def per_call_ms(calls, repeat: int) -> float:
    """Best over `repeat` passes of the mean time of one call in `calls`."""
    for call in calls:
        call()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for call in calls:
            call()
        best = min(best, (time.perf_counter() - start) / len(calls))
    return best * 1e3


def copies(nbytes: int, footprint_mb: int) -> int:
    return max(1, -(-footprint_mb * 1_000_000 // nbytes))


class Rows:
    def __init__(self, dense: nn.Linear, dtype, footprint: int, repeat: int) -> None:
        self.dense, self.dtype, self.footprint, self.repeat = dense, dtype, footprint, repeat
        big = torch.ones(footprint * 1_000_000, dtype=torch.uint8)
        out = torch.empty_like(big)
        self.copy_ms_per_byte = per_call_ms([lambda: out.copy_(big)], repeat) / big.numel()

    def torch_dense(self, x: torch.Tensor, dtype) -> float:
        w = self.dense.weight.detach().to(dtype)
        ws = [w.clone() for _ in range(copies(w.numel() * w.element_size(), self.footprint))]
        xd = x.to(dtype)
        return per_call_ms([lambda w=w: F.linear(xd, w) for w in ws], self.repeat)

    def torchao(self, x: torch.Tensor, config) -> float:
        """torchao's own CPU path for the same layer (its int8 weight-only and int8
        dynamic configs run here; its int4 CPU layout is not in this torchao)."""
        from torchao.quantization import quantize_

        layers = []
        for _ in range(copies(self.dense.weight.numel(), self.footprint)):  # int8 weights
            layer = copy.deepcopy(nn.Sequential(self.dense)).to(self.dtype)
            quantize_(layer, config())
            layers.append(layer)
        with torch.no_grad():
            return per_call_ms([lambda m=m: m(x) for m in layers], self.repeat)

    def quantized(self, x: torch.Tensor, recipe) -> tuple[float, float, float, float]:
        first = qkt.quantize_(nn.Sequential(self.dense).to(self.dtype), recipe())[0]
        layers = [first] + [
            qkt.quantize_(nn.Sequential(self.dense).to(self.dtype), recipe())[0]
            for _ in range(copies(first.qweight.nbytes, self.footprint) - 1)
        ]

        def old(layer):
            fq = layer.input_fake_quant
            return F.linear(fq(x) if fq is not None else x, layer.qweight())

        with torch.no_grad():
            t_old = per_call_ms([lambda m=m: old(m) for m in layers[:4]], self.repeat)
            t_new = per_call_ms([lambda m=m: m(x) for m in layers], self.repeat)
        nbytes = first.qweight.nbytes
        return nbytes, t_old, t_new, nbytes * self.copy_ms_per_byte


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="4096x4096,11008x4096", help="out x in features")
    parser.add_argument("--tokens", type=int, default=128, help="prefill rows")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--footprint", type=int, default=256, help="MB of weights cycled")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    print(f"{args.dtype} activations; ms per layer, best of {args.repeat} passes")
    print(
        "| threads | shape | rows | format | weight MB | torch fp32 | torch bf16 | "
        "dequantize + F.linear | quantkit | vs fp32 | roofline | roofline / quantkit |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        quantkit.set_num_threads(threads)
        for shape in args.shapes.split(","):
            n, k = (int(v) for v in shape.split("x"))
            bench = Rows(nn.Linear(k, n, bias=False), dtype, args.footprint, args.repeat)
            for rows in (1, args.tokens):
                x = torch.randn(rows, k).to(dtype)
                t32 = bench.torch_dense(x, torch.float32)
                t16 = bench.torch_dense(x, torch.bfloat16)
                from torchao.quantization import (
                    Int8DynamicActivationInt8WeightConfig,
                    Int8WeightOnlyConfig,
                )

                ao_wo = bench.torchao(x, Int8WeightOnlyConfig)
                ao_dyn = bench.torchao(x, Int8DynamicActivationInt8WeightConfig)
                print(
                    f"| {threads} | {n}x{k} | {rows} | torchao int8 weight-only / int8 dynamic "
                    f"| | {t32:.2f} | {t16:.2f} | | {ao_wo:.2f} / {ao_dyn:.2f} | "
                    f"{t32 / ao_wo:.2f}x / {t32 / ao_dyn:.2f}x | | |",
                    flush=True,
                )
                for name, recipe in FORMATS.items():
                    nbytes, old, new, roof = bench.quantized(x, recipe)
                    print(
                        f"| {threads} | {n}x{k} | {rows} | {name} | {nbytes / 1e6:.1f} | "
                        f"{t32:.2f} | {t16:.2f} | {old:.2f} | {new:.2f} | {t32 / new:.2f}x | "
                        f"{roof:.2f} | {roof / new:.0%} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
