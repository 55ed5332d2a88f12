"""The best SQNR any choice of per-group parameters can reach in each int4 layout, on
Gaussian groups of 32 (the synthetic Llama's weights): an exhaustive oracle per group
over a fine grid of scales (both signs where the layout allows it) and every integer
zero point, codes rounded to nearest (the best codes for given parameters). No search
can beat these numbers in its layout; llama.cpp's Q4_K (a float minimum, least-squares
fitted, 6-bit sub-scales) reached 22.93 dB on the same kind of weights.

    python3 bench/int4_ceiling.py [--groups 20000]
"""

import argparse

import numpy as np


def sqnr(x: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(np.square(x).sum() / np.square(x - y).sum()))


def best_of(x: np.ndarray, candidates) -> np.ndarray:
    """Per group, the candidate reconstruction of least squared error."""
    best = np.full(x.shape[0], np.inf)
    chosen = np.zeros_like(x)
    for y in candidates:
        error = np.square(x - y).sum(axis=1)
        better = error < best
        best[better] = error[better]
        chosen[better] = y[better]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20000)
    args = parser.parse_args()
    x = np.random.default_rng(0).standard_normal((args.groups, 32))
    amax = np.abs(x).max(axis=1, keepdims=True)
    span = x.max(axis=1, keepdims=True) - x.min(axis=1, keepdims=True)
    factors = np.linspace(0.5, 1.3, 321)

    def symmetric():  # zero point 0, any scale of either sign (int4-g32, -signed)
        for f in factors:
            for sign in (1, -1):
                s = sign * amax * f / 8
                yield np.clip(np.round(x / s), -8, 7) * s

    def integer_zero():  # compressed-tensors' asymmetric layout (int4-g32-asym)
        for f in factors:
            s = span * f / 15
            for z in range(-8, 8):
                yield (np.clip(np.round(x / s) + z, -8, 7) - z) * s

    def float_minimum():  # Q4_K's form before its 6-bit sub-scales: y = s q + m, fitted
        lo = x.min(axis=1, keepdims=True)
        for f in factors[::4]:
            for shift in np.linspace(-0.5, 0.5, 11):
                s = span / 15 * f
                q = np.clip(np.round((x - (lo + shift * s)) / s), 0, 15)
                n, sq, sqq = 32, q.sum(1, keepdims=True), (q * q).sum(1, keepdims=True)
                sx, sqx = x.sum(1, keepdims=True), (q * x).sum(1, keepdims=True)
                det = n * sqq - sq * sq
                det[det == 0] = 1
                fitted = (n * sqx - sq * sx) / det
                yield q * fitted + (sx - fitted * sq) / n

    print("| int4 layout, groups of 32 | bits/weight (16-bit scales) | best SQNR dB |")
    print("| --- | ---: | ---: |")
    rows = [
        ("zero point 0 (symmetric, any signed scale)", 4.5, symmetric),
        ("integer zero point (compressed-tensors asymmetric)", 4.625, integer_zero),
        ("float minimum, least-squares (Q4_K's form, unquantized)", 4.5, float_minimum),
    ]
    for label, bits, candidates in rows:
        print(f"| {label} | {bits} | {sqnr(x, best_of(x, candidates())):.2f} |", flush=True)


if __name__ == "__main__":
    main()
