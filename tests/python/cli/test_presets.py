"""Presets mix schemes by tensor role (llama.cpp's _M idea): `--scheme q4-mix`
quantizes most weights at int4 and the feed-forward down projection, attention
value and output layers at int6, all MSE-searched; `--override` rules come first,
so they refine a preset; override schemes may carry options ('=' inside)."""

import quantkit as qk
import torch
from cli_schemes import spec_of
from safetensors.torch import load_file
from test_checkpoint_roundtrip import decode
from test_importance import quantize


def plan_of(run, source, *args):
    rows = run("quantize", source, "-o", source.parent / "q.safetensors", *args, "--dry-run")
    return {line.split()[0]: line.split()[4] for line in rows.stdout.splitlines()[1:-1]}


def test_a_preset_gives_each_role_its_scheme(tmp_path, run, make_checkpoint):
    make_checkpoint(tmp_path / "model.safetensors", torch.bfloat16)
    source = tmp_path / "model.safetensors"
    plan = plan_of(run, source, "-s", "q4-mix")
    assert plan["model.layers.0.mlp.up_proj.weight"] == "int4-g32-asym:search=mse"
    assert plan["model.layers.0.mlp.down_proj.weight"] == "int6-g32-asym:search=mse"
    refined = plan_of(run, source, "-s", "q4-mix", "--override", ".*down_proj=int8:search=mse")
    assert refined["model.layers.0.mlp.down_proj.weight"] == "int8:search=mse"
    listed = run("schemes").stdout
    assert "q3-mix" in listed and "q4-mix" in listed and "q5-mix" in listed


def test_a_preset_output_decodes_as_its_parts(tmp_path, run, make_checkpoint):
    original = make_checkpoint(tmp_path / "model.safetensors", torch.float16)
    out = tmp_path / "q.safetensors"
    run("quantize", tmp_path / "model.safetensors", "-o", out, "-s", "q4-mix", "-q")
    stored = load_file(str(out))
    for name, scheme in [
        ("model.layers.0.mlp.up_proj.weight", "int4-g32-asym:search=mse"),
        ("model.layers.0.mlp.down_proj.weight", "int6-g32-asym:search=mse"),
    ]:
        spec, _ = spec_of(scheme)
        expected = qk.fake_quantize(original[name], qk.choose_qparams(original[name], spec))
        got = decode(stored, name, scheme, torch.float16)
        assert torch.equal(got.view(torch.int16), expected.view(torch.int16)), name


def test_unknown_schemes_name_the_presets_too(tmp_path, run, make_checkpoint):
    make_checkpoint(tmp_path / "model.safetensors", torch.float32)
    result = quantize(run, tmp_path, "q4-mixx", expect=1)
    assert "q4-mix" in result.stderr and "search=mse" in result.stderr
    result = quantize(run, tmp_path, "int4-g32:search=max", expect=1)
    assert "option 'search=max' is unknown" in result.stderr


def test_rules_that_match_nothing_are_refused_by_name(tmp_path, run, make_checkpoint):
    make_checkpoint(tmp_path / "model.safetensors", torch.float32)
    base = ["quantize", tmp_path / "model.safetensors", "-o", tmp_path / "q.safetensors"]
    for rule, shown in [
        (["--override", r"model\.layer\.0\.=int8"], "--override"),
        (["--exclude", "lm_head"], "--exclude 'lm_head'"),
        (["--include", "q_proj"], "--include 'q_proj'"),
    ]:
        result = run(*base, *rule, expect=1)
        assert shown in result.stderr and "matches no tensor" in result.stderr, rule
    assert not (tmp_path / "q.safetensors").exists()
    result = run(*base, "--exclude", "lm_head", "--allow-unmatched-rules", "-q")
    assert "warning: --exclude 'lm_head' matches no tensor" in result.stderr
    assert (tmp_path / "q.safetensors").exists()
    # a preset's own role rules may match nothing (this checkpoint has no lm_head)
    run(*base[:3], tmp_path / "p.safetensors", "-s", "q4-mix", "-q")
