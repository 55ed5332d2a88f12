"""Runs an exported QDQ model in onnxruntime and compares it with quantkit, tensor by
tensor:

- each weight: ORT's ``DequantizeLinear`` output against quantkit's dequantized
  weight (expected identical: the codes are quantkit's and DQ is the same formula);
- each activation quantizer: ORT's codes against quantkit's codes *of the same
  float input* (ORT's ``QuantizeLinear`` input), so only the quantize rule is
  compared, not the float arithmetic before it; differences are counted in codes
  (LSB);
- each model output: ORT against the torch model (this also includes float
  summation-order differences of MatMul / Conv).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .onnx_export import ExportPlan, plan_export


@dataclass
class TensorParity:
    """How ORT and quantkit agree on one tensor."""

    name: str
    kind: str  # "weight" | "activation" | "output"
    elements: int
    identical: int
    max_abs_diff: float
    max_lsb_diff: int | None = None  # activations: codes apart
    lsb_diffs: int = 0  # activations: elements whose codes differ

    @property
    def identical_fraction(self) -> float:
        return self.identical / self.elements if self.elements else 1.0


def _ordinal(codes: np.ndarray) -> np.ndarray:
    """Codes as integers in value order (float8 bit patterns: sign-magnitude)."""
    if codes.dtype.kind in "iu":
        return codes.astype(np.int64)
    bits = codes.view(np.uint8).astype(np.int64)
    return np.where(bits & 0x80, -(bits & 0x7F), bits)


def _session(proto, extra_outputs: list[str]):
    import onnx
    import onnxruntime as ort

    augmented = onnx.ModelProto()
    augmented.CopyFrom(proto)
    known = {o.name for o in augmented.graph.output}
    for name in extra_outputs:
        if name not in known:
            augmented.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(
        augmented.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _activation_parity(e, inputs: list[np.ndarray], codes: list[np.ndarray]) -> TensorParity:
    import quantkit as qk

    from . import ops

    qp = ops._qparams(e.scale, e.zero_point, e.spec_key, e.compute_dtype)
    theirs = np.concatenate([_ordinal(c).ravel() for c in codes])
    ours = np.concatenate(
        [_ordinal(np.asarray(qk.quantize(torch.from_numpy(x), qp).codes())).ravel() for x in inputs]
    )
    diff = np.abs(theirs - ours)
    return TensorParity(
        e.name,
        "activation",
        diff.size,
        int((diff == 0).sum()),
        float("nan"),
        int(diff.max(initial=0)),
        int((diff != 0).sum()),
    )


def _float_parity(name: str, kind: str, theirs, ours) -> TensorParity:
    theirs, ours = np.asarray(theirs, np.float64), np.asarray(ours, np.float64)
    same = (theirs == ours) | (np.isnan(theirs) & np.isnan(ours))
    diff = np.abs(theirs - ours)
    return TensorParity(name, kind, same.size, int(same.sum()), float(diff.max(initial=0)))


@dataclass
class ParityReport:
    """:func:`onnx_parity`'s rows, and onnxruntime's model outputs for each batch."""

    rows: list[TensorParity]
    outputs: list[list[np.ndarray]]

    def table(self) -> str:
        return parity_table(self.rows)


def onnx_parity(
    model: nn.Module,
    proto,
    batches: Sequence[Sequence[torch.Tensor]],
    forward: Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor] | None = None,
) -> ParityReport:
    """Per-tensor agreement of the exported ``proto`` (run in onnxruntime's CPU provider,
    graph optimizations off) with ``model`` (the model that was exported) on ``batches``
    (each a tuple of the model's inputs)."""
    plan: ExportPlan = plan_export(model)
    q_inputs = {n.name: n.input[0] for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    acts = [e for e in plan.activations if f"{e.name}/QuantizeLinear" in q_inputs]
    extra = [x for e in acts for x in (q_inputs[f"{e.name}/QuantizeLinear"], f"{e.name}.codes")]
    extra += [f"{e.name}.dequantized" for e in plan.weights]
    session = _session(proto, extra)
    output_names = [o.name for o in session.get_outputs()]
    model_outputs = output_names[: len(proto.graph.output)]
    feeds_names = [i.name for i in session.get_inputs()]
    runs = []
    for batch in batches:
        feeds = {n: t.detach().numpy() for n, t in zip(feeds_names, batch, strict=True)}
        runs.append(dict(zip(output_names, session.run(None, feeds), strict=True)))
    rows = []
    for e in plan.weights:
        ours = e.value.reshape(e.shape).numpy()
        rows.append(_float_parity(e.name, "weight", runs[0][f"{e.name}.dequantized"], ours))
    for e in acts:
        q_in = q_inputs[f"{e.name}/QuantizeLinear"]
        rows.append(
            _activation_parity(e, [r[q_in] for r in runs], [r[f"{e.name}.codes"] for r in runs])
        )
    with torch.no_grad():
        ours = [forward(model, b) if forward else model(*b) for b in batches]
    ours = [o if isinstance(o, (tuple, list)) else (o,) for o in ours]
    for i, name in enumerate(model_outputs):
        theirs = np.concatenate([r[name].ravel() for r in runs])
        mine = np.concatenate([o[i].detach().numpy().ravel() for o in ours])
        rows.append(_float_parity(name, "output", theirs, mine))
    return ParityReport(rows, [[r[n] for n in model_outputs] for r in runs])


def parity_table(rows: list[TensorParity]) -> str:
    """A markdown table of :func:`onnx_parity` rows, one line per kind (worst row shown)."""
    lines = [
        "| tensors | count | elements | identical | differing codes | max diff |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in ("weight", "activation", "output"):
        group = [r for r in rows if r.kind == kind]
        if not group:
            continue
        elements = sum(r.elements for r in group)
        identical = sum(r.identical for r in group)
        if kind == "activation":
            worst = f"{max(r.max_lsb_diff or 0 for r in group)} LSB"
            differing = str(sum(r.lsb_diffs for r in group))
        else:
            worst = f"{max(r.max_abs_diff for r in group):.3g}"
            differing = "-"
        lines.append(
            f"| {kind}s | {len(group)} | {elements} | {100 * identical / elements:.7g} % "
            f"| {differing} | {worst} |"
        )
    return "\n".join(lines)
