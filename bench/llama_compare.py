"""quantkit's checkpoint tool beside llama.cpp's `llama-quantize`, on the same weights.

Two parts:

- `minilm`: the real all-MiniLM-L6-v2 weights. llama.cpp reads them after its own
  `convert_hf_to_gguf.py --outtype f32`. Per-tensor SQNR over the 36 encoder Linear
  weights (the same tensors on both sides, matched through gguf's name map), bits per
  weight as stored, and the sentence-embedding cosine against the float model on 190
  held-out sentences with only those Linear weights replaced (embeddings stay float on
  both sides, so the comparison is of the quantizers).
- `llama`: a TinyLlama-shaped checkpoint (hidden 2048, 22 layers, seeded Gaussian
  weights, std 0.02) written twice from the same float16 tensors: as safetensors
  (Hugging Face names) for quantkit and as GGUF (llama names) for llama-quantize.
  Wall time and peak RSS of each whole-file run (2 threads each), and the mean SQNR
  over the Linear weights of every fifth block.

llama.cpp is not fetched: build `llama-quantize` from the sources of the PyPI
`llama-cpp-python` sdist in a scratch folder and pass its folders:

    python3 bench/llama_compare.py --llama-src SRC/vendor/llama.cpp --llama-bin BUILD/bin
"""

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile

import gguf
import numpy as np
import torch
from gguf.quants import dequantize
from quantkit import _core
from quantkit.__main__ import native_tool
from quantkit_examples.models import minilm
from safetensors.torch import load_file, save_file

