#!/usr/bin/env python3
"""Checks that every project #include points down the layer order.

    core <- reference <- cpu <- ops <- observers <- io <- tools / bindings

A file may include headers of its own layer or of any layer below it. The SIMD
kernels (cpu/) are reached only through the dispatcher: nothing above ops
includes them. Tests and benchmarks may include anything and are not checked.
Exits 1 and lists each offending include (file:line) otherwise.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "reference", "cpu", "ops", "observers", "io", "top"]
RANK = {name: rank for rank, name in enumerate(LAYERS)}

# Public headers by the layer that implements them; the rest of
# include/quantkit/ are core value types.
PUBLIC_HEADER_LAYER = {
    "ops.hpp": "ops",
    "metrics.hpp": "ops",
    "stretched.hpp": "ops",
    "torch_core.hpp": "ops",
    "observers.hpp": "observers",
    "quantkit.hpp": "top",
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layer_of(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    if rel.startswith("include/quantkit/io/"):
        return "io"
    if rel.startswith("include/quantkit/"):
        return PUBLIC_HEADER_LAYER.get(path.name, "core")
    if rel.startswith("src/"):
        top = rel.split("/")[1]
        if top in RANK:
            return top
        raise SystemExit(f"{rel}: in no layer; put it in one of src/{{{','.join(LAYERS[:-1])}}}/")
    return "top"  # tools/, python/src/


def resolve(including: Path, name: str) -> Path | None:
    for base in (including.parent, ROOT / "src", ROOT / "include"):
        candidate = base / name
        if candidate.is_file():
            return candidate.resolve()
    return None


def checked_files() -> list[Path]:
    files = []
    for folder in ("src", "include", "tools", "python/src"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".cpp", ".hpp", ".h"}]
    return sorted(files)


def problems() -> list[str]:
    found = []
    for path in checked_files():
        own = layer_of(path)
        text = path.read_text()
        for match in INCLUDE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(ROOT)}:{line}"
            target = resolve(path, match.group(1))
            if target is None:
                found.append(f'{where}: "{match.group(1)}" is not a file of this project')
                continue
            theirs = layer_of(target)
            if RANK[theirs] > RANK[own]:
                found.append(
                    f'{where}: {own} includes "{match.group(1)}" of the higher layer {theirs}'
                )
            elif theirs == "cpu" and RANK[own] > RANK["ops"]:
                found.append(
                    f'{where}: {own} includes the SIMD kernels "{match.group(1)}"; '
                    "call the public op (src/ops/dispatch.cpp) instead"
                )
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} include(s) break the layer order {' <- '.join(LAYERS)}")
        return 1
    print(f"layer order holds for {len(checked_files())} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
