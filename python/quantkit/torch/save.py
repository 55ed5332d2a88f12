"""Saving converted models as compressed-tensors checkpoints that transformers and
vLLM load.

``save_pretrained(model, folder)`` writes ``model.safetensors`` and ``config.json``
with its ``quantization_config`` through the same C++ layout code as the
``quantkit quantize`` command, from the codes and qparams each converted module
already holds: GPTQ, SmoothQuant, QAT or any recipe's result is stored exactly as
it computes (nothing is re-chosen). Schemes compressed-tensors cannot express are
refused by name before anything is written.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn

from .. import QParams, QuantizedTensor, _core
from .._arrays import as_core_input, to_framework
from ._spec import args_from_spec, spec_from_key
from .converted import CONVERTED_TYPES, QuantizedLinear, QuantizedWeight
from .fake_quantize import FakeQuantize
from .ops import _qparams, dtype_name
from .recipes import TensorQuant


def _config_text(model: nn.Module, config: Any) -> str:
    config = getattr(model, "config", None) if config is None else config
    if config is None:
        return "{}"
    if hasattr(config, "to_json_string"):  # a transformers PretrainedConfig
        return config.to_json_string(use_diff=False)
    if isinstance(config, dict):
        return json.dumps(config)
    raise TypeError(f"config must be a transformers config or a dict, not {type(config).__name__}")


def _core_quantized(weight: QuantizedWeight) -> _core.QuantizedTensor:
    qparams = _qparams(
        weight.float_scale,
        weight.zero_point,
        weight.spec_key,
        weight.compute_dtype,
        weight.global_scale,
    )
    packed = as_core_input(weight.packed.contiguous())
    return _core.QuantizedTensor.from_packed(list(weight.shape), packed, qparams._core)


def _check_writable(name: str, module: nn.Module) -> None:
    if not isinstance(module, QuantizedLinear):
        raise ValueError(
            f"module '{name}' is a {type(module).__name__}: save_pretrained writes quantized "
            "Linear layers (compressed-tensors targets); keep convolutions and embeddings "
            "float (prepare's filter_fn / overrides) to save this model"
        )
    fq = module.input_fake_quant
    if fq is not None and fq.config.qparams == "learnable":
        raise ValueError(
            f"module '{name}' learns its input qparams (LSQ), whose rounding compressed-tensors "
            "does not reproduce; save_pretrained writes dynamic or calibrated static inputs"
        )
    if fq is not None and fq.config.qparams == "static" and not fq.frozen:
        raise ValueError(
            f"module '{name}' has a static input quantizer without qparams: run "
            "quantkit.torch.calibrate(model, batches) before converting and saving"
        )


def _input_quantization(module: nn.Module) -> tuple[Any, Any]:
    """(input QuantSpec, static input QParams) of a converted layer; None where absent."""
    fq = module.input_fake_quant
    if fq is None:
        return None, None
    if fq.config.qparams != "static":
        return spec_from_key(fq.spec_key), None
    qparams = _qparams(fq.scale, fq.zero_point, fq.spec_key, fq.compute_dtype, fq.global_scale)
    return spec_from_key(fq.spec_key), qparams._core


def _tied_embedding_problem(config_text: str, quantized: set[str]) -> str | None:
    config = json.loads(config_text)
    if config.get("tie_word_embeddings") is True and "lm_head" in quantized:
        return (
            "config sets tie_word_embeddings: true, so transformers loads lm_head and the input "
            "embedding as one tensor; keep lm_head float or untie the model first"
        )
    return None


def save_pretrained(
    model: nn.Module,
    folder: str | os.PathLike,
    config: Any = None,
    *,
    replace: bool = False,
    max_shard_bytes: int = 5 * 2**30,
) -> None:
    """Writes a converted model as a compressed-tensors folder (``model.safetensors`` and
    ``config.json``): transformers' ``from_pretrained`` and compressed-tensors load it.

    ``config`` is the model's transformers config (default ``model.config``) or a dict;
    the result gets its ``quantization_config``. An existing folder is replaced only
    with ``replace=True`` and only if quantkit wrote it; the folder appears only when
    the whole write succeeds. Past ``max_shard_bytes`` the tensors are split into
    ``model-0000i-of-0000n.safetensors`` shards with an index, as transformers writes
    them. Float tensors are read in place (the model is not copied).
    """
    converted = {n: m for n, m in model.named_modules() if isinstance(m, CONVERTED_TYPES)}
    config_text = _config_text(model, config)
    problem = _tied_embedding_problem(config_text, set(converted))
    if problem:
        raise ValueError(problem)
    items = checkpoint_items(model)
    _core.save_compressed_tensors(os.fspath(folder), items, config_text, replace, max_shard_bytes)


def checkpoint_items(module: nn.Module, prefix: str = "") -> list[tuple]:
    """The tensors ``save_pretrained`` writes for ``module`` (names prefixed by ``prefix``):
    float tensors as they are (tied ones once; tensors on the meta device, which hold no
    data, left out) and each converted Linear as one quantized weight."""
    converted = {n: m for n, m in module.named_modules() if isinstance(m, CONVERTED_TYPES)}
    for name, m in converted.items():
        _check_writable(prefix + name, m)
    # Converted modules on the meta device (written elsewhere, their memory released).
    held = {n: m for n, m in converted.items() if not m.qweight.packed.is_meta}
    items: list[tuple[str, Any]] = []
    seen: set[tuple] = set()
    for key, value in module.state_dict().items():
        module_name, _, leaf = key.rpartition(".")
        if module_name in converted or module_name.rpartition(".")[0] in converted:
            continue  # the converted module's own parts: written below as one weight
        if not isinstance(value, torch.Tensor) or leaf == "_extra_state" or value.is_meta:
            continue
        # Tied parameters (one tensor under two names) are stored once, as
        # transformers' save_pretrained does.
        same_data = (value.data_ptr(), tuple(value.shape), value.stride(), value.dtype)
        if value.numel() and same_data in seen:
            continue
        seen.add(same_data)
        items.append((prefix + key, as_core_input(value.detach().cpu().contiguous())))
    for name, m in held.items():
        input_spec, input_qparams = _input_quantization(m)
        weight = _core_quantized(m.qweight)
        items.append((f"{prefix}{name}.weight", weight, input_spec, input_qparams))
        if m.bias is not None:
            items.append(
                (f"{prefix}{name}.bias", as_core_input(m.bias.detach().cpu().contiguous()))
            )
    return items


def _stored_weight(core: _core.QuantizedTensor, dtype: torch.dtype) -> QuantizedWeight:
    q = QuantizedTensor(core, "torch")
    qparams = core.qparams
    zero_point = q.zero_point
    global_scale = q.qparams.global_scale
    return QuantizedWeight.from_stored(
        packed=torch.as_tensor(to_framework(core.packed(), "torch")),
        scale=q.scale,
        zero_point=torch.empty(0, dtype=torch.int32) if zero_point is None else zero_point,
        spec_key=args_from_spec(qparams.spec).key(),
        compute_dtype=qparams.compute_dtype,
        shape=list(core.shape),
        dtype=dtype,
        global_scale=None if global_scale is None else global_scale.clone(),
    )


def _input_quantizer(spec: Any, qparams: Any) -> FakeQuantize | None:
    """The input quantizer a stored layer had: dynamic, or static with its qparams."""
    if spec is None:
        return None
    how = "dynamic" if qparams is None else "static"
    fq = FakeQuantize(TensorQuant(args_from_spec(spec), how))
    if qparams is not None:
        q = QParams._wrap(qparams, "torch")
        fq._set(q.scale, q.zero_point, q.compute_dtype, q.global_scale)
    return fq


@torch.no_grad()
def load_pretrained(model: nn.Module, folder: str | os.PathLike) -> nn.Module:
    """Loads a checkpoint quantkit wrote (``save_pretrained`` or ``quantkit quantize``)
    into ``model``, a float model of the same architecture (e.g. transformers'
    ``AutoModelForCausalLM.from_config(config)``): every quantized weight becomes a
    :class:`QuantizedLinear` with the stored codes and qparams (nothing is re-chosen),
    every other tensor is copied in; layers that quantized their inputs get the same
    input quantizer (static ones with their calibrated qparams). Returns ``model``."""
    dtype = next(model.parameters()).dtype
    stored = _core.load_compressed_tensors(os.fspath(folder), dtype_name(dtype))
    modules = dict(model.named_modules())
    plain: dict[str, torch.Tensor] = {}
    for name, value, *inputs in stored:
        if not isinstance(value, _core.QuantizedTensor):
            plain[name] = torch.as_tensor(to_framework(value, "torch"))
            continue
        module_name = name.removesuffix(".weight")
        linear = modules.get(module_name)
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"quantized weight '{name}' has no nn.Linear '{module_name}' in model")
        replacement = QuantizedLinear.from_weight(
            _stored_weight(value, dtype), linear.bias, _input_quantizer(*inputs)
        )
        parent, _, child = module_name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, replacement)
    missing, unexpected = model.load_state_dict(plain, strict=False)
    if unexpected:
        raise ValueError(f"checkpoint tensors the model has no place for: {unexpected[:5]}")
    state = model.state_dict()
    loaded = {state[k].data_ptr() for k in plain if k in state}
    quantized = {n for n, m in model.named_modules() if isinstance(m, QuantizedLinear)}
    absent = [
        k
        for k in missing
        if k.rpartition(".")[0].rpartition(".")[0] not in quantized  # qweight.* parts
        and k.rpartition(".")[0] not in quantized  # a QuantizedLinear's own bias
        and state[k].data_ptr() not in loaded  # a tied tensor, stored once
    ]
    if absent:
        raise ValueError(f"the checkpoint lacks tensors the model has: {absent[:5]}")
    return model
