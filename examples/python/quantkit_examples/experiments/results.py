"""Writes docs/results.md: the MiniLM PTQ table, a per-layer sensitivity table and
the digits PTQ/QAT table, with the machine they ran on."""

from __future__ import annotations

import os
import platform
import tempfile
import time

import torch

from ..demo import REPORT_VARIANT
from . import digits_qat, minilm_gptq, minilm_mixed, minilm_ptq, onnx_export


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _minilm_section(results, shared) -> list[str]:
    from quantkit.torch import report

    base = next(r.model_bytes for r in results if r.recipe == "float32")
    lines = [
        "## all-MiniLM-L6-v2: post-training quantization",
        "",
        f"{len(shared['texts'])} committed sentences "
        "(`examples/python/quantkit_examples/data/sentences.txt`); "
        "calibration (activation observers, SmoothQuant maxima, GPTQ Hessians) uses every "
        "third of them. Cosine: each sentence embedding against the float32 one. NN top-1: "
        "share of sentences whose nearest other sentence is unchanged. Size: parameters and "
        "buffers as stored (packed codes, scales, zero points; MX scales as E8M0 and NVFP4 "
        "scales as E4M3 bytes), and the 47 MB token-embedding table stays float32 except "
        "in the 'int8 embeddings' row, where every embedding table is int8 per row.",
        "",
        "| recipe | what | size MB | vs fp32 | mean cos | min cos | NN top-1 | time s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.recipe} | {r.model_bytes / 1e6:.2f} | {r.model_bytes / base:.1%} "
            f"| {r.mean_cosine:.5f} | {r.min_cosine:.5f} | {r.nn_agreement:.1%} | {r.seconds:.2f} |"
        )

    lines += _mixed_precision_section()
    lines += _gptq_section()
    chosen = next(r for r in results if r.label == REPORT_VARIANT)
    errors = report.layer_errors(
        shared["model"], chosen.model, shared["batches"][:2], lambda m, b: m(*b)
    )
    lines += [
        "",
        f"### Per-layer output error: {REPORT_VARIANT}",
        "",
        "Each Linear's output in the quantized model against the float model's (errors "
        "accumulate through the network, as they do in use).",
        "",
        "| layer | mean abs diff | max abs diff | SQNR dB | PEIR | cosine |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in errors:
        s = e.summary
        lines.append(
            f"| {e.name} | {s['mean_abs_diff']:.3e} | {s['max_abs_diff']:.3e} | "
            f"{s['sqnr_db']:.2f} | {100 * s['peir']:.2f}% | {s['cosine']:.5f} |"
        )
    return lines


def _mixed_precision_section() -> list[str]:
    rows, timings = minilm_mixed.run()
    sensitivity = rows[0].mix.sensitivity
    lines = [
        "",
        "### Mixed precision under a size budget",
        "",
        "`quantkit.torch.layer_sensitivity` scores every Linear layer under every candidate "
        f"({', '.join(minilm_mixed.CANDIDATES)}) from one forward and backward pass over the "
        f"calibration third ({timings['sensitivity']:.2f} s; one W8A8 calibration pass over "
        f"the same sentences takes {timings['calibration']:.2f} s): the predicted relative "
        "output error if that layer alone were quantized. `quantkit.torch.mixed_precision` "
        "then picks one candidate per layer for the least predicted error within the size of "
        "each uniform scheme below. Cosine and measured error (||e - e_fp32||^2 / ||e_fp32||^2 "
        "over the embeddings) are on the held-out two thirds, which neither step saw. Bits "
        "per weight: the Linear weights as stored (codes, float32 scales).",
        "",
        "| size of | bits/weight | uniform mean cos | uniform error (predicted) "
        "| mix bits/weight | mix mean cos | mix error (predicted) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        predicted = f"{r.uniform_predicted:.4f}" if r.uniform_predicted is not None else "-"
        lines.append(
            f"| {r.uniform} | {r.bits_per_weight:.3f} | {r.uniform_cosine:.5f} | "
            f"{r.uniform_error:.4f} ({predicted}) | {r.mix_bits_per_weight:.3f} | "
            f"{r.mix_cosine:.5f} | {r.mix_error:.4f} ({r.mix_predicted:.4f}) |"
        )
    chosen = rows[1].mix
    counts = {}
    for option in chosen.choices.values():
        counts[option.scheme] = counts.get(option.scheme, 0) + 1
    lines += [
        "",
        f"The mix at the size of {rows[1].uniform}: "
        + ", ".join(f"{n} x {scheme}" for scheme, n in sorted(counts.items()))
        + " (its recipe file: `mix.recipe.save(path)`, applied by `quantkit quantize --recipe`).",
        "",
        "The ten most sensitive layers (predicted relative output error per candidate):",
        "",
        "```",
        sensitivity.table(top=10),
        "```",
    ]
    return lines


def _gptq_section() -> list[str]:
    rows, calibration, held_out = minilm_gptq.run()
    lines = [
        "",
        f"### GPTQ with {calibration} calibration sentences",
        "",
        f"W4A16 g128 (asymmetric unless noted), calibrated on {calibration} sentences (every "
        f"tenth), mean / min cosine on the other {held_out}. With so few tokens the 1536-wide "
        "down projections' Hessians are rank-deficient, and more damping pays.",
        "",
        "| setting | mean cos | min cos |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {s.label} | {mean:.5f} | {low:.5f} |" for s, mean, low in rows]
    return lines


def _digits_section(results) -> list[str]:
    base = next(r.accuracy for r in results if r.recipe == "float32")
    lines = [
        "## digits (scikit-learn): a small CNN, PTQ and QAT",
        "",
        "Conv(1→16) → Conv(16→32) → pool → Linear(512→64) → Linear(64→10), trained "
        f"{digits_qat.EPOCHS} epochs on 1437 images; test set 360 images (one image = 0.28 "
        f"points). QAT fine-tunes the float model {digits_qat.QAT_EPOCHS} epochs with fake "
        "quantization, then converts.",
        "",
        "| variant | what | test accuracy | vs fp32 (points) | time s |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.recipe} | {100 * r.accuracy:.2f}% | "
            f"{100 * (r.accuracy - base):+.2f} | {r.seconds:.1f} |"
        )
    return lines


def _layernorm_section() -> list[str]:
    from quantkit import error_report
    from quantkit.torch import calibrate, report
    from quantkit.torch.layernorm import QuantLayerNorm

    torch.manual_seed(0)
    ln = torch.nn.LayerNorm(64)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.normal_(0, 0.1)
    g = torch.Generator().manual_seed(0)
    data = [torch.randn(64, 64, generator=g) * 2 + 0.5 for _ in range(9)]
    q = calibrate(QuantLayerNorm(ln), data[:8])
    with torch.no_grad():
        ref, out = ln(data[8]), q(data[8])
    return [
        "## QuantLayerNorm: 8-bit intermediates",
        "",
        "Input, mean, centered input, its square, variance, rsqrt, normalized and affine "
        "output each through a calibrated uint8 min/max observer and fake quantizer "
        "(zero points integer, so every range includes 0). Random N(0.5, 2) inputs, "
        "LayerNorm(64), 8 calibration batches, a ninth to measure:",
        "",
        "```",
        report.summary_box(error_report(ref, out)),
        report.terminal_scatter(ref, out),
        "```",
    ]


def render() -> str:
    start = time.perf_counter()
    minilm_results, shared = minilm_ptq.run()
    digits_results = digits_qat.run()
    with tempfile.TemporaryDirectory() as folder:
        exports = onnx_export.section(
            onnx_export.minilm_exports(minilm_results, shared, folder),
            onnx_export.digits_exports(digits_results, folder),
        )
    lines = [
        "# Results",
        "",
        "Produced by `python -m quantkit results` (this file, rewritten). Machine: "
        f"{_cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}.",
        "",
        *_minilm_section(minilm_results, shared),
        "",
        *_digits_section(digits_results),
        "",
        *_layernorm_section(),
        "",
        *exports,
        "",
        f"Total run time: {time.perf_counter() - start:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def write_results(path: str | os.PathLike) -> int:
    """Runs the experiments and writes the Markdown atomically (temp file + rename)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    text = render()
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".md", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"wrote {path}")
    return 0