LLAMA_TYPES = ["Q4_0", "Q4_K_M", "Q5_0", "Q5_K_M", "Q8_0"]
QUANTKIT_SCHEMES = [
    "int4-g32",
    "int4-g32-signed",
    "int4-g32-signed:search=mse",
    "int4-g32-asym:search=mse",
    "int4-g128-asym:search=mse",
    "int5-g32-signed",
    "int5-g32-signed:search=mse",
    "q4-mix",
    "int8",
    "int8-g32",
    "int8-g32-signed",
]


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run, from GNU time."""
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True, check=True
    )
    seconds, kbytes = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kbytes) / 1024


def sqnr(reference: np.ndarray, approx: np.ndarray) -> float:
    reference = reference.astype(np.float64)
    noise = np.square(reference - approx.astype(np.float64)).sum()
    return float(10 * np.log10(np.square(reference).sum() / noise))


def gguf_tensors(path: pathlib.Path, names: set[str]) -> dict[str, tuple[np.ndarray, int]]:
    """name -> (dequantized float32 values, bytes stored) for the named tensors."""
    out = {}
    for t in gguf.GGUFReader(str(path)).tensors:
        if t.name in names:
            values = dequantize(t.data, t.tensor_type).astype(np.float32)
            out[t.name] = (values.reshape(values.shape[0], -1), int(t.n_bytes))
    return out


def quantkit_tensors(path: pathlib.Path) -> dict[str, tuple[np.ndarray, int]]:
    """name -> (dequantized float32 values, bytes stored: codes, scales, zero points)."""
    stored = load_file(str(path))
    out = {}
    for name, value, *_ in _core.load_compressed_tensors(str(path), "float32"):
        if isinstance(value, _core.QuantizedTensor):
            prefix = name.removesuffix("weight")
            parts = [
                v
                for k, v in stored.items()
                if k.startswith(prefix + "weight") and not k.endswith("_shape")
            ]
            size = sum(p.numel() * p.element_size() for p in parts)
            out[name] = (torch.from_dlpack(_core.dequantize(value, "float32")).numpy(), size)
    return out


def summary(pairs: list[tuple[np.ndarray, np.ndarray, int]], scale_bits_fix: float = 0) -> str:
    ratios = [sqnr(ref, approx) for ref, approx, _ in pairs]
    weights = sum(ref.size for ref, _, _ in pairs)
    bits = 8 * sum(size for _, _, size in pairs) / weights - scale_bits_fix
    return f"{bits:.3f} | {np.mean(ratios):.2f} | {np.min(ratios):.2f}"


def run_quantkit(source: pathlib.Path, out: pathlib.Path, scheme: str) -> tuple[float, float]:
    out.unlink(missing_ok=True)
    return timed(
        [str(native_tool()), "quantize", str(source), "-o", str(out), "-s", scheme, "-q", "-t", "2"]
    )


def run_llama(bin_dir: pathlib.Path, source: pathlib.Path, out: pathlib.Path, kind: str):
    out.unlink(missing_ok=True)
    return timed([str(bin_dir / "llama-quantize"), str(source), str(out), kind, "2"])


def scale_bits_at_16(scheme: str) -> float:
    """MiniLM is float32, so quantkit stores 32-bit scales (and zero points as int32
    where unpacked); llama.cpp's blocks hold fp16 scales. The table reports both at
    16-bit scales: this is the number of bits per weight to take off."""
    match = re.search(r"-g(\d+)", scheme)
    return 16 / int(match.group(1)) if match else 0.0


def minilm_part(args, work: pathlib.Path) -> None:
    source = minilm.model_dir() / "model.safetensors"
    original = {k: v.float().numpy() for k, v in load_file(str(source)).items()}
    linear = [k for k in original if k.startswith("encoder.") and k.endswith("dense.weight")]
    linear += [k for k in original if re.search(r"attention\.self\.(query|key|value)\.weight", k)]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, 6)
    to_gguf = {k: names.get_name(k, try_suffixes=(".weight", ".bias")) for k in linear}
    model = minilm.load_model()
    tokenizer = minilm.Tokenizer()
    held_out = minilm.batches(minilm.sentences()[20:], tokenizer)
    reference = minilm.embed(model, held_out)

    def cosine(weights: dict[str, np.ndarray]) -> str:
        quantized = minilm.load_model()
        state = quantized.state_dict()
        for name, w in weights.items():
            state[name].copy_(torch.from_numpy(w))
        cos = torch.nn.functional.cosine_similarity(minilm.embed(quantized, held_out), reference)
        return f"{cos.mean():.5f} | {cos.min():.5f}"

    f32 = work / "minilm-f32.gguf"
    subprocess.run(
        [
            sys.executable,
            str(args.llama_src / "convert_hf_to_gguf.py"),
            str(minilm.model_dir()),
            "--outtype",
            "f32",
            "--outfile",
            str(f32),
        ],
        check=True,
        capture_output=True,
    )
    print(f"\nMiniLM ({len(linear)} encoder Linear weights; bits per weight at 16-bit scales)\n")
    print("| tool | scheme | bits/weight | mean SQNR dB | min SQNR dB | mean cos | min cos |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in LLAMA_TYPES:
        out = work / f"minilm-{kind}.gguf"
        run_llama(args.llama_bin, f32, out, kind)
        got = gguf_tensors(out, set(to_gguf.values()))
        pairs = [(original[k], got[to_gguf[k]][0], got[to_gguf[k]][1]) for k in linear]
        weights = {k: got[to_gguf[k]][0] for k in linear}
        print(f"| llama.cpp | {kind} | {summary(pairs)} | {cosine(weights)} |", flush=True)
    for scheme in QUANTKIT_SCHEMES:
        out = work / "minilm-q.safetensors"
        run_quantkit(source, out, scheme)
        got = quantkit_tensors(out)
        pairs = [(original[k], got[k][0], got[k][1]) for k in linear]
        fix = scale_bits_at_16(scheme) if scheme.startswith("int") else 0.0
        weights = {k: got[k][0] for k in linear}
        print(f"| quantkit | {scheme} | {summary(pairs, fix)} | {cosine(weights)} |", flush=True)


def llama_part(args, work: pathlib.Path) -> None:
    hidden, ffn, layers, vocab, heads, kv_heads = 2048, 5632, args.layers, 32000, 32, 4
    generator = torch.Generator().manual_seed(0)

    def gaussian(*shape):
        return (torch.randn(*shape, generator=generator) * 0.02).to(torch.float16)

    tensors = {"model.embed_tokens.weight": gaussian(vocab, hidden)}
    head = hidden // heads
    for i in range(layers):
        p = f"model.layers.{i}."
        tensors[p + "input_layernorm.weight"] = torch.ones(hidden, dtype=torch.float16)
        tensors[p + "post_attention_layernorm.weight"] = torch.ones(hidden, dtype=torch.float16)
        tensors[p + "self_attn.q_proj.weight"] = gaussian(hidden, hidden)
        tensors[p + "self_attn.k_proj.weight"] = gaussian(kv_heads * head, hidden)
        tensors[p + "self_attn.v_proj.weight"] = gaussian(kv_heads * head, hidden)
        tensors[p + "self_attn.o_proj.weight"] = gaussian(hidden, hidden)
        tensors[p + "mlp.gate_proj.weight"] = gaussian(ffn, hidden)
        tensors[p + "mlp.up_proj.weight"] = gaussian(ffn, hidden)
        tensors[p + "mlp.down_proj.weight"] = gaussian(hidden, ffn)
    tensors["model.norm.weight"] = torch.ones(hidden, dtype=torch.float16)
    tensors["lm_head.weight"] = gaussian(vocab, hidden)
    source = work / "llama-f16.safetensors"
    save_file(tensors, str(source))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, layers)
    to_gguf = {k: names.get_name(k, try_suffixes=(".weight",)) for k in tensors}
    writer = gguf.GGUFWriter(str(work / "llama-f16.gguf"), "llama")
    writer.add_context_length(2048)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for name, value in tensors.items():
        writer.add_tensor(to_gguf[name], value.numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    # SQNR over every fifth layer's seven projections (dequantizing all 1.1B weights in
    # numpy would take minutes per row); the runs themselves quantize the whole file.
    sampled = tuple(f"model.layers.{i}." for i in range(0, layers, 5))
    linear = [k for k in tensors if k.startswith(sampled) and k.endswith("proj.weight")]
    size_gb = source.stat().st_size / 1e9
    print(f"\nTinyLlama-shaped, {layers} layers, {size_gb:.2f} GB float16, 2 threads each\n")
    print("| tool | scheme | seconds | peak RSS MB | bits/weight | mean SQNR dB | min SQNR dB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    original = {k: tensors[k].float().numpy() for k in linear}
    for kind in LLAMA_TYPES:
        out = work / "llama-q.gguf"
        seconds, rss = run_llama(args.llama_bin, work / "llama-f16.gguf", out, kind)
        got = gguf_tensors(out, {to_gguf[k] for k in linear})
        pairs = [(original[k], got[to_gguf[k]][0], got[to_gguf[k]][1]) for k in linear]
        print(f"| llama.cpp | {kind} | {seconds:.2f} | {rss:.0f} | {summary(pairs)} |", flush=True)
    for scheme in QUANTKIT_SCHEMES:
        out = work / "llama-q.safetensors"
        seconds, rss = run_quantkit(source, out, scheme)
        got = quantkit_tensors(out)
        pairs = [(original[k], got[k][0], got[k][1]) for k in linear]
        print(f"| quantkit | {scheme} | {seconds:.2f} | {rss:.0f} | {summary(pairs)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-src", type=pathlib.Path, required=True)
    parser.add_argument("--llama-bin", type=pathlib.Path, required=True)
    parser.add_argument("--parts", default="minilm,llama")
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--work", type=pathlib.Path, default=None)
    args = parser.parse_args()
    work = args.work or pathlib.Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    if "minilm" in args.parts:
        minilm_part(args, work)
    if "llama" in args.parts:
        llama_part(args, work)


if __name__ == "__main__":
    main()
