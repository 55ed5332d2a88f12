"""Importance weights: quantkit.torch.collect_importance gives each Linear input
channel's mean squared input; `quantkit quantize --importance FILE` weights the
scale search of ':search=mse' schemes with it, and the result is exactly
quantkit.choose_qparams(w, spec, importance=...) in Python; names that match no
quantized weight, and schemes that do not search, are refused by name."""

import struct

import quantkit as qk
import quantkit.torch as qkt
import torch
from cli_schemes import spec_of
from safetensors.torch import load_file
from test_checkpoint_roundtrip import decode
from torch import nn

SCHEME = "int4-g32-asym:search=mse"


def quantize(run, folder, scheme, *options, expect=0):
    """`quantkit quantize` of folder / "model.safetensors" into folder / "q.safetensors"."""
    source, out = folder / "model.safetensors", folder / "q.safetensors"
    return run("quantize", source, "-o", out, "-s", scheme, *options, expect=expect)


def test_collect_importance_is_the_mean_squared_input():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    first = torch.tensor([[1.0, -2.0, 0.0, 3.0], [2.0, 2.0, -1.0, 0.0]])
    second = torch.tensor([[[0.0, 1.0, 4.0, -1.0]]])  # leading dimensions are rows too
    importance = qkt.collect_importance(model, [first, second])
    # hand sums of squares over 3 rows: [1+4+0, 4+4+1, 0+1+16, 9+0+1] / 3
    expected = torch.tensor([5.0, 9.0, 17.0, 10.0]) / 3
    assert torch.equal(importance["0.weight"], expected)
    assert importance["2.weight"].shape == (3,)
    only_last = qkt.collect_importance(model, [first], filter_fn=lambda m, name: name == "2")
    assert set(only_last) == {"2.weight"}


def importance_file(tmp_path, original, extra=()):
    g = torch.Generator().manual_seed(3)
    names = [n for n in original if n.endswith("proj.weight")]
    importance = {n: torch.rand(original[n].shape[1], generator=g) * 10 for n in names}
    importance.update({n: torch.ones(4) for n in extra})
    path = tmp_path / "importance.safetensors"
    qkt.save_importance(importance, path)
    return path, importance


def test_the_tool_weights_the_search_as_python_does(tmp_path, run, make_checkpoint):
    original = make_checkpoint(tmp_path / "model.safetensors", torch.bfloat16)
    path, importance = importance_file(tmp_path, original)
    out = tmp_path / "q.safetensors"
    plan = quantize(run, tmp_path, SCHEME, "--importance", path, "--dry-run").stdout
    assert f"{SCHEME} +importance" in plan
    quantize(run, tmp_path, SCHEME, "--importance", path, "-q")
    stored = load_file(str(out))
    spec, _ = spec_of(SCHEME)
    changed = 0
    for name, weights in importance.items():
        w = original[name]
        expected = qk.fake_quantize(w, qk.choose_qparams(w, spec, importance=weights))
        got = decode(stored, name, SCHEME, torch.bfloat16)
        assert torch.equal(got.view(torch.int16), expected.view(torch.int16)), name
        changed += not torch.equal(expected, qk.fake_quantize(w, qk.choose_qparams(w, spec)))
    assert changed > 0  # the weights moved some group's choice


def test_importance_that_matches_nothing_or_a_plain_scheme_is_refused(
    tmp_path, run, make_checkpoint
):
    original = make_checkpoint(tmp_path / "model.safetensors", torch.float32)
    path, _ = importance_file(tmp_path, original, extra=["model.layers.9.typo_proj.weight"])
    result = quantize(run, tmp_path, SCHEME, "--importance", path, expect=1)
    assert "model.layers.9.typo_proj.weight" in result.stderr
    (tmp_path / "good").mkdir()
    good, _ = importance_file(tmp_path / "good", original)
    result = quantize(run, tmp_path, "int4-g32", "--importance", good, expect=1)
    assert "does not search its scales" in result.stderr
    assert not (tmp_path / "q.safetensors").exists()


def legacy_imatrix(path, entries, calls=4):
    """llama.cpp's legacy imatrix layout: entry count, then per entry its name, call count,
    value count and summed values; a trailing chunk count and dataset name."""
    out = struct.pack("<i", len(entries))
    for name, values in entries.items():
        encoded = name.encode()
        out += struct.pack("<i", len(encoded)) + encoded
        out += struct.pack("<ii", calls, len(values)) + struct.pack(f"<{len(values)}f", *values)
    out += struct.pack("<i", 10) + struct.pack("<i", 4) + b"wiki"
    path.write_bytes(out)


