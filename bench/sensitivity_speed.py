"""Per-layer sensitivity, timed against one calibration pass over the same batches, on a
Llama-shaped causal LM built from a transformers config (random weights; 4 decoder
layers: 28 Linear layers + lm_head = 29): quantkit.torch.layer_sensitivity (one forward
and backward pass for every layer and candidate), report.sensitivity (one calibration +
scoring pass per layer, the exact path), and qkt.calibrate with W8A8's histogram
observers. Also prints how well the predictions rank the exact single-layer errors.

    python3 bench/sensitivity_speed.py [--layers 4] [--hidden 512] [--batches 4]
"""

import argparse
import copy
import time

import quantkit.torch as qkt
import torch
from quantkit.torch import recipes, report
from transformers import LlamaConfig, LlamaForCausalLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=2048,
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 11 // 4,
        num_hidden_layers=args.layers,
        num_attention_heads=8,
        num_key_value_heads=4,
    )
    model = LlamaForCausalLM(config).eval()
    batches = [torch.randint(0, 2048, (2, args.tokens)) for _ in range(args.batches)]
    linears = sum(isinstance(m, torch.nn.Linear) for m in model.modules())

    start = time.perf_counter()
    qkt.calibrate(qkt.prepare(copy.deepcopy(model), recipes.W8A8()), batches)
    calibration = time.perf_counter() - start

    candidates = ["int4-g128", "int8"]
    sensitivity = qkt.layer_sensitivity(model, candidates, batches)

    def kl_score(m):  # the exact path: the float model's logits against m's
        with torch.no_grad():
            return -sum(
                torch.nn.functional.mse_loss(m(b).logits, model(b).logits).item() for b in batches
            )

    start = time.perf_counter()
    exact = report.sensitivity(model, recipes.W4A16(128), batches, kl_score)
    per_layer = time.perf_counter() - start

    order_exact = [name for name, _ in exact]
    predicted = sorted(sensitivity.options, key=lambda n: -sensitivity.error(n, "int4-g128"))
    top = set(order_exact[:10]) & set(predicted[:10])
    print(f"{linears} Linear layers, {args.batches} batches of 2 x {args.tokens} tokens")
    print(f"calibration pass (W8A8, histogram)   {calibration:8.2f} s")
    print(
        f"layer_sensitivity ({len(candidates)} candidates)    {sensitivity.seconds:8.2f} s "
        f"({sensitivity.seconds / calibration:.2f}x a calibration pass)"
    )
    print(
        f"report.sensitivity (one pass a layer) {per_layer:8.2f} s ({per_layer / calibration:.1f}x)"
    )
    print(f"ten most sensitive layers: {len(top)} of 10 the same in both")


if __name__ == "__main__":
    main()
