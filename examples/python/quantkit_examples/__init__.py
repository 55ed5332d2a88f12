"""quantkit's end-to-end examples: the MiniLM post-training quantization demo
(``quantkit demo``) and the experiments behind docs/results.md
(``quantkit results``). Not part of the library: installed from
``examples/python`` next to it."""
