"""Calibration quality: SQNR of every quantkit observer next to torch.ao's, on
synthetic distributions, int8 and int4, per-tensor affine.

    python bench/calibration.py              # the table in docs/calibration.md
    python bench/calibration.py --quick      # fewer samples (CI)

Each observer sees 8 calibration batches; SQNR (dB, higher is better) is
measured on a held-out batch of the same distribution, fake-quantized with the
observer's qparams. torch.ao observers use qint8 with quant range -128..127
(int8) or -8..7 (int4) and its default eps; quantkit's use the same range.
"""

from __future__ import annotations

import argparse
import warnings

import quantkit as qk
import torch
import torch.nn.functional as F
from torch.ao.quantization import observer as tao

warnings.filterwarnings("ignore")


def outlier_channels(n, g):
    x = torch.randn(n // 64, 64, generator=g)
    x[:, :3] *= 25  # a few channels far larger than the rest (LLM activations)
    return x


DISTRIBUTIONS = {
    "gaussian": lambda n, g: torch.randn(n, generator=g),
    "laplace": lambda n, g: torch.distributions.Laplace(0.0, 1.0).sample((n,)),
    "student-t (df 3)": lambda n, g: torch.distributions.StudentT(3.0).sample((n,)),
    "post-GELU": lambda n, g: F.gelu(torch.randn(n, generator=g) * 2),
    "post-ReLU": lambda n, g: F.relu(torch.randn(n, generator=g) * 2),
    "outlier channels": outlier_channels,
}

RANGES = {"int8": (-128, 127), "int4": (-8, 7)}


def sqnr(x, y) -> float:
    err = (x.double() - y.double()).pow(2).sum()
    return float(10 * torch.log10(x.double().pow(2).sum() / err))


def quantkit_observers(bits):
    lo, hi = RANGES[bits]
    spec = qk.QuantSpec(
        dtype="int8", quant_min=lo, quant_max=hi, mapping="asymmetric", eps=2.0**-23
    )
    hist_spec = qk.QuantSpec(dtype=bits, mapping="asymmetric", eps=2.0**-23)
    return {
        "minmax": qk.MinMaxObserver(spec),
        "moving-average": qk.MovingAverageObserver(spec),
        "hist torch_l2": qk.HistogramObserver(hist_spec, method="torch_l2"),
        "hist entropy": qk.HistogramObserver(hist_spec, method="entropy"),
        "hist percentile 99.99": qk.HistogramObserver(hist_spec, method="percentile"),
        "hist percentile 99.9": qk.HistogramObserver(
            hist_spec, method="percentile", percentile=99.9
        ),
        "hist mse": qk.HistogramObserver(hist_spec, method="mse"),
    }


def torch_observers(bits):
    lo, hi = RANGES[bits]
    kw = {"dtype": torch.qint8, "quant_min": lo, "quant_max": hi}
    return {
        "MinMaxObserver": tao.MinMaxObserver(**kw),
        "MovingAverageMinMaxObserver": tao.MovingAverageMinMaxObserver(**kw),
        "HistogramObserver": tao.HistogramObserver(**kw),
    }


def run(samples: int, batches: int) -> list[tuple]:
    rows = []
    for name, make in DISTRIBUTIONS.items():
        g = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        calib = [make(samples, g) for _ in range(batches)]
        test = make(samples, g)
        for bits in RANGES:
            lo, hi = RANGES[bits]
            ours = {}
            for label, obs in quantkit_observers(bits).items():
                for x in calib:
                    obs.observe(x)
                ours[label] = sqnr(test, qk.fake_quantize(test, obs.qparams()))
            theirs = {}
            for label, obs in torch_observers(bits).items():
                for x in calib:
                    obs(x)
                scale, zp = obs.calculate_qparams()
                y = torch.fake_quantize_per_tensor_affine(test, scale.float(), zp.int(), lo, hi)
                theirs[label] = sqnr(test, y)
            rows.append((name, bits, ours, theirs))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    samples, batches = (4096, 4) if args.quick else (65536, 8)
    rows = run(samples, batches)
    labels = list(rows[0][2]) + list(rows[0][3])
    print("| distribution | bits | " + " | ".join(labels) + " | best quantkit − best torch.ao |")
    print("|" + " --- |" * (len(labels) + 3))
    worst_margin = float("inf")
    for name, bits, ours, theirs in rows:
        margin = max(ours.values()) - max(theirs.values())
        worst_margin = min(worst_margin, margin)
        cells = [f"{v:.2f}" for v in list(ours.values()) + list(theirs.values())]
        print(f"| {name} | {bits} | " + " | ".join(cells) + f" | {margin:+.2f} dB |")
    print(
        f"\nworst margin of the best quantkit method over the best torch.ao observer: "
        f"{worst_margin:+.2f} dB"
    )
    if worst_margin < 0:
        raise SystemExit("a torch.ao observer beat every quantkit method")


if __name__ == "__main__":
    main()
