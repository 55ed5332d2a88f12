"""Small real models that run offline, for quantization experiments and the demo."""
