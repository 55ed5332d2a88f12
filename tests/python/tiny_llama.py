"""Small random-weight Llamas built from transformers configs, shared by the tests
that quantize, save and load them."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def tiny_llama_config(
    *, tied: bool = False, hidden: int = 128, intermediate: int = 256, vocab: int = 256
) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
    )


def save_tiny_llama(folder, *, tied: bool = False, dtype=torch.bfloat16) -> None:
    """A seeded Llama of tiny_llama_config() saved to `folder` in `dtype`."""
    torch.manual_seed(0)
    LlamaForCausalLM(tiny_llama_config(tied=tied)).to(dtype).save_pretrained(folder)
