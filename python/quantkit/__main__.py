"""``quantkit``: one command for everything.

- ``quantize``, ``inspect``, ``report``, ``schemes``: the checkpoint tool, the
  C++ executable the wheel ships in ``quantkit/_bin``;
- ``eval``: a quantized causal LM against its float original (needs torch and
  transformers);
- ``demo``, ``results``: the MiniLM demo and the experiments behind
  docs/results.md, from the ``quantkit-examples`` package (``examples/python``
  in the source tree), which is not part of the library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CHECKPOINT_COMMANDS = ("quantize", "inspect", "report", "schemes")
EXAMPLE_COMMANDS = ("demo", "results")


def native_tool() -> Path:
    """The checkpoint tool installed with this package."""
    return Path(__file__).resolve().parent / "_bin" / "quantkit"


def _usage() -> str:
    return (
        "usage: quantkit {quantize,inspect,report,schemes,eval,demo,results} ...\n\n"
        "  quantize   quantize a safetensors checkpoint (compressed-tensors output)\n"
        "  inspect    list a checkpoint's tensors\n"
        "  report     per-tensor quantization error of a checkpoint\n"
        "  schemes    the schemes quantize accepts\n"
        "  eval       perplexity / KL / top-1 of a quantized causal LM against its original\n"
        "  demo       MiniLM post-training quantization, end to end (quantkit-examples)\n"
        "  results    run the experiments, write docs/results.md (quantkit-examples)\n\n"
        "`quantkit COMMAND --help` describes each command.\n"
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(), end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command = argv[0]
    if command in CHECKPOINT_COMMANDS:
        tool = native_tool()
        if not tool.is_file():
            print(
                f"quantkit {command}: the checkpoint tool is missing from this installation "
                f"({tool}); reinstall quantkit (pip install .) from a source tree",
                file=sys.stderr,
            )
            return 2
        os.execv(tool, [str(tool), *argv])
    if command == "eval":
        from .eval_command import main as eval_main

        return eval_main(argv[1:])
    if command in EXAMPLE_COMMANDS:
        try:
            from quantkit_examples.__main__ import main as examples_main
        except ImportError:
            print(
                f"quantkit {command}: this command runs quantkit's examples, which are not "
                "installed; install them from the source tree with `pip install examples/python` "
                "(or run `bash scripts/demo.sh`)",
                file=sys.stderr,
            )
            return 2
        return examples_main(argv)
    print(f"quantkit: unknown command '{command}'\n\n{_usage()}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
