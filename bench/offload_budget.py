"""A Llama checkpoint larger than a memory budget, quantized block by block under it
(`quantkit.torch.offload.quantize_checkpoint`): writes a bfloat16 checkpoint of
seeded Gaussian weights shard by shard (never holding the model), then quantizes it
with round-to-nearest and with GPTQ in a fresh process each, and reports the
checkpoint size, the budget, the estimate printed before the run, the measured peak
RSS and the time.

    python3 bench/offload_budget.py [--layers 64] [--max-memory 2GiB]
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

RUN = """
import json, sys, torch
import quantkit.torch as qkt
from quantkit.torch.offload import quantize_checkpoint
source, output, budget, method = sys.argv[1:5]
g = torch.Generator().manual_seed(1)
batches = [torch.randint(0, 32000, (4, 512), generator=g) for _ in range(4)]
algorithms = [qkt.GPTQ()] if method == "gptq" else []
report = quantize_checkpoint(source, output, qkt.recipes.W4A16(128), batches,
                             algorithms=algorithms, max_memory=budget, replace=True)
print(json.dumps({"seconds": report.seconds, "peak": report.peak_rss_bytes,
                  "estimate": report.estimate_bytes, "budget": report.budget_bytes,
                  "gptq": len(report.gptq), "shards": report.shards}))
"""


def write_checkpoint(folder: pathlib.Path, layers: int) -> int:
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    hidden, ffn, heads, kv_heads, vocab = 2048, 5632, 32, 4, 32000
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        dtype="bfloat16",
    )
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(folder)
    generator = torch.Generator().manual_seed(0)

    def gaussian(*shape):
        return (torch.randn(*shape, generator=generator) * 0.02).to(torch.bfloat16)

    kv = kv_heads * hidden // heads
    shards = [{"model.embed_tokens.weight": gaussian(vocab, hidden)}]
    for i in range(layers):
        p = f"model.layers.{i}."
        shards.append(
            {
                p + "input_layernorm.weight": torch.ones(hidden, dtype=torch.bfloat16),
                p + "post_attention_layernorm.weight": torch.ones(hidden, dtype=torch.bfloat16),
                p + "self_attn.q_proj.weight": gaussian(hidden, hidden),
                p + "self_attn.k_proj.weight": gaussian(kv, hidden),
                p + "self_attn.v_proj.weight": gaussian(kv, hidden),
                p + "self_attn.o_proj.weight": gaussian(hidden, hidden),
                p + "mlp.gate_proj.weight": gaussian(ffn, hidden),
                p + "mlp.up_proj.weight": gaussian(ffn, hidden),
                p + "mlp.down_proj.weight": gaussian(hidden, ffn),
            }
        )
    shards.append(
        {
            "model.norm.weight": torch.ones(hidden, dtype=torch.bfloat16),
            "lm_head.weight": gaussian(vocab, hidden),
        }
    )
    weight_map, total = {}, 0
    for k, tensors in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(tensors, str(folder / name))
        weight_map |= dict.fromkeys(tensors, name)
        total += sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=64)
    parser.add_argument("--max-memory", default="2GiB")
    parser.add_argument("--methods", default="rtn,gptq")
    parser.add_argument("--work", type=pathlib.Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="keep a checkpoint already in --work")
    args = parser.parse_args()
    work = args.work or pathlib.Path(tempfile.mkdtemp())
    index = work / "float" / "model.safetensors.index.json"
    if args.reuse and index.exists():
        size = json.loads(index.read_text())["metadata"]["total_size"]
    else:
        size = write_checkpoint(work / "float", args.layers)
    gib = size / 2**30
    print(f"checkpoint: {args.layers} layers, {gib:.2f} GiB bfloat16; budget {args.max_memory}\n")
    print("| method | seconds | estimated peak GiB | measured peak RSS GiB | budget GiB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for method in args.methods.split(","):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                RUN,
                str(work / "float"),
                str(work / "q"),
                args.max_memory,
                method,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"| {method} | {r['seconds']:.1f} | {r['estimate'] / 2**30:.2f} | "
            f"{r['peak'] / 2**30:.2f} | {r['budget'] / 2**30:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
