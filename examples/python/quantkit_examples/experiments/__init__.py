"""End-to-end quantization experiments on real models (docs/results.md)."""
