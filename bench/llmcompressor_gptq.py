"""GPTQ W4A16 (group 128) on all-MiniLM-L6-v2, quantkit beside llm-compressor, on the
same weights, calibration sentences (every tenth of the examples' 210, as
docs/results.md's GPTQ table) and held-out sentences (the other 189): mean / min
cosine of the sentence embeddings (mean pooling, L2-normalized) against the float
model, and the seconds each GPTQ run takes.

llm-compressor brings its own transformers, so it runs in its own virtual environment
(installed with the same torch pin) as a child process of this script:

    python3 -m venv --system-site-packages /tmp/llmc
    /tmp/llmc/bin/pip install -c constraints.txt llmcompressor   # torch==2.13.0 pinned
    python3 bench/llmcompressor_gptq.py --llmcompressor-python /tmp/llmc/bin/python
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time
import warnings

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples" / "python"

# Runs under llm-compressor's environment: oneshot GPTQ on the transformers BertModel,
# then prints the held-out embeddings' cosines as JSON.
LLMCOMPRESSOR = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from quantkit_examples.models import minilm
from datasets import Dataset
from transformers import AutoModel
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import GPTQModifier

settings = json.loads(sys.argv[2])
texts = minilm.sentences()
calibration = texts[::10]
held_out = [t for i, t in enumerate(texts) if i % 10]
tokenizer = minilm.Tokenizer()

def embed(model, sentences):
    out = []
    with torch.no_grad():
        for i in range(0, len(sentences), 32):
            ids, mask, types = tokenizer(sentences[i : i + 32])
            output = model(input_ids=ids, attention_mask=mask, token_type_ids=types)
            hidden = output.last_hidden_state
            m = mask.unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out)

reference = embed(AutoModel.from_pretrained(minilm.model_dir()).eval(), held_out)
rows = []
for setting in settings:
    model = AutoModel.from_pretrained(minilm.model_dir()).eval()
    data = [tokenizer([t]) for t in calibration]
    dataset = Dataset.from_dict({
        "input_ids": [d[0][0].tolist() for d in data],
        "attention_mask": [d[1][0].tolist() for d in data],
        "token_type_ids": [d[2][0].tolist() for d in data],
    })
    modifier = GPTQModifier(targets="Linear", scheme="W4A16", ignore=["re:.*pooler.*"],
                            actorder=setting["actorder"], dampening_frac=setting["damp"])
    started = time.perf_counter()
    oneshot(model=model, dataset=dataset, recipe=modifier, num_calibration_samples=len(data),
            pipeline=setting["pipeline"], sequential_targets=["BertLayer"])
    seconds = time.perf_counter() - started
    cos = torch.nn.functional.cosine_similarity(embed(model, held_out), reference)
    rows.append({**setting, "mean": cos.mean().item(), "min": cos.min().item(), "seconds": seconds})
print(json.dumps(rows))
"""

LLMCOMPRESSOR_SETTINGS = [
    {
        "label": "GPTQ, act-order (static)",
        "actorder": "static",
        "damp": 0.01,
        "pipeline": "sequential",
    },
    {"label": "GPTQ, no act-order", "actorder": None, "damp": 0.01, "pipeline": "sequential"},
    {
        "label": "GPTQ, act-order, damping 0.1",
        "actorder": "static",
        "damp": 0.1,
        "pipeline": "sequential",
    },
]


def quantkit_rows() -> list[dict]:
    sys.path.insert(0, str(EXAMPLES))
    import copy

    import quantkit.torch as qkt
    import torch
    from quantkit_examples.models import minilm

    model = minilm.load_model().eval()
    tokenizer = minilm.Tokenizer()
    texts = minilm.sentences()
    calibration = minilm.batches(texts[::10], tokenizer)
    held_out = minilm.batches([t for i, t in enumerate(texts) if i % 10], tokenizer)
    reference = minilm.embed(model, held_out)
    settings = [
        ("GPTQ, act-order", dict(symmetric=True), 0.01),
        ("GPTQ, act-order, damping 0.1", dict(symmetric=True), 0.1),
        ("GPTQ, act-order, damping 0.1, MSE scales", dict(symmetric=True, scale_search="mse"), 0.1),
        (
            "GPTQ, act-order, damping 0.1, MSE scales, asymmetric",
            dict(symmetric=False, scale_search="mse"),
            0.1,
        ),
    ]
    rows = []
    for label, recipe_options, damp in settings:
        m = qkt.prepare(copy.deepcopy(model), qkt.recipes.W4A16(128, **recipe_options))
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rank-deficient Hessians at 21 sentences, expected
            qkt.gptq(m, calibration, forward=lambda mm, b: mm(*b), sequential=True, damp=damp)
        seconds = time.perf_counter() - started
        qkt.convert(m)
        cos = torch.nn.functional.cosine_similarity(minilm.embed(m, held_out), reference)
        rows.append(
            {"label": label, "mean": cos.mean().item(), "min": cos.min().item(), "seconds": seconds}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llmcompressor-python", required=True)
    args = parser.parse_args()
    result = subprocess.run(
        [
            args.llmcompressor_python,
            "-c",
            LLMCOMPRESSOR,
            str(EXAMPLES),
            json.dumps(LLMCOMPRESSOR_SETTINGS),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(result.stderr[-4000:])
    theirs = json.loads(result.stdout.strip().splitlines()[-1])
    ours = quantkit_rows()
    print("| tool | setting (W4A16 g128, sequential) | mean cos | min cos | GPTQ seconds |")
    print("| --- | --- | ---: | ---: | ---: |")
    for tool, rows in (("llm-compressor 0.14.0.1", theirs), ("quantkit", ours)):
        for r in rows:
            print(
                f"| {tool} | {r['label']} | {r['mean']:.4f} | {r['min']:.4f} | {r['seconds']:.1f} |"
            )


if __name__ == "__main__":
    main()
