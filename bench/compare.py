"""Side-by-side throughput of quantkit, torch eager, torchao eager and torchao
under torch.compile, with a copy roofline, on the same tensors in one process.

    python bench/compare.py                 # full table: 4K, 1M, 64M elements, 1 and 2 threads
    python bench/compare.py --quick         # seconds: small sizes, no torch.compile (CI)

Each cell is the best of several timed calls, in G elements/s. The roofline
"copy" is y.copy_(x) into a preallocated, already-touched tensor: one read and
one write at memory bandwidth. "clone" is x.clone(), which also allocates its
output as every op here does (fresh pages cost first-touch faults). "vs copy"
is quantkit's speed as a fraction of the copy roofline: its out= variant where
the op has one (writing into a preallocated, touched tensor, like the copy),
else the allocating call. The speed-ups compare allocating calls with
allocating calls.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
import warnings

import quantkit as qk
import torch

warnings.filterwarnings("ignore")
from torchao.prototype.mx_formats.config import ScaleCalculationMode  # noqa: E402
from torchao.prototype.mx_formats.mx_tensor import to_mx  # noqa: E402
from torchao.quantization.quant_primitives import (  # noqa: E402
    MappingType,
    _dequantize_affine_float8,
    _fake_quantize_affine,
    _quantize_affine_float8,
    choose_qparams_affine,
    dequantize_affine,
    quantize_affine,
)

GRANULARITIES = {
    "per-tensor": (qk.per_tensor(), lambda shape: tuple(shape)),
    "per-channel": (qk.per_axis(0), lambda shape: (1, shape[1])),
    "per-group-128": (qk.per_group(128), lambda shape: (1, 128)),
}


def best_seconds(fn, min_time: float, max_reps: int) -> float:
    fn()
    fn()
    best, total, reps = float("inf"), 0.0, 0
    while reps < 3 or (total < min_time and reps < max_reps):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, total, reps = min(best, elapsed), total + elapsed, reps + 1
    return best


def use_threads_and_copy_rate(threads: int, x, min_time: float) -> float:
    """Sets both libraries' thread count; returns the copy roofline in G elements/s:
    y.copy_(x) into a preallocated, already-touched tensor."""
    torch.set_num_threads(threads)
    qk.set_num_threads(threads)
    target = torch.empty_like(x)
    target.copy_(x)
    return x.numel() / best_seconds(lambda: target.copy_(x), min_time, 50) / 1e9


def compiled(fn):
    return torch.compile(fn, dynamic=False, fullgraph=False)


def cases(x, granularity_name):
    """(op name, {system: callable}) for one input tensor and granularity."""
    granularity, block_of = GRANULARITIES[granularity_name]
    block = block_of(x.shape)
    spec = qk.QuantSpec(dtype="int8", granularity=granularity)
    qp = qk.choose_qparams(x, spec)
    s, z = qp.scale.reshape(-1), qp.zero_point.reshape(-1)
    q = qk.quantize(x, qp)
    codes = q.codes()
    fp32 = x.dtype == torch.float32

    def torchao_fake(t):
        return _fake_quantize_affine(t, block, s, z, torch.int32, -128, 127)

    def torchao_quantize(t):
        return quantize_affine(t, block, s, z, torch.int8, -128, 127)

    def torchao_dequantize(c):
        return dequantize_affine(c, block, s, z, torch.int8, -128, 127, output_dtype=x.dtype)

    fake_out = torch.empty_like(x)
    dequant_out = torch.empty_like(x)
    fake = {
        "quantkit": lambda: qk.fake_quantize(x, qp),
        "quantkit out=": lambda: qk.fake_quantize(x, qp, out=fake_out),
        "torchao": lambda: torchao_fake(x),
        "torchao+compile": (compiled(torchao_fake), x),
    }
    quant = {
        "quantkit": lambda: qk.quantize(x, qp),
        "torchao": lambda: torchao_quantize(x),
        "torchao+compile": (compiled(torchao_quantize), x),
    }
    dequant = {
        "quantkit": lambda: qk.dequantize(q, x.dtype),
        "quantkit out=": lambda: qk.dequantize(q, out=dequant_out),
        "torchao": lambda: torchao_dequantize(codes),
        "torchao+compile": (compiled(torchao_dequantize), codes),
    }
    if granularity_name == "per-tensor":
        scale, zero = float(s[0]), int(z[0])
        fake["torch"] = lambda: torch.fake_quantize_per_tensor_affine(x, scale, zero, -128, 127)
        if fp32:
            quant["torch"] = lambda: torch.quantize_per_tensor(x, scale, zero, torch.qint8)
            qt = torch.quantize_per_tensor(x, scale, zero, torch.qint8)
            dequant["torch"] = qt.dequantize
    elif granularity_name == "per-channel":
        s32 = s.float()  # torch needs float32 scales (timing only; parity is tested elsewhere)
        fake["torch"] = lambda: torch.fake_quantize_per_channel_affine(x, s32, z, 0, -128, 127)
        if fp32:
            s64, z64 = s.double(), z.long()
            quant["torch"] = lambda: torch.quantize_per_channel(x, s64, z64, 0, torch.qint8)
            qt = torch.quantize_per_channel(x, s64, z64, 0, torch.qint8)
            dequant["torch"] = qt.dequantize
    out = [("fake_quantize int8", fake), ("quantize int8", quant), ("dequantize int8", dequant)]
    if granularity_name == "per-tensor":
        spec8 = qk.QuantSpec(dtype="fp8_e4m3fn", scale_dtype="float32")
        qp8 = qk.choose_qparams(x, spec8)
        s8 = qp8.scale.reshape(1, 1).float()

        def torchao_fake_fp8(t):
            q8 = _quantize_affine_float8(t, s8, torch.float8_e4m3fn)
            return _dequantize_affine_float8(q8, s8, t.dtype)

        out.append(
            (
                "fake_quantize fp8",
                {
                    "quantkit": lambda: qk.fake_quantize(x, qp8),
                    "torchao": lambda: torchao_fake_fp8(x),
                    "torchao+compile": (compiled(torchao_fake_fp8), x),
                },
            )
        )
    if granularity_name == "per-group-128":
        mx = qk.QuantSpec(dtype="fp4_e2m1", granularity=qk.per_group(32), scale_dtype="e8m0")

        def torchao_mxfp4(t):
            return to_mx(t, torch.float4_e2m1fn_x2, 32, ScaleCalculationMode.FLOOR)

        out.append(
            (
                "choose+quantize mxfp4",
                {
                    "quantkit": lambda: qk.quantize(x, mx),
                    "torchao": lambda: torchao_mxfp4(x),
                    "torchao+compile": (compiled(torchao_mxfp4), x),
                },
            )
        )
        spec4 = qk.QuantSpec(dtype="int4", mapping="asymmetric", granularity=granularity)

        def torchao_choose_quantize(t):
            s4, z4 = choose_qparams_affine(t, MappingType.ASYMMETRIC, (1, 128), torch.int8, -8, 7)
            return quantize_affine(t, (1, 128), s4, z4, torch.int8, -8, 7)

        out.append(
            (
                "choose+quantize int4",
                {
                    "quantkit": lambda: qk.quantize(x, spec4),
                    "torchao": lambda: torchao_choose_quantize(x),
                    "torchao+compile": (compiled(torchao_choose_quantize), x),
                },
            )
        )
    return out


SYSTEMS = ["quantkit", "quantkit out=", "torch", "torchao", "torchao+compile"]
COMPARED = ["torch", "torchao", "torchao+compile"]


def run(args) -> None:
    sizes = [4096, 1 << 16] if args.quick else [4096, 1 << 20, 1 << 26]
    if args.sizes:
        sizes = [int(v) for v in args.sizes.split(",")]
    threads = [1, 2]
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"# {platform.machine()}; torch {torch.__version__} (CPU capability {capability})")
    header = (
        "| op | granularity | size | dtype | thr | copy | clone | quantkit | quantkit out= | "
        "torch | torchao | torchao+compile | vs torch | vs torchao | vs compile | vs copy |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    failed: set[str] = set()
    for n in sizes:
        for dtype in [torch.float32, torch.bfloat16]:
            x = torch.randn(n // 4096, 4096).to(dtype)
            for thread_count in threads:
                min_time = 0.05 if args.quick else 0.4
                copy = use_threads_and_copy_rate(thread_count, x, min_time)
                clone = n / best_seconds(x.clone, min_time, 50) / 1e9
                for granularity_name in GRANULARITIES:
                    for op, systems in cases(x, granularity_name):
                        speeds = {}
                        for system in SYSTEMS:
                            fn = systems.get(system)
                            skip_compile = system == "torchao+compile" and not args.compile_at(n)
                            if fn is None or skip_compile:
                                continue
                            if isinstance(fn, tuple):
                                fn, arg = fn[0], fn[1]
                                call = (lambda f, a: lambda: f(a))(fn, arg)
                            else:
                                call = fn
                            try:
                                speeds[system] = n / best_seconds(call, min_time, 50) / 1e9
                            except Exception as error:  # e.g. inductor lacks a dtype
                                if system != "torchao+compile":
                                    raise
                                failed.add(f"{op} ({type(error).__name__})")
                                speeds[system] = float("nan")
                        ours = speeds["quantkit"]

                        def cell(system, speeds=speeds):
                            if system not in speeds:
                                return "-"
                            value = speeds[system]
                            return "fails" if math.isnan(value) else f"{value:.3f}"

                        def ratio(system, speeds=speeds, ours=ours):
                            if system not in speeds or math.isnan(speeds[system]):
                                return "-"
                            return f"{ours / speeds[system]:.1f}x"

                        size = {4096: "4K", 1 << 16: "64K", 1 << 20: "1M", 1 << 26: "64M"}.get(
                            n, str(n)
                        )
                        row = [
                            op,
                            granularity_name,
                            size,
                            str(dtype)[6:],
                            str(thread_count),
                            f"{copy:.3f}",
                            f"{clone:.3f}",
                        ]
                        row += [cell(system) for system in SYSTEMS]
                        kernel = speeds.get("quantkit out=", ours)
                        row += [ratio(system) for system in COMPARED] + [f"{kernel / copy:.0%}"]
                        print("| " + " | ".join(row) + " |", flush=True)
    for what in sorted(failed):
        print(f"\ntorch.compile of the torchao function failed: {what}")


def observer_cases(x):
    """(observer op, quantkit callable, torch.ao callable) on one float32 batch."""
    from torch.ao.quantization import observer as tao

    affine = qk.QuantSpec(dtype="uint8", mapping="asymmetric", eps=2.0**-23)
    per_channel = qk.QuantSpec(
        dtype="uint8", mapping="asymmetric", granularity=qk.per_axis(0), eps=2.0**-23
    )
    ours = {
        "MinMax per-tensor": qk.MinMaxObserver(affine),
        "MinMax per-channel": qk.MinMaxObserver(per_channel),
        "MovingAverage per-tensor": qk.MovingAverageObserver(affine),
        "Histogram observe": qk.HistogramObserver(affine),
    }
    theirs = {
        "MinMax per-tensor": tao.MinMaxObserver(),
        "MinMax per-channel": tao.PerChannelMinMaxObserver(ch_axis=0),
        "MovingAverage per-tensor": tao.MovingAverageMinMaxObserver(),
        "Histogram observe": tao.HistogramObserver(),
    }
    for op in ours:
        yield op, (lambda o=ours[op]: o.observe(x)), (lambda o=theirs[op]: o(x))
    hist, torch_hist = ours["Histogram observe"], theirs["Histogram observe"]
    yield "Histogram qparams (L2 search)", hist.qparams, torch_hist.calculate_qparams


def run_observers(args) -> None:
    sizes = [4096, 1 << 16] if args.quick else [4096, 1 << 20, 1 << 26]
    if args.sizes:
        sizes = [int(v) for v in args.sizes.split(",")]
    print("\n| observer op | size | thr | copy | quantkit | torch.ao | vs torch.ao | vs copy |")
    print("|" + "---|" * 8)
    for n in sizes:
        x = torch.randn(n // 4096, 4096)
        for thread_count in [1, 2]:
            min_time = 0.05 if args.quick else 0.4
            copy = use_threads_and_copy_rate(thread_count, x, min_time)
            for op, ours, theirs in observer_cases(x):
                t_ours = best_seconds(ours, min_time, 50)
                t_theirs = best_seconds(theirs, min_time, 20)
                size = {4096: "4K", 1 << 16: "64K", 1 << 20: "1M", 1 << 26: "64M"}.get(n, str(n))
                if "qparams" in op:  # independent of the batch size: times, not rates
                    cells = [f"{t_ours * 1e3:.3f} ms", f"{t_theirs * 1e3:.3f} ms", "-"]
                else:
                    cells = [f"{n / t_ours / 1e9:.3f}", f"{n / t_theirs / 1e9:.3f}"]
                    cells.append(f"{t_ours and (n / t_ours / 1e9) / copy:.0%}")
                row = [op, size, str(thread_count), f"{copy:.3f}", cells[0], cells[1]]
                row += [f"{t_theirs / t_ours:.1f}x", cells[2]]
                print("| " + " | ".join(row) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, no torch.compile")
    parser.add_argument(
        "--compile-sizes",
        default="67108864",
        help="comma-separated sizes at which torchao also runs under torch.compile",
    )
    parser.add_argument(
        "--sizes", default="", help="comma-separated element counts (multiples of 4096)"
    )
    parser.add_argument("--no-observers", action="store_true", help="only the kernel table")
    parser.add_argument("--observers-only", action="store_true", help="only the observer table")
    args = parser.parse_args()
    compile_sizes = set() if args.quick else {int(v) for v in args.compile_sizes.split(",") if v}
    args.compile_at = lambda n: n in compile_sizes
    if not args.observers_only:
        run(args)
    if not args.no_observers:
        run_observers(args)


if __name__ == "__main__":
    main()
