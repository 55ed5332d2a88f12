"""Converted models end to end against their float32 originals, in one process: a
Llama-shaped causal LM built from a transformers config (random weights; TinyLlama's
widths, fewer layers) generating tokens greedily at batch 1, and the MiniLM sentence
encoder (quantkit_examples, the demo's model) embedding sentences one at a time and
in batches of 32. Each converted model is also timed inside ``qkt.torch_matmul()``,
where layers dequantize their whole weight and call F.linear (the old path).

    python3 bench/model_speed.py [--layers 4] [--new-tokens 16] [--threads 2]
"""

import argparse
import copy
import time

import quantkit
import quantkit.torch as qkt
import torch
from quantkit.torch import recipes

RECIPES = {
    "W4A16 g32": lambda: recipes.W4A16(32, symmetric=True),
    "W4A16 g128": lambda: recipes.W4A16(128, symmetric=True),
    "W8A16": lambda: recipes.W8A16(),
    "W8A8 dynamic": lambda: recipes.W8A8Dynamic(),
    "8da4w g32": lambda: recipes.Int8DynActInt4Weight(32),
    "NVFP4": lambda: recipes.NVFP4(),
    "W8A16 + int8 embeddings": lambda: recipes.with_embeddings(recipes.W8A16()),
}


def best_s(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def llama(layers: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=32000,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=4,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def generate_rate(model, prompt, new_tokens: int, repeat: int) -> float:
    def run():
        with torch.no_grad():
            model.generate(
                prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
            )

    return new_tokens / best_s(run, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    quantkit.set_num_threads(args.threads)

    base = llama(args.layers)
    prompt = torch.randint(0, 32000, (1, 8), generator=torch.Generator().manual_seed(1))
    fp32 = generate_rate(base, prompt, args.new_tokens, args.repeat)
    print(f"Llama ({args.layers} layers, hidden 2048), batch 1, {args.new_tokens} new tokens")
    print("| model | tokens/s | vs fp32 | tokens/s, dequantize + F.linear |")
    print("|---|---|---|---|")
    print(f"| fp32 | {fp32:.1f} | 1.00x | |", flush=True)
    for name, recipe in RECIPES.items():
        model = qkt.quantize_(copy.deepcopy(base), recipe())
        rate = generate_rate(model, prompt, args.new_tokens, args.repeat)
        with qkt.torch_matmul():
            old = generate_rate(model, prompt, args.new_tokens, args.repeat)
        print(f"| {name} | {rate:.1f} | {rate / fp32:.2f}x | {old:.1f} |", flush=True)

    from quantkit_examples.models import minilm

    encoder = minilm.load_model()
    tok = minilm.Tokenizer()
    texts = minilm.sentences()[:64]
    one = [tok([t]) for t in texts[:32]]
    full = minilm.batches(texts, tok, 32)

    def rates(model):
        return (
            32 / best_s(lambda: minilm.embed(model, one), args.repeat),
            64 / best_s(lambda: minilm.embed(model, full), args.repeat),
        )

    f1, f32 = rates(encoder)
    print("\nMiniLM-L6, sentences/s")
    print(
        "| model | batch 1 | vs fp32 | batch 32 | vs fp32 | batch 1 / 32, dequantize + F.linear |"
    )
    print("|---|---|---|---|---|---|")
    print(f"| fp32 | {f1:.1f} | 1.00x | {f32:.1f} | 1.00x | |", flush=True)
    for name in ("W4A16 g32", "W8A16", "W8A8 dynamic", "8da4w g32"):
        model = qkt.quantize_(copy.deepcopy(encoder), RECIPES[name]())
        r1, r32 = rates(model)
        with qkt.torch_matmul():
            o1, o32 = rates(model)
        print(
            f"| {name} | {r1:.1f} | {r1 / f1:.2f}x | {r32:.1f} | {r32 / f32:.2f}x | "
            f"{o1:.1f} / {o32:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
