"""`quantkit eval` compares a quantized checkpoint with its original through the stock
loaders and prints what quantkit.torch.evaluate_causal_lm computes on the same tokens,
as a table, JSON and a plot; bad inputs are named."""

import json
import subprocess
import sys

import pytest
import quantkit.torch as qkt
import torch
from quantkit.eval_command import main as eval_main
from tiny_llama import save_tiny_llama
from transformers import AutoModelForCausalLM


def quantkit(*args, expect=0):
    result = subprocess.run(
        [sys.executable, "-m", "quantkit", *map(str, args)], capture_output=True, text=True
    )
    assert result.returncode == expect, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    save_tiny_llama(root / "llama", dtype=torch.float32)
    quantkit("quantize", root / "llama", "-o", root / "q", "-s", "int4-g32", "-q")
    return root


def test_eval_prints_what_evaluate_causal_lm_computes(models):
    out = quantkit(
        "eval", models / "llama", models / "q", "--random", 6, "--seq-len", 16,
        "--batch-size", 4, "--json", "--plot", models / "kl.png",
    )  # fmt: skip
    printed = json.loads(out.stdout)
    reference = AutoModelForCausalLM.from_pretrained(models / "llama").eval()
    model = AutoModelForCausalLM.from_pretrained(models / "q").eval()
    ids = torch.randint(0, 256, (6, 16), generator=torch.Generator().manual_seed(0))
    expected = qkt.evaluate_causal_lm(model, reference, list(torch.split(ids, 4)))
    assert printed == expected.to_dict()
    assert printed["tokens"] == 6 * 15 and printed["kl_mean"] > 0
    assert (models / "kl.png").stat().st_size > 1000


def in_process(capsys, *args, expect=0):
    """The command's main() in this process (torch and transformers already imported)."""
    try:
        code = eval_main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    out = capsys.readouterr()
    assert code == expect, out.out + out.err
    return out


def test_token_files_are_cut_into_sequences_and_bad_inputs_are_named(models, tmp_path, capsys):
    table = in_process(capsys, models / "llama", models / "q", "--random", 2, "--seq-len", 8)
    assert "KL divergence mean" in table.out and "top-1 agreement" in table.out
    ids = tmp_path / "ids.txt"
    ids.write_text(" ".join(str(i % 256) for i in range(40)))
    out = in_process(
        capsys, models / "llama", models / "q", "--tokens", ids, "--seq-len", 10, "--json"
    )
    assert json.loads(out.out)["tokens"] == 4 * 9
    ids.write_text("1 2 999")
    bad = in_process(capsys, models / "llama", models / "q", "--tokens", ids, expect=1)
    assert "token ids must lie in [0, 256)" in bad.err
    missing = in_process(capsys, models / "nope", models / "q", "--random", 1, expect=1)
    assert "is not a model folder" in missing.err
    no_tokenizer = in_process(capsys, models / "llama", models / "q", "--text", ids, expect=1)
    assert "has no tokenizer" in no_tokenizer.err
    in_process(capsys, models / "llama", models / "q", expect=2)  # no data given
