"""SmoothQuant: move activation outliers into the weights before quantizing.

For each group of Linear layers that read the same input ``X`` (e.g. q/k/v),
with per-input-channel maxima ``a_j = max|X_j|`` over calibration batches and
``w_j = max|W_:,j|`` over the group's weights::

    s_j = a_j ** alpha / w_j ** (1 - alpha)      X' = X / s      W' = W * s

so ``X' W'^T = X W^T`` while ``X'`` has flatter channels.

With ``mappings`` (norm -> the Linears that read its output, given by name
relative to their block), ``1/s`` is folded into each mapped norm's weight (and
bias): LayerNorm and RMSNorm alike, since both end in ``* weight (+ bias)``.
Hugging Face decoder blocks (``input_layernorm`` / ``post_attention_layernorm``,
as in Llama, Mistral, Qwen2) get :data:`DECODER_MAPPINGS` by default, as
llm-compressor does; only the mapped groups are smoothed and the model keeps
its architecture (so ``save_pretrained`` still writes a model transformers
loads). Other models: where ``X`` is the output of a LayerNorm that nothing
else reads (pre-norm blocks, found by tracing), ``1/s`` is folded into it;
elsewhere a :class:`SmoothInput` multiply is inserted before the Linear. Either
way the float model computes the same function (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ._batches import hooked, run_batches

# norm -> the Linears reading its output, relative to the norm's block
Mapping = tuple[str, tuple[str, ...]]

DECODER_MAPPINGS: tuple[Mapping, ...] = (
    ("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
)
"""The pre-norm groups of Hugging Face decoder blocks (llm-compressor's defaults)."""


class SmoothInput(nn.Module):
    """Multiplies its input by ``1 / s`` per channel (last dimension)."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("inv_scale", scale.reciprocal())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.inv_scale.to(x.dtype)


class SmoothedLinear(nn.Sequential):
    """``linear(x / s)``: the explicit form of a smoothed Linear."""

    def __init__(self, scale: torch.Tensor, linear: nn.Linear) -> None:
        super().__init__()
        self.smooth = SmoothInput(scale)
        self.linear = linear


def _foldable_layer_norms(model: nn.Module) -> dict[str, set[str]]:
    """LayerNorm name → the set of module names that read its output, for LayerNorms
    whose output only modules read (found with torch.fx; empty if the model does not
    trace)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - any tracing failure means: do not fold
        return {}
    modules = dict(model.named_modules())
    result = {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.LayerNorm):
            continue
        users = list(node.users)
        if users and all(u.op == "call_module" for u in users):
            result[node.target] = {u.target for u in users}
    return result


class _InputStatistics:
    """Per-input-channel maxima of every Linear's input over the calibration
    batches, and which Linears (and which LayerNorm output) share one input
    tensor in the first batch (matched by identity)."""

    def __init__(self, linears: dict[str, nn.Linear], layer_norms: dict[str, nn.Module]):
        self.linears = linears
        self.layer_norms = layer_norms
        self.act_max: dict[str, torch.Tensor] = {}
        self.first_inputs: dict[str, int] = {}
        self.ln_outputs: dict[int, str] = {}
        self._alive: list[torch.Tensor] = []  # first-batch tensors stay alive: ids stay unique
        self._batch = 0

    def _on_linear(self, name: str):
        def hook(_module, args):
            x = args[0]
            amax = x.detach().abs().reshape(-1, x.shape[-1]).amax(dim=0).float()
            seen = self.act_max.get(name)
            self.act_max[name] = amax if seen is None else torch.maximum(seen, amax)
            if self._batch == 0 and name not in self.first_inputs:
                self.first_inputs[name] = id(x)
                self._alive.append(x)

        return hook

    def _on_layer_norm(self, name: str):
        def hook(_module, _args, out):
            if self._batch == 0:
                self.ln_outputs.setdefault(id(out), name)
                self._alive.append(out)

        return hook

    def _next_batch(self) -> None:
        self._batch += 1
        self._alive.clear()

    def collect(self, model: nn.Module, batches: Iterable[Any], forward) -> None:
        handles = [m.register_forward_pre_hook(self._on_linear(n)) for n, m in self.linears.items()]
        handles += [
            m.register_forward_hook(self._on_layer_norm(n)) for n, m in self.layer_norms.items()
        ]
        with hooked(handles):
            run_batches(model, batches, forward, after_each=self._next_batch)
        if not self.act_max:
            raise RuntimeError("smooth_quant: no batch reached any Linear layer")

    def groups(self) -> dict[int, list[str]]:
        """First-batch input identity -> the Linears that read that input."""
        out: dict[int, list[str]] = {}
        for name, key in self.first_inputs.items():
            out.setdefault(key, []).append(name)
        return out


def _smoothing_scale(act_max: torch.Tensor, weights: list[torch.Tensor], alpha: float):
    """s_j = a_j ** alpha / w_j ** (1 - alpha); 1 where a channel is all zero."""
    w = torch.stack([weight.detach().abs().amax(dim=0).float() for weight in weights]).amax(dim=0)
    scale = (act_max.pow(alpha) / w.pow(1 - alpha)).clamp(min=1e-5)
    return torch.where((act_max > 0) & (w > 0), scale, torch.ones_like(scale))


def _fold_into_layer_norm(layer_norm: nn.Module, scale: torch.Tensor) -> None:
    """y = norm(x) * w (+ b) becomes y / s: w / s (and b / s)."""
    layer_norm.weight.div_(scale.to(layer_norm.weight.dtype))
    bias = getattr(layer_norm, "bias", None)  # RMSNorm has none
    if bias is not None:
        bias.div_(scale.to(bias.dtype))


def _wrap_explicitly(model: nn.Module, name: str, linear: nn.Linear, scale: torch.Tensor) -> None:
    parent, _, child = name.rpartition(".")
    owner = model.get_submodule(parent) if parent else model
    setattr(owner, child, SmoothedLinear(scale, linear))


def _mapped_groups(
    model: nn.Module, mappings: Iterable[Mapping], linears: dict[str, nn.Linear]
) -> list[tuple[str, list[str]]]:
    """(norm name, its Linears) for every module matching a mapping's norm suffix."""
    modules = dict(model.named_modules())
    groups = []
    for norm_suffix, linear_suffixes in mappings:
        for name, module in modules.items():
            if name != norm_suffix and not name.endswith("." + norm_suffix):
                continue
            block = name[: -len(norm_suffix)].rstrip(".")
            members = [f"{block}.{s}" if block else s for s in linear_suffixes]
            missing = [m for m in members if m not in modules]
            if missing:
                raise ValueError(f"mapping for '{name}': no module {missing[0]!r} in the model")
            if not hasattr(module, "weight") or module.weight is None:
                raise ValueError(f"mapping for '{name}': a {type(module).__name__} has no weight")
            kept = [m for m in members if m in linears]  # filter_fn may leave some float
            if kept:
                groups.append((name, kept))
    return groups


def _default_mappings(model: nn.Module) -> tuple[Mapping, ...] | None:
    names = {name.rpartition(".")[2] for name, _ in model.named_modules()}
    norms = {norm for norm, _ in DECODER_MAPPINGS}
    return DECODER_MAPPINGS if norms <= names else None


@torch.no_grad()
def smooth_quant(
    model: nn.Module,
    batches: Iterable[Any],
    alpha: float = 0.5,
    *,
    forward: Callable[[nn.Module, Any], Any] | None = None,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
    mappings: Iterable[Mapping] | None = None,
    sequential: bool = False,
    blocks: str | None = None,
    max_cache_bytes: int | None = None,
) -> dict[str, str]:
    """Smooths the ``nn.Linear`` layers of a float model in place (before ``prepare``).

    ``mappings``: ``(norm, (linear, ...))`` name suffixes, e.g. ``("input_layernorm",
    ("self_attn.q_proj", ...))``; default :data:`DECODER_MAPPINGS` for Hugging Face
    decoder blocks, else every Linear (see the module docstring). ``sequential`` (mapped
    models): block by block on the sequential engine, one block's maxima at a time.
    Returns, per smoothed Linear, how: ``"folded into <norm>"`` or ``"explicit"``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha}: must lie in [0, 1]")
    linears = {
        n: m
        for n, m in model.named_modules()
        if type(m) is nn.Linear and (filter_fn is None or filter_fn(m, n))
    }
    mappings = _default_mappings(model) if mappings is None else tuple(mappings)
    if mappings is not None:
        engine = (blocks, max_cache_bytes) if sequential else None
        return _smooth_mapped(model, batches, alpha, forward, linears, mappings, engine)
    if sequential:
        raise ValueError("smooth_quant: sequential=True needs mappings (norm -> Linears)")
    return _smooth_traced(model, batches, alpha, forward, linears)


def _scale_weights(stats: _InputStatistics, linears, names: list[str], alpha: float):
    """The group's smoothing scale s, with W * s applied to its Linears."""
    scale = _smoothing_scale(stats.act_max[names[0]], [linears[n].weight for n in names], alpha)
    for n in names:
        linears[n].weight.mul_(scale.to(linears[n].weight.dtype))
    return scale


def _smooth_mapped(model, batches, alpha, forward, linears, mappings, engine) -> dict[str, str]:
    """Each mapped group's scale folded into its norm; ``engine``: (blocks, cache bytes)
    to run block by block, or None for one pass."""
    groups = _mapped_groups(model, mappings, linears)
    if not groups:
        raise ValueError("smooth_quant: no mapping matched a norm of the model")
    modules = dict(model.named_modules())
    how: dict[str, str] = {}

    def smooth(runner, local, runner_batches, runner_forward) -> None:
        stats = _InputStatistics({n: linears[n] for _, group in local for n in group}, {})
        stats.collect(runner, runner_batches, runner_forward)
        for norm_name, names in local:
            scale = _scale_weights(stats, linears, names, alpha)
            _fold_into_layer_norm(modules[norm_name], scale)
            how.update({n: f"folded into {norm_name}" for n in names})

    if engine is None:
        smooth(model, groups, batches, forward)
        return how
    from .sequential import call_block, check_inside_blocks, run_blocks

    blocks, max_cache_bytes = engine
    check_inside_blocks(model, blocks, (norm for norm, _ in groups), "smooth_quant")

    def visit(name, block, inputs) -> None:
        local = [g for g in groups if g[0].startswith(name + ".")]
        if local:
            smooth(block, local, inputs, call_block)

    run_blocks(
        model, batches, visit, forward=forward, blocks=blocks, max_cache_bytes=max_cache_bytes
    )
    return how


def _smooth_traced(model, batches, alpha, forward, linears) -> dict[str, str]:
    """Every Linear grouped by its input; folded into a LayerNorm only it reads (found
    by tracing), else an explicit multiply."""
    layer_norms = {n: m for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
    stats = _InputStatistics(linears, layer_norms)
    stats.collect(model, batches, forward)
    foldable = _foldable_layer_norms(model)
    how: dict[str, str] = {}
    for key, names in stats.groups().items():
        scale = _scale_weights(stats, linears, names, alpha)
        ln_name = stats.ln_outputs.get(key)
        if ln_name is not None and foldable.get(ln_name) == set(names):
            _fold_into_layer_norm(layer_norms[ln_name], scale)
            how.update({n: f"folded into {ln_name}" for n in names})
        else:
            for n in names:
                _wrap_explicitly(model, n, linears[n], scale)
            how.update({n: "explicit" for n in names})
    return how