def test_llama_cpp_imatrix_files_weight_the_search_by_gguf_name(tmp_path, run, make_checkpoint):
    original = make_checkpoint(tmp_path / "model.safetensors", torch.float32)
    g = torch.Generator().manual_seed(5)
    sums = {
        "blk.0.ffn_up.weight": (torch.rand(256, generator=g) * 40).tolist(),
        "blk.0.ffn_down.weight": (torch.rand(128, generator=g) * 40).tolist(),
    }
    legacy_imatrix(tmp_path / "imatrix.dat", sums)
    out = tmp_path / "q.safetensors"
    quantize(run, tmp_path, SCHEME, "--importance", tmp_path / "imatrix.dat", "-q")
    stored = load_file(str(out))
    spec, _ = spec_of(SCHEME)
    for gguf, name in [
        ("blk.0.ffn_up.weight", "model.layers.0.mlp.up_proj.weight"),
        ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight"),
    ]:
        mean = torch.tensor(sums[gguf], dtype=torch.float32) / 4  # summed squares / calls
        w = original[name]
        expected = qk.fake_quantize(w, qk.choose_qparams(w, spec, importance=mean))
        got = decode(stored, name, SCHEME, torch.float32)
        assert torch.equal(got.view(torch.int32), expected.view(torch.int32)), name


def gguf_imatrix(path, entries, counts):
    """llama-imatrix's GGUF form, written with the gguf package: `<weight>.in_sum2`
    (summed squares, one row per expert) and `<weight>.counts` (tokens per expert)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch="imatrix")
    writer.add_type("imatrix")
    writer.add_array("imatrix.datasets", ["wiki"])
    writer.add_uint32("imatrix.chunk_count", 10)
    writer.add_uint32("imatrix.chunk_size", 512)
    for name, sums in entries.items():
        writer.add_tensor(
            f"{name}.in_sum2", np.array(sums, dtype=np.float32).reshape(len(counts), -1)
        )
        writer.add_tensor(f"{name}.counts", np.array(counts, dtype=np.float32).reshape(-1, 1))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_imatrix_files_weight_the_search_as_llama_quantize_reads_them(
    tmp_path, run, make_checkpoint
):
    original = make_checkpoint(tmp_path / "model.safetensors", torch.float32)
    g = torch.Generator().manual_seed(7)
    sums = {
        "blk.0.ffn_up.weight": (torch.rand(256, generator=g) * 40).tolist(),
        "blk.0.ffn_down.weight": (torch.rand(128, generator=g) * 40).tolist(),
    }
    gguf_imatrix(tmp_path / "imatrix.gguf", sums, [37])
    quantize(run, tmp_path, SCHEME, "--importance", tmp_path / "imatrix.gguf", "-q")
    stored = load_file(str(tmp_path / "q.safetensors"))
    spec, _ = spec_of(SCHEME)
    for gguf_name, name in [
        ("blk.0.ffn_up.weight", "model.layers.0.mlp.up_proj.weight"),
        ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight"),
    ]:
        mean = torch.tensor(sums[gguf_name], dtype=torch.float32) / 37  # sums / token count
        w = original[name]
        expected = qk.fake_quantize(w, qk.choose_qparams(w, spec, importance=mean))
        got = decode(stored, name, SCHEME, torch.float32)
        assert torch.equal(got.view(torch.int32), expected.view(torch.int32)), name


def test_broken_imatrix_files_are_refused(tmp_path, run, make_checkpoint):
    make_checkpoint(tmp_path / "model.safetensors", torch.float32)

    def refused(importance, expect):
        return quantize(run, tmp_path, SCHEME, "--importance", importance, expect=expect).stderr

    legacy_imatrix(tmp_path / "typo.dat", {"blk.0.ffn_upp.weight": [1.0] * 256})
    assert "blk.0.ffn_upp.weight" in refused(tmp_path / "typo.dat", 1)
    (tmp_path / "short.dat").write_bytes(struct.pack("<ii", 1, 50) + b"blk.0")
    assert "ends inside a name" in refused(tmp_path / "short.dat", 3)
    (tmp_path / "imatrix.gguf").write_bytes(b"GGUF" + bytes(28))
    assert "GGUF version 0" in refused(tmp_path / "imatrix.gguf", 3)
    gguf_imatrix(tmp_path / "moe.gguf", {"blk.0.ffn_up.weight": [[1.0] * 256] * 2}, [5, 5])
    assert "per-expert (MoE) importance is not read" in refused(tmp_path / "moe.gguf", 3)
    assert not (tmp_path / "q.safetensors").exists()
