"""Error reports for quantized models: per-layer summaries, sensitivity, plots.

Every summary is ``quantkit.error_report`` of a reference tensor and its
quantized counterpart: mean |diff|, max |diff|, SQNR (dB), PEIR (peak error over
the reference's range) and cosine similarity, computed in double.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import error_report
from ._batches import hooked, run_batches
from .converted import QuantizedLinear
from .prepared import QATLinear
from .recipes import Recipe
from .workflow import calibrate, prepare

COLUMNS = ("mean_abs_diff", "max_abs_diff", "sqnr_db", "peir", "cosine")
_LINEARS = (nn.Linear, QATLinear, QuantizedLinear)


@dataclass
class LayerError:
    name: str
    summary: dict[str, float]


def _canonical(name: str) -> str:
    """Layer names with SmoothQuant's wrapper removed, so float and quantized models match."""
    return name.removesuffix(".linear")


def _capture_outputs(model, batches, forward) -> dict[str, list[torch.Tensor]]:
    outputs: dict[str, list[torch.Tensor]] = {}
    handles = []

    def hook_for(key):
        def hook(_m, _args, out):
            outputs.setdefault(key, []).append(out.detach().float().flatten())

        return hook

    for name, module in model.named_modules():
        if isinstance(module, _LINEARS):
            handles.append(module.register_forward_hook(hook_for(_canonical(name))))
    with hooked(handles):
        run_batches(model, batches, forward)
    return outputs


def layer_errors(
    reference: nn.Module,
    quantized: nn.Module,
    batches: Iterable[Any],
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> list[LayerError]:
    """Each Linear layer's output in ``quantized`` against the same layer in ``reference``
    (both run end to end, so errors accumulate as they do in the model), in model order."""
    batches = list(batches)
    ref = _capture_outputs(reference, batches, forward)
    test = _capture_outputs(quantized, batches, forward)
    rows = []
    for name, tensors in ref.items():
        if name in test:
            summary = error_report(torch.cat(tensors), torch.cat(test[name]))
            rows.append(LayerError(name, summary))
    return rows


def errors_table(rows: list[LayerError]) -> str:
    """The rows of :func:`layer_errors` as a text table, worst SQNR first."""
    width = max([len("layer"), *(len(r.name) for r in rows)])
    lines = [
        f"{'layer':<{width}}  {'mean|diff|':>11} {'max|diff|':>11} {'SQNR dB':>8} "
        f"{'PEIR %':>7} {'cosine':>9}"
    ]
    for r in sorted(rows, key=lambda r: r.summary["sqnr_db"]):
        s = r.summary
        lines.append(
            f"{r.name:<{width}}  {s['mean_abs_diff']:>11.4e} {s['max_abs_diff']:>11.4e} "
            f"{s['sqnr_db']:>8.2f} {100 * s['peir']:>7.3f} {s['cosine']:>9.6f}"
        )
    return "\n".join(lines)


def sensitivity(
    model: nn.Module,
    recipe: Recipe,
    batches: Iterable[Any],
    score: Callable[[nn.Module], float],
    forward: Callable[[nn.Module, Any], Any] | None = None,
) -> list[tuple[str, float]]:
    """``score`` of the model with one Linear layer quantized at a time (the others in
    float), worst first: which layers the recipe hurts most."""
    batches = list(batches)
    names = [n for n, m in model.named_modules() if type(m) is nn.Linear]
    rows = []
    for name in names:
        m = copy.deepcopy(model)
        prepare(m, recipe, filter_fn=lambda _mod, n, keep=name: n == keep)
        if recipe.needs_calibration:
            calibrate(m, batches, forward)
        rows.append((name, score(m)))
    return sorted(rows, key=lambda row: row[1])


def terminal_bars(labels: list[str], values: list[float], width: int = 40, unit: str = "") -> str:
    """A horizontal bar chart in text (one line per label, bars scaled to the largest)."""
    top = max((v for v in values if v == v), default=0.0) or 1.0
    pad = max((len(label) for label in labels), default=0)
    lines = []
    for label, value in zip(labels, values, strict=True):
        n = 0 if value != value else max(0, round(width * value / top))
        lines.append(f"{label:{pad}s} {'█' * n}{' ' * (width - n)} {value:.2f}{unit}")
    return "\n".join(lines)


def _save_figure(fig, path: str | os.PathLike) -> None:
    """Writes a figure atomically (temp file + rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def plot_layer_sqnr(rows: list[LayerError], path: str | os.PathLike, title: str) -> None:
    """PNG bar chart of per-layer SQNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.22 * len(rows) + 1.2))
    ax.barh([r.name for r in rows][::-1], [r.summary["sqnr_db"] for r in rows][::-1])
    ax.set_xlabel("SQNR (dB), higher is better")
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=7)
    _save_figure(fig, path)
    plt.close(fig)


def plot_scatter(
    reference: torch.Tensor,
    quantized: torch.Tensor,
    path: str | os.PathLike,
    title: str,
    max_points: int = 20000,
) -> None:
    """PNG scatter of quantized against reference values (the diagonal is exact)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref, test = reference.flatten().float(), quantized.flatten().float()
    if ref.numel() > max_points:
        pick = torch.randperm(ref.numel(), generator=torch.Generator().manual_seed(0))
        ref, test = ref[pick[:max_points]], test[pick[:max_points]]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(ref.numpy(), test.numpy(), s=1, alpha=0.4)
    lo, hi = float(ref.min()), float(ref.max())
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=0.8)
    ax.set_xlabel("float32")
    ax.set_ylabel("quantized")
    ax.set_title(title)
    _save_figure(fig, path)
    plt.close(fig)


def terminal_scatter(
    reference: torch.Tensor, test: torch.Tensor, width: int = 44, height: int = 10
) -> str:
    """A text scatter plot of ``test`` against ``reference`` on shared axes; points on the
    diagonal are exact."""
    ref, out = reference.flatten().double(), test.flatten().double()
    lo = min(ref.min().item(), out.min().item())
    hi = max(ref.max().item(), out.max().item())
    span = (hi - lo) or 1.0
    grid = [[" "] * width for _ in range(height)]
    cols = ((ref - lo) / span * (width - 1)).round().long().tolist()
    rows = ((out - lo) / span * (height - 1)).round().long().tolist()
    for c, r in zip(cols, rows, strict=True):
        grid[height - 1 - r][c] = "•"
    lines = [f"{hi - span * i / (height - 1):7.2f} ┤{''.join(row)}│" for i, row in enumerate(grid)]
    lines.append(" " * 8 + "└" + "─" * width + "┘")
    lines.append(f"{'':8s}{lo:<10.2f}{'float reference':^{max(width - 20, 0)}s}{hi:>10.2f}")
    return "\n".join(lines)


def summary_box(summary: dict[str, float], title: str = "Quantization Error Summary") -> str:
    """The five error numbers in a small box."""
    return "\n".join(
        [
            f"┌── {title} ──",
            f"│ Mean |diff|: {summary['mean_abs_diff']:.6f}",
            f"│ Max |diff| : {summary['max_abs_diff']:.6f}",
            f"│ PEIR       : {100 * summary['peir']:.4f} %",
            f"│ SQNR       : {summary['sqnr_db']:.2f} dB",
            f"│ Cosine     : {summary['cosine']:.6f}",
            "└" + "─" * (len(title) + 6),
        ]
    )
