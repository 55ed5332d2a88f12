"""ONNX export of quantized models in QDQ form, and its parity check in onnxruntime.

:func:`export_onnx` takes a prepared model whose quantizers have constant qparams
(calibrated or frozen) or a converted one, and writes an ONNX model in which

- every weight is an initializer of codes followed by ``DequantizeLinear``
  (per-channel on the output axis, blocked quantization for per-group), the
  codes being exactly quantkit's;
- every activation quantizer is ``QuantizeLinear`` → ``DequantizeLinear`` with
  constant scale and zero point.

The model is traced with ``torch.onnx.export(dynamo=True)``; each quantizer is
swapped for a marker op whose translation emits its QDQ nodes, so the rest of
the model goes through PyTorch's own exporter. The file is checked with
``onnx.checker`` and written atomically.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import ops
from ._spec import args_from_key, spec_from_key
from .converted import QuantizedWeight
from .fake_quantize import FakeQuantize
from .onnx_qdq import NotExportable, QDQForm, qdq_form
from .prepared import PREPARED_TYPES
from .workflow import _replace, convert

DEFAULT_OPSET = 23  # blocked QDQ needs 21; float4e2m1 needs 23


@dataclass
class _Activation:
    name: str
    form: QDQForm
    spec_key: str
    scale: torch.Tensor
    zero_point: torch.Tensor
    compute_dtype: str


@dataclass
class _Weight:
    name: str
    form: QDQForm
    value: torch.Tensor  # the dequantized weight, for eager calls and the fake shape
    shape: tuple[int, ...]  # of the codes; the weight is reshaped to value.shape after DQ


_ENTRIES: list = []  # the model being exported; markers refer to entries by index


@torch.library.custom_op("quantkit::onnx_qdq_marker", mutates_args=())
def _qdq_marker(x: torch.Tensor, entry: int) -> torch.Tensor:
    e = _ENTRIES[entry]
    return ops.fake_quantize(x, e.scale, e.zero_point, e.spec_key, e.compute_dtype)


@_qdq_marker.register_fake
def _(x, entry):
    return torch.empty_like(x)


@torch.library.custom_op("quantkit::onnx_weight_marker", mutates_args=())
def _weight_marker(anchor: torch.Tensor, entry: int) -> torch.Tensor:
    return _ENTRIES[entry].value.clone()


@_weight_marker.register_fake
def _(anchor, entry):
    return anchor.new_empty(_ENTRIES[entry].value.shape)


class _QDQ(nn.Module):
    def __init__(self, entry: int) -> None:
        super().__init__()
        self.entry = entry

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _qdq_marker(x, self.entry)


class _DequantizedWeight(nn.Module):
    def __init__(self, entry: int) -> None:
        super().__init__()
        self.entry = entry
        self.register_buffer("anchor", torch.zeros(0), persistent=False)

    def forward(self) -> torch.Tensor:
        return _weight_marker(self.anchor, self.entry)


# --- translation into ONNX nodes --------------------------------------------------------------


def _constant(op, ir, array: np.ndarray, name: str):
    value = op.Constant(value=ir.tensor(np.asarray(array), name=name))
    value.name = name
    return value


def _translate_qdq(x, entry: int):
    from onnxscript import ir
    from onnxscript import opset23 as op

    e: _Activation = _ENTRIES[entry]
    f = e.form
    scale = _constant(op, ir, f.scale, f"{e.name}.scale")
    zero_point = _constant(op, ir, f.zero_point, f"{e.name}.zero_point")
    q = op.QuantizeLinear(x, scale, zero_point, **f.attributes)
    q.producer().name = f"{e.name}/QuantizeLinear"
    q.name = f"{e.name}.codes"
    if f.clip is not None:
        lo = _constant(op, ir, f.clip[0], f"{e.name}.min")
        hi = _constant(op, ir, f.clip[1], f"{e.name}.max")
        q = op.Clip(q, lo, hi)
        q.name = f"{e.name}.clipped"
    return op.DequantizeLinear(q, scale, zero_point, **f.attributes)


def _translate_weight(anchor, entry: int):
    from onnxscript import ir
    from onnxscript import opset23 as op

    e: _Weight = _ENTRIES[entry]
    f = e.form
    inputs = [
        _constant(op, ir, f.codes, f"{e.name}.codes"),
        _constant(op, ir, f.scale, f"{e.name}.scale"),
    ]
    if np.any(f.zero_point.astype(np.float64)):
        inputs.append(_constant(op, ir, f.zero_point, f"{e.name}.zero_point"))
    w = op.DequantizeLinear(*inputs, **f.attributes)  # named by _name_dequantize_nodes
    if tuple(e.shape) == tuple(e.value.shape):
        return w
    shape = _constant(op, ir, np.asarray(e.value.shape, np.int64), f"{e.name}.shape")
    return op.Reshape(w, shape)


_TRANSLATIONS = {
    torch.ops.quantkit.onnx_qdq_marker.default: _translate_qdq,
    torch.ops.quantkit.onnx_weight_marker.default: _translate_weight,
}


# --- model preparation ------------------------------------------------------------------------


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _activation_entry(name: str, fq: FakeQuantize) -> _Activation:
    args = args_from_key(fq.spec_key)
    if not fq.frozen:
        how = "is not calibrated" if fq.static else "chooses its qparams at every call"
        raise NotExportable(
            f"quantizer '{name}' ({args.describe()}) {how}; QDQ export needs constant "
            "scales: calibrate a static recipe, or freeze() the quantizer"
        )
    if args.global_scale:
        raise NotExportable(
            f"quantizer '{name}' ({args.describe()}) has a two-level scale; QDQ export "
            "writes two-level (NVFP4) scales for weights only"
        )
    spec = spec_from_key(fq.spec_key)
    scale, zero_point, compute = fq.constant_qparams()
    form = qdq_form(
        args,
        spec.quant_min,
        spec.quant_max,
        _numpy(scale),
        _numpy(zero_point),
        shape=tuple(scale.shape),
    )
    return _Activation(name, form, fq.spec_key, scale, zero_point, compute)


def _weight_entry(name: str, qw: QuantizedWeight, native_fp4: bool) -> _Weight:
    import quantkit as qk

    qp = ops._qparams(qw.float_scale, qw.zero_point, qw.spec_key, qw.compute_dtype, qw.global_scale)
    codes = torch.from_dlpack(qk.QuantizedTensor.from_packed(qw.shape, qw.packed, qp).codes())
    # A two-level weight dequantizes with the effective scale g * b, each a float32
    # product, which is what DequantizeLinear's scale input then holds.
    scale = qw.float_scale if qw.global_scale is None else qw.float_scale * qw.global_scale
    args = args_from_key(qw.spec_key)
    spec = spec_from_key(qw.spec_key)
    # per-tensor / per-output-channel codes keep the weight's shape (DQ on axis 0);
    # other grids live on the [out, -1] matrix, reshaped after DQ
    whole = args.granularity in (("per_tensor",), ("per_axis", 0))
    shape = tuple(qw.full_shape) if whole else tuple(qw.shape)
    form = qdq_form(
        args,
        spec.quant_min,
        spec.quant_max,
        _numpy(scale),
        _numpy(qw.zero_point),
        shape,
        codes=_numpy(codes).reshape(shape),
        native_fp4=native_fp4,
    )
    return _Weight(name, form, qw().detach(), shape)


def _check_float32(model: nn.Module) -> None:
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        # 1-byte floats are stored scales (E8M0, E4M3), widened exactly on use
        if t.is_floating_point() and t.dtype != torch.float32 and t.element_size() > 1:
            raise NotExportable(
                f"tensor '{name}' is {t.dtype}; export the float32 model (ONNX runtimes "
                "compute QDQ in float32)"
            )


@dataclass
class ExportPlan:
    """The model with markers in place of its quantizers, and what each marker writes."""

    model: nn.Module
    entries: list = field(default_factory=list)

    @property
    def activations(self) -> list[_Activation]:
        return [e for e in self.entries if isinstance(e, _Activation)]

    @property
    def weights(self) -> list[_Weight]:
        return [e for e in self.entries if isinstance(e, _Weight)]


def plan_export(model: nn.Module, native_fp4: bool = False) -> ExportPlan:
    """A converted copy of ``model`` with every quantizer swapped for its export marker.
    Raises :class:`NotExportable` naming the first quantizer without a QDQ form."""
    exported = copy.deepcopy(model).eval()
    if any(isinstance(m, PREPARED_TYPES) for m in exported.modules()):
        convert(exported)
    _check_float32(exported)
    plan = ExportPlan(exported)
    for name, module in list(exported.named_modules()):
        if isinstance(module, FakeQuantize):
            if not module.enabled:
                _replace(exported, name, nn.Identity())
                continue
            entry = _activation_entry(name, module)
            marker: nn.Module = _QDQ(len(plan.entries))
        elif isinstance(module, QuantizedWeight):
            try:
                entry = _weight_entry(name, module, native_fp4)
            except NotExportable as e:
                raise NotExportable(f"weight '{name}': {e}") from None
            marker = _DequantizedWeight(len(plan.entries))
        else:
            continue
        plan.entries.append(entry)
        _replace(exported, name, marker)
    return plan


def _name_dequantize_nodes(proto, plan: ExportPlan) -> None:
    """Names each quantizer's DequantizeLinear node ``<module>/DequantizeLinear`` and its
    output ``<module>.dequantized`` (the exporter names them after the marker op)."""
    owners = {f"{e.name}.{v}": e.name for e in plan.entries for v in ("codes", "clipped")}
    graph_outputs = {o.name for o in proto.graph.output}
    renamed = {}
    for node in proto.graph.node:
        owner = owners.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if owner is None:
            continue
        node.name = f"{owner}/DequantizeLinear"
        if node.output[0] not in graph_outputs:
            renamed[node.output[0]] = f"{owner}.dequantized"
            node.output[0] = renamed[node.output[0]]
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]


def _atomic_save(proto, path: str | os.PathLike) -> None:
    import onnx

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".onnx-", dir=directory)
    os.close(fd)
    try:
        onnx.save_model(proto, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; a saved model is a normal file
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def export_onnx(
    model: nn.Module,
    example_inputs: Sequence[torch.Tensor],
    path: str | os.PathLike | None = None,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_shapes=None,
    native_fp4: bool = False,
    opset: int = DEFAULT_OPSET,
):
    """Exports ``model`` (prepared with constant qparams, or converted; float32) as an
    ONNX QDQ model, checked by ``onnx.checker``; writes it to ``path`` atomically if
    given and returns the ``onnx.ModelProto``.

    ``dynamic_shapes`` is passed to ``torch.onnx.export``; ``native_fp4`` writes FP4
    weights as ONNX ``float4e2m1`` (opset 23; onnxruntime's CPU provider has no
    kernel for it) instead of exact int8 multiples.
    """
    import onnx

    if opset < 21:
        raise ValueError(f"opset={opset}: blocked QDQ and int4 codes need opset >= 21")
    plan = plan_export(model, native_fp4)
    _ENTRIES[:] = plan.entries
    try:
        program = torch.onnx.export(
            plan.model,
            tuple(example_inputs),
            dynamo=True,
            custom_translation_table=_TRANSLATIONS,
            opset_version=opset,
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )
    finally:
        _ENTRIES.clear()
    proto = program.model_proto
    _name_dequantize_nodes(proto, plan)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        _atomic_save(proto, path)
    return proto
