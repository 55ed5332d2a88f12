"""The real models exported as ONNX QDQ and run in onnxruntime against quantkit.

MiniLM: a calibrated W8A8 model (SmoothQuant) and weight-only int4 / MXFP4, each
compared tensor by tensor (:func:`quantkit.torch.onnx_parity`) and by the cosine
of onnxruntime's sentence embeddings to quantkit's and to float32's. digits: the
QAT int4 CNN and the static W8A8 CNN, by test accuracy in onnxruntime.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from quantkit.torch.onnx_export import export_onnx
from quantkit.torch.onnxruntime_parity import ParityReport, onnx_parity

MINILM_EXPORTS = ("W8A8 + SmoothQuant a=0.8", "W4A16 g128 + GPTQ", "MXFP4")
DIGITS_EXPORTS = ("PTQ W8A8 (static)", "QAT int4 per-channel")
_MINILM_INPUTS = ("ids", "attention_mask", "type_ids")


@dataclass
class ExportResult:
    label: str
    file_bytes: int
    seconds: float
    parity: ParityReport
    measures: dict[str, float]  # what the exported model computes, against references


def _export(model, example, path, names, batched_axes) -> tuple[object, float]:
    start = time.perf_counter()
    dynamic = tuple(dict(batched_axes) for _ in names)
    proto = export_onnx(model, example, path, input_names=list(names), dynamic_shapes=dynamic)
    return proto, time.perf_counter() - start


def _cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1))


def minilm_exports(
    results, shared, folder: str, labels: tuple[str, ...] = MINILM_EXPORTS
) -> list[ExportResult]:
    """Exports the MiniLM variants named ``labels`` (results of ``minilm_ptq.run``)."""
    out = []
    by_label = {r.label: r for r in results}
    for label in labels:
        result = by_label[label]
        path = os.path.join(folder, f"minilm-{len(out)}.onnx")
        axes = {0: "batch", 1: "tokens"}
        proto, seconds = _export(
            result.model, shared["batches"][0], path, _MINILM_INPUTS, axes.items()
        )
        parity = onnx_parity(result.model, proto, shared["batches"])
        ort_embeddings = torch.from_numpy(np.concatenate([o[0] for o in parity.outputs]))
        to_quantkit = _cosines(ort_embeddings, result.embeddings)
        measures = {
            "mean cos to quantkit": to_quantkit.mean().item(),
            "min cos to quantkit": to_quantkit.min().item(),
            "mean cos to fp32": _cosines(ort_embeddings, shared["reference"]).mean().item(),
        }
        out.append(ExportResult(label, os.path.getsize(path), seconds, parity, measures))
    return out


def digits_exports(
    results, folder: str, labels: tuple[str, ...] = DIGITS_EXPORTS
) -> list[ExportResult]:
    """Exports the digits variants named ``labels`` (results of ``digits_qat.run``)."""
    from . import digits_qat

    _, _, test_x, test_y = digits_qat.load_data()
    out = []
    for r in [r for r in results if r.label in labels]:
        path = os.path.join(folder, f"digits-{len(out)}.onnx")
        proto, seconds = _export(r.model, (test_x[:8],), path, ("images",), [(0, "batch")])
        parity = onnx_parity(r.model, proto, [(test_x,)])
        predicted = torch.from_numpy(parity.outputs[0][0]).argmax(dim=1)
        measures = {
            "onnxruntime accuracy": (predicted == test_y).float().mean().item(),
            "quantkit accuracy": r.accuracy,
        }
        out.append(ExportResult(r.label, os.path.getsize(path), seconds, parity, measures))
    return out


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def section(minilm: list[ExportResult], digits: list[ExportResult]) -> list[str]:
    """The results.md section for the exports."""
    lines = [
        "## ONNX QDQ export, run in onnxruntime",
        "",
        "`quantkit.torch.export_onnx` (opset 23): weights as code initializers + "
        "DequantizeLinear, calibrated activations as QuantizeLinear → DequantizeLinear with "
        "constant scales; checked by `onnx.checker`; run on onnxruntime's CPU provider with "
        "graph optimizations off. Per tensor: weights are ORT's DequantizeLinear output "
        "against quantkit's dequantized weight; activations are ORT's codes against "
        "quantkit's codes of the same float input (ORT's QuantizeLinear input), in LSB; "
        "outputs are ORT's model output against the PyTorch model's.",
        "",
    ]
    for r in [*minilm, *digits]:
        measured = ", ".join(f"{k} {v:.6f}" for k, v in r.measures.items())
        lines += [
            f"### {r.label}",
            "",
            f"{_size(r.file_bytes)}, exported in {r.seconds:.1f} s; {measured}.",
            "",
            r.parity.table(),
            "",
        ]
    lines += [
        "Why activation codes can differ by one LSB: ONNX QuantizeLinear rounds "
        "`x / scale`; quantkit, like torch's fake_quantize and torchao, rounds "
        "`x * (1 / scale)` with the reciprocal rounded to float32. The two quotients are "
        "at most one float ulp apart, so they round to different integers only when the "
        "quotient lies within an ulp of a .5 boundary. The tests compute both rules in "
        "numpy and check that onnxruntime follows the first, quantkit the second, and "
        "that every differing code is such a case. Output differences also include float "
        "summation order in MatMul / Gemm / Conv; a 1-LSB activation step moves the "
        "outputs after it by one scale step.",
    ]
    return lines
