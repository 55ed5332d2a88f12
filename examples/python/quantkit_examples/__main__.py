"""``python -m quantkit_examples demo|results`` (also ``quantkit demo|results``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quantkit", description="quantkit's examples")
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
