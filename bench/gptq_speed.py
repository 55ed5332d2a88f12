"""GPTQ on one Linear layer against the dense linear algebra it needs, timed in the
same process: the Gram matrix X^T X of the calibration tokens, the Cholesky
factorizations of the damped Hessian and its inverse, and one weight x Hessian
product. Reports seconds and the ratio.

    python3 bench/gptq_speed.py [--features 4096] [--tokens 2048] [--group 128]
"""

import argparse
import time

import quantkit.torch as qkt
import torch
from quantkit.torch.gptq import gptq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=4096)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--group", type=int, default=128)
    parser.add_argument("--act-order", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    n = args.features
    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(n, n, bias=False))
    x = torch.randn(args.tokens, n)
    batches = list(x.split(512))

    # warm both paths (library loading, first kernel calls)
    warm = qkt.prepare(torch.nn.Sequential(torch.nn.Linear(64, 64)), qkt.recipes.W4A16(32))
    gptq(warm, [torch.randn(128, 64)])

    start = time.perf_counter()
    h = x.T @ x
    h += 0.01 * torch.diag(h).mean() * torch.eye(n)
    factor = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    _ = layer[0].weight.detach() @ factor
    dense = time.perf_counter() - start

    model = qkt.prepare(layer, qkt.recipes.W4A16(args.group, symmetric=True))
    start = time.perf_counter()
    (report,) = gptq(model, batches, act_order=args.act_order, report=True)
    total = time.perf_counter() - start
    print(
        f"{n}x{n}, {args.tokens} tokens, group {args.group}, act-order {args.act_order}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"dense linear algebra {dense:.2f} s; gptq {total:.2f} s ({total / dense:.1f}x); "
        f"damp {report.damp}, {report.precision}"
    )


if __name__ == "__main__":
    main()
