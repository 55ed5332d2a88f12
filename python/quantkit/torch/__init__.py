"""PyTorch workflows on quantkit's kernels: fake-quantize ops and modules, recipes,
prepare / calibrate / convert (converted == prepared, bit for bit).

```python
import quantkit.torch as qkt
model = qkt.prepare(model, qkt.recipes.W8A8())
qkt.calibrate(model, batches)
qkt.convert(model)
qkt.save_pretrained(model, "model-w4")  # compressed-tensors: transformers / vLLM load it
qkt.export_onnx(model, example_inputs, "model.onnx")  # QDQ; needs onnx, onnxscript
```
"""

from __future__ import annotations

from . import linear_ops, ops, recipes
from ._spec import SpecArgs
from .algorithms import AWQ, GPTQ, SmoothQuant
from .awq import awq
from .converted import QuantizedConv2d, QuantizedEmbedding, QuantizedLinear, QuantizedWeight
from .coverage import Coverage, CoverageRow, coverage
from .evaluate import (
    CausalLMEvaluation,
    EmbeddingEvaluation,
    evaluate_causal_lm,
    evaluate_embeddings,
)
from .fake_quantize import FakeQuantize
from .gptq import GPTQReport, gptq
from .importance import collect_importance, save_importance
from .mixed_precision import (
    MixedPrecision,
    Sensitivity,
    layer_sensitivity,
    mixed_precision,
)
from .model_recipe import ModelRecipe, load_recipe, recipe_by_name, recipe_from_text
from .offload import OffloadReport, quantize_checkpoint
from .prepared import QATConv2d, QATEmbedding, QATLinear, torch_matmul
from .recipes import Recipe, TensorQuant
from .save import load_pretrained, save_pretrained
from .smoothquant import smooth_quant
from .workflow import (
    calibrate,
    convert,
    fake_quantizers,
    freeze,
    model_bytes,
    parameter_count,
    prepare,
    quantize_,
)

__all__ = [
    "AWQ",
    "GPTQ",
    "CausalLMEvaluation",
    "Coverage",
    "CoverageRow",
    "MixedPrecision",
    "OffloadReport",
    "ModelRecipe",
    "EmbeddingEvaluation",
    "FakeQuantize",
    "GPTQReport",
    "QATConv2d",
    "QATEmbedding",
    "QATLinear",
    "QuantizedConv2d",
    "QuantizedEmbedding",
    "QuantizedLinear",
    "QuantizedWeight",
    "Recipe",
    "Sensitivity",
    "SmoothQuant",
    "SpecArgs",
    "TensorQuant",
    "awq",
    "calibrate",
    "collect_importance",
    "convert",
    "coverage",
    "evaluate_causal_lm",
    "evaluate_embeddings",
    "fake_quantizers",
    "gptq",
    "layer_sensitivity",
    "linear_ops",
    "load_pretrained",
    "load_recipe",
    "freeze",
    "mixed_precision",
    "model_bytes",
    "ops",
    "parameter_count",
    "prepare",
    "quantize_",
    "quantize_checkpoint",
    "recipe_by_name",
    "recipe_from_text",
    "recipes",
    "save_importance",
    "save_pretrained",
    "smooth_quant",
    "torch_matmul",
]

_ONNX = {
    "export_onnx": "onnx_export",
    "onnx_parity": "onnxruntime_parity",
    "parity_table": "onnxruntime_parity",
}


def __getattr__(name: str):
    # ONNX support imports onnx / onnxscript only when asked for
    if name in _ONNX:
        import importlib

        return getattr(importlib.import_module(f".{_ONNX[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
