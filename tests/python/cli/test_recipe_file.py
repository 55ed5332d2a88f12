"""One recipe file for the CLI and Python: `quantkit quantize --recipe` and
`quantkit.torch.load_recipe` read the same file (through the same C++ parser),
full-match the same patterns with the same precedence, refuse the same mistakes,
and give the same applied table and the same stored tensors on the same checkpoint."""

import json

import pytest
import quantkit.torch as qkt
import torch
from safetensors.torch import load_file
from tiny_llama import save_tiny_llama
from transformers import AutoModelForCausalLM

RECIPES = {
    "rules": {
        "scheme": "W4A16",
        "rules": [
            {"match": r"model\.layers\.1\.mlp\.down_proj", "scheme": "int8"},
            {"match": "lm_head", "scheme": "skip"},
            {"match": r".*\.v_proj", "scheme": "int4-g32-asym:search=mse"},
            {"match": r"model\.layers\.\d+\.mlp\.(gate|up)_proj", "scheme": "fp8-channel"},
        ],
    },
    "preset": {
        "scheme": "q4-mix",
        "rules": [{"match": r"model\.layers\.0\.self_attn\.q_proj", "scheme": "nvfp4"}],
    },
}


def cli_table(run, folder, recipe) -> dict:
    out = run(
        "quantize", folder, "-o", folder.parent / "unused", "--recipe", recipe, "-n", "--json"
    )
    rows = json.loads(out.stdout)["tensors"]
    return {r["module"]: r["scheme"] for r in rows if len(r["shape"]) == 2}


def python_model(folder, recipe):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
    return qkt.prepare(model, qkt.load_recipe(recipe))


@pytest.mark.parametrize("name", RECIPES)
def test_cli_and_python_apply_the_same_table_and_store_the_same_tensors(tmp_path, run, name):
    save_tiny_llama(tmp_path / "llama")
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(RECIPES[name]))
    cli = cli_table(run, tmp_path / "llama", recipe)
    model = python_model(tmp_path / "llama", recipe)
    table = qkt.coverage(model)
    assert table.quantized() == {m: s for m, s in cli.items() if s is not None}
    assert table.kept().keys() == {m for m, s in cli.items() if s is None}
    if name == "rules":
        assert table.kept()["lm_head"] == f"skipped by recipe '{recipe}' rule 2 'lm_head'"
        assert cli["lm_head"] is None and cli["model.layers.1.mlp.down_proj"] == "int8"
    # the same codes and qparams on disk
    run("quantize", tmp_path / "llama", "-o", tmp_path / "cli", "--recipe", recipe, "-q")
    qkt.save_pretrained(qkt.convert(model), tmp_path / "py")
    ours, theirs = load_file(tmp_path / "py" / "model.safetensors"), {}
    for shard in (tmp_path / "cli").glob("*.safetensors"):
        theirs.update(load_file(shard))
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_a_rule_that_matches_nothing_is_refused_by_both_naming_it(tmp_path, run):
    save_tiny_llama(tmp_path / "llama")
    recipe = tmp_path / "typo.json"
    typo = r"model\.layer\.0\..*"
    recipe.write_text(json.dumps({"rules": [{"match": typo, "scheme": "skip"}]}))
    out = run("quantize", tmp_path / "llama", "-o", tmp_path / "q", "--recipe", recipe, expect=1)
    assert f"rule 1 '{typo}' matches no tensor" in out.stderr
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "llama").eval()
    with pytest.raises(ValueError, match="rule 1 'model.*matches no module"):
        qkt.prepare(model, qkt.load_recipe(recipe))
    searched = tmp_path / "searched.json"
    searched.write_text(json.dumps({"rules": [{"match": "down_proj", "scheme": "int8"}]}))
    out = run("quantize", tmp_path / "llama", "-o", tmp_path / "q", "--recipe", searched, expect=1)
    assert "it is found inside 'model.layers.0.mlp.down_proj.weight'" in out.stderr


@pytest.mark.parametrize(
    ("text", "message", "exit_code"),
    [
        ('{"schem": "int8"}', "unknown key 'schem'", 3),
        ('{"rules": [{"match": "(", "scheme": "int8"}]}', "is not a valid regular expression", 3),
        ('{"scheme": "int9"}', "scheme 'int9' is not one of", 1),
        ('{"rules": [{"match": "lm_head", "scheme": "q4-mix"}]}', "'q4-mix' is a preset", 1),
    ],
)
def test_both_refuse_the_same_malformed_recipes(
    tmp_path, run, make_checkpoint, text, message, exit_code
):
    make_checkpoint(tmp_path / "m.safetensors", torch.float32)
    recipe = tmp_path / "bad.json"
    recipe.write_text(text)
    out = run(
        "quantize", tmp_path / "m.safetensors", "-o", tmp_path / "q", "-r", recipe, expect=exit_code
    )
    assert message in out.stderr
    with pytest.raises(ValueError, match=message):
        qkt.load_recipe(recipe)


def test_activation_recipes_run_in_python_and_the_cli_says_why_not(tmp_path, run, make_checkpoint):
    make_checkpoint(tmp_path / "m.safetensors", torch.float32)
    recipe = tmp_path / "w8a8.json"
    recipe.write_text(json.dumps({"scheme": "W8A8"}))
    out = run("quantize", tmp_path / "m.safetensors", "-o", tmp_path / "q", "-r", recipe, expect=1)
    assert "'W8A8' quantizes input activations too" in out.stderr
    net = torch.nn.Sequential(torch.nn.Linear(16, 8))
    qkt.prepare(net, qkt.load_recipe(recipe))
    qkt.calibrate(net, [torch.randn(5, 16), torch.randn(3, 2, 16)])
    row = qkt.coverage(net).rows[0]
    assert (row.scheme, row.batches, row.tokens) == ("W8A8", 2, 11)
    every = qkt.recipe_from_text(json.dumps({"scheme": "int8"}))
    assert qkt.ModelRecipe(scheme="int8") == every
    names = qkt.model_recipe._core.activation_recipe_names()
    assert set(qkt.model_recipe.ACTIVATION_RECIPES) == set(names)
