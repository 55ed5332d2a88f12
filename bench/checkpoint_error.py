"""Error per bit of `quantkit quantize` schemes on the real all-MiniLM-L6-v2
weights: mean / min per-tensor SQNR over the quantized Linear weights, bits per
weight, and the sentence-embedding cosine of the dequantized model against the
float one on held-out sentences. With `--importance`, the `:search=mse` schemes
are also run weighted by importance collected on the first 20 sentences
(quantkit.torch.collect_importance); the other 190 are the held-out set.

    python3 bench/checkpoint_error.py [--schemes int4-g32,int4-g32:search=mse ...]
"""

import argparse
import pathlib
import subprocess
import tempfile

import quantkit.torch as qkt
import torch
from quantkit import _core
from quantkit.__main__ import native_tool
from quantkit_examples.models import minilm
from safetensors.torch import load_file

DEFAULT = (
    "int8,int8:search=mse,int8-g32,int8-g32-signed,int6-g32,int5-g32,int5-g32-signed,"
    "int5-g32-signed:search=mse,int4-g32,int4-g32:search=mse,int4-g32-signed,"
    "int4-g32-signed:search=mse,int4-g32-asym,int4-g32-asym:search=mse,int4-g128,"
    "int4-g128:search=mse,int4-g128-signed:search=mse,int4-g128-asym:search=mse,"
    "int3-g32-asym,int3-g32-asym:search=mse,nvfp4,mxfp4,q3-mix,q4-mix,q5-mix"
)


def bits_per_weight(stored: dict, name: str, weights: int) -> float:
    parts = [v for k, v in stored.items() if k.startswith(name) and not k.endswith("_shape")]
    return 8 * sum(p.numel() * p.element_size() for p in parts) / weights


def dequantized(path: pathlib.Path) -> dict:
    out = {}
    for name, value, *_ in _core.load_compressed_tensors(str(path), "float32"):
        if isinstance(value, _core.QuantizedTensor):
            out[name] = torch.from_dlpack(_core.dequantize(value, "float32"))
    return out


def sqnr(reference: torch.Tensor, approx: torch.Tensor) -> float:
    return 10 * torch.log10(reference.square().sum() / (reference - approx).square().sum()).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schemes", default=DEFAULT)
    parser.add_argument("--importance", action="store_true")
    args = parser.parse_args()
    source = minilm.model_dir() / "model.safetensors"
    original = load_file(str(source))
    model = minilm.load_model()
    tokenizer = minilm.Tokenizer()
    texts = minilm.sentences()
    calibration = minilm.batches(texts[:20], tokenizer)
    held_out = minilm.batches(texts[20:], tokenizer)
    reference = minilm.embed(model, held_out)
    runs = [(s, None) for s in args.schemes.split(",")]
    work = pathlib.Path(tempfile.mkdtemp())
    if args.importance:
        importance = qkt.collect_importance(model, calibration, forward=lambda m, b: m(*b))
        qkt.save_importance(importance, work / "importance.safetensors")
        searched = [s for s, _ in runs if ":search" in s or s.endswith("-mix")]
        runs += [(s, work / "importance.safetensors") for s in searched]
    print("| scheme | importance | bits/weight | mean SQNR dB | min SQNR dB | mean cos | min cos |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for scheme, importance_path in runs:
        out = work / "q.safetensors"
        out.unlink(missing_ok=True)
        extra = ["--importance", str(importance_path)] if importance_path else []
        subprocess.run(
            [
                str(native_tool()),
                "quantize",
                str(source),
                "-o",
                str(out),
                "-s",
                scheme,
                "-q",
                *extra,
            ],
            check=True,
        )
        weights = dequantized(out)
        stored = load_file(str(out))
        ratios = [sqnr(original[n].float(), w) for n, w in weights.items()]
        bits = sum(
            bits_per_weight(stored, n, original[n].numel()) * original[n].numel() for n in weights
        ) / sum(original[n].numel() for n in weights)
        quantized = minilm.load_model()
        state = quantized.state_dict()
        for name, w in weights.items():
            if name in state:
                state[name].copy_(w)
        embeddings = minilm.embed(quantized, held_out)
        cos = torch.nn.functional.cosine_similarity(embeddings, reference, dim=1)
        print(
            f"| {scheme} | {'yes' if importance_path else 'no'} | {bits:.3f} | "
            f"{sum(ratios) / len(ratios):.2f} | {min(ratios):.2f} | {cos.mean():.5f} | "
            f"{cos.min():.5f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
