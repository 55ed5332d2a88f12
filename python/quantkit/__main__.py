"""``python -m quantkit`` (also the ``quantkit`` console script).

- ``demo``: the MiniLM post-training quantization comparison (quantkit.demo);
- ``results``: the experiments behind docs/results.md, written as Markdown.

The checkpoint commands (``quantize``, ``inspect``, ``report``, ``schemes``)
belong to the C++ ``quantkit`` tool; this entry point hands them to it when one
is installed on PATH.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

CHECKPOINT_COMMANDS = ("quantize", "inspect", "report", "schemes")


def _native_tool() -> str | None:
    me = os.path.realpath(sys.argv[0])
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("quantkit", path=folder)
        if candidate and os.path.realpath(candidate) != me:
            with open(candidate, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    return candidate
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in CHECKPOINT_COMMANDS:
        tool = _native_tool()
        if tool is None:
            print(
                f"quantkit {argv[0]}: this command is part of the C++ quantkit tool, which is not "
                "on PATH; build it with `cmake --workflow --preset release` "
                "(build/release/tools/quantkit)",
                file=sys.stderr,
            )
            return 2
        os.execv(tool, [tool, *argv])
    parser = argparse.ArgumentParser(prog="quantkit", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="MiniLM post-training quantization, end to end")
    demo.add_argument("--output-dir", default="quantkit-demo", help="where the PNG plots go")
    results = sub.add_parser("results", help="run the experiments, write docs/results.md")
    results.add_argument("--output", default="docs/results.md")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.output_dir)
    from .experiments.results import write_results

    return write_results(args.output)


if __name__ == "__main__":
    sys.exit(main())
