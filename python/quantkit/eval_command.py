"""``quantkit eval``: a quantized causal LM against its float original, on given text or
tokens: perplexity of both, KL divergence of the next-token distributions (mean, 99 %,
max), top-1 agreement and Δp (:func:`quantkit.torch.evaluate_causal_lm`), as a table,
JSON and a plot. Both models load through transformers (the quantized one through
compressed-tensors, as any user of the checkpoint loads it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quantkit eval",
        description="Compare a quantized causal LM with its float original (transformers "
        "folders): perplexity, KL divergence, top-1 agreement, delta p.",
    )
    parser.add_argument("reference", type=Path, help="the float model folder")
    parser.add_argument("quantized", type=Path, help="the quantized model folder")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--text", type=Path, help="a UTF-8 text file (the reference's tokenizer)")
    data.add_argument(
        "--tokens",
        type=Path,
        help="token ids: a .safetensors file with an integer 'input_ids' [sequences, length] "
        "or a text file of whitespace-separated ids",
    )
    data.add_argument(
        "--random",
        type=int,
        metavar="N",
        help="N sequences of uniformly random token ids (seeded; a smoke test, not a benchmark)",
    )
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (128)")
    parser.add_argument("--batch-size", type=int, default=4, help="sequences per batch (4)")
    parser.add_argument(
        "--dtype", default="float32", choices=("float32", "bfloat16", "float16"), help="compute"
    )
    parser.add_argument("--plot", type=Path, help="write the KL distribution as a PNG")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def _token_rows(args, vocab: int, tokenizer_folder: Path):
    import torch

    if args.random is not None:
        if args.random < 1:
            raise ValueError(f"--random {args.random}: needs at least one sequence")
        g = torch.Generator().manual_seed(0)
        return torch.randint(0, vocab, (args.random, args.seq_len), generator=g)
    if args.tokens is not None:
        if args.tokens.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(str(args.tokens))
            if "input_ids" not in tensors:
                raise ValueError(f"--tokens {args.tokens}: holds no 'input_ids' tensor")
            ids = tensors["input_ids"].long()
            ids = ids.reshape(1, -1) if ids.dim() == 1 else ids
        else:
            ids = torch.tensor([int(t) for t in args.tokens.read_text().split()]).reshape(1, -1)
    else:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"--text: the reference folder '{tokenizer_folder}' has no tokenizer "
                f"({error}); pass token ids with --tokens"
            ) from None
        ids = tokenizer(args.text.read_text(encoding="utf-8"), return_tensors="pt")["input_ids"]
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(f"token ids must lie in [0, {vocab}) (the model's vocabulary)")
    if ids.dim() == 2 and ids.shape[0] == 1:  # one stream: cut into sequences
        usable = ids.shape[1] // args.seq_len * args.seq_len
        if usable == 0:
            raise ValueError(f"{ids.shape[1]} tokens: fewer than one --seq-len {args.seq_len}")
        ids = ids[:, :usable].reshape(-1, args.seq_len)
    return ids


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.seq_len < 2 or args.batch_size < 1:
        print("quantkit eval: --seq-len must be >= 2 and --batch-size >= 1", file=sys.stderr)
        return 2
    try:
        import torch
        from transformers import AutoModelForCausalLM

        from quantkit.torch import evaluate_causal_lm
    except ImportError as error:
        print(f"quantkit eval needs torch and transformers: {error}", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype)
    try:
        for folder in (args.reference, args.quantized):
            if not folder.is_dir():
                raise ValueError(f"'{folder}' is not a model folder")
        reference = AutoModelForCausalLM.from_pretrained(args.reference, dtype=dtype).eval()
        model = AutoModelForCausalLM.from_pretrained(args.quantized, dtype=dtype).eval()
        ids = _token_rows(args, reference.config.vocab_size, args.reference)
        batches = list(torch.split(ids, args.batch_size))
        result = evaluate_causal_lm(model, reference, batches)
    except ValueError as error:
        print(f"quantkit eval: {error}", file=sys.stderr)
        return 1
    if args.plot is not None:
        result.plot(args.plot, title=f"{args.quantized.name} vs {args.reference.name}")
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(result.table())
    return 0
