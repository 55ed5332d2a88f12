"""Speed and peak memory of `quantkit quantize` on a generated checkpoint,
next to `cp` of the same file (the disk-speed roofline).

    python3 bench/checkpoint_speed.py [--gib 2] [--scheme int4-g128] [--dir /tmp]

Both runs start with the input in the page cache (it is read once first), so
the comparison is quantize-and-write against copy-and-write.
"""

import argparse
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[1]


def generate(path: pathlib.Path, gib: float) -> None:
    rows, cols = 4096, 4096
    count = max(1, round(gib * 2**30 / (rows * cols * 2)))
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for i in range(count):
        tensors[f"model.layers.{i}.mlp.proj.weight"] = (
            torch.randn(rows, cols, generator=g) * 0.02
        ).bfloat16()
        tensors[f"model.layers.{i}.norm.weight"] = torch.ones(cols, dtype=torch.bfloat16)
    save_file(tensors, str(path), metadata={"format": "pt"})


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS in KiB (GNU time)."""
    start = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - start
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return seconds, rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--scheme", default="int4-g128")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--cli", default=str(ROOT / "build/release/tools/quantkit"))
    args = parser.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="quantkit_bench_", dir=args.dir))
    try:
        src = work / "model.safetensors"
        generate(src, args.gib)
        size = src.stat().st_size
        src.read_bytes()  # page cache
        cp_runs, q_runs = [], []
        for _ in range(args.repeat):
            cp_runs.append(timed(["cp", str(src), str(work / "copy.safetensors")]))
            (work / "copy.safetensors").unlink()
            q_runs.append(
                timed(
                    [
                        args.cli,
                        "quantize",
                        str(src),
                        "-o",
                        str(work / "q.safetensors"),
                        "-s",
                        args.scheme,
                        "-q",
                        "--force",  # later rounds replace the first round's output
                    ]
                )  # fmt: skip
            )
        out_size = (work / "q.safetensors").stat().st_size
        cp_s = statistics.median(s for s, _ in cp_runs)
        q_s = statistics.median(s for s, _ in q_runs)
        print(f"input {size / 1e9:.2f} GB bf16 -> {args.scheme} {out_size / 1e9:.3f} GB "
              f"(median of {args.repeat})")  # fmt: skip
        print(f"{'command':<22}{'seconds':>9}{'GB/s (input)':>14}{'peak RSS MB':>13}")
        print(f"{'cp':<22}{cp_s:>9.2f}{size / cp_s / 1e9:>14.2f}"
              f"{max(r for _, r in cp_runs) / 1024:>13.1f}")  # fmt: skip
        print(f"{'quantkit quantize':<22}{q_s:>9.2f}{size / q_s / 1e9:>14.2f}"
              f"{max(r for _, r in q_runs) / 1024:>13.1f}")  # fmt: skip
        print(f"quantize speed = {cp_s / q_s * 100:.0f} % of cp")
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
