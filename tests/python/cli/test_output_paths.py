"""Output-path rules: the tool never deletes or replaces what it did not write,
never follows its output into its input, and publishes only complete outputs.
Each case checks the exit code, the message, and that every byte the user had
is still there."""

import hashlib
import json
import os
import pathlib
import stat

import pytest
import torch


def snapshot(folder: pathlib.Path) -> dict:
    """Every file under `folder` (links as their target text) with its hash."""
    files = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            files[key] = "link:" + os.readlink(path)
        elif path.is_file():
            files[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            files[key] = "dir"
    return files


def temporaries(folder: pathlib.Path) -> list:
    return [p.name for p in folder.rglob("*") if ".partial" in p.name]


@pytest.fixture
def model_folder(tmp_path, make_checkpoint):
    """A checkpoint folder with a config, a tokenizer file and a sub-folder."""
    folder = tmp_path / "model"
    folder.mkdir()
    make_checkpoint(folder / "model.safetensors", torch.float32)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text("{}")
    return folder


def test_output_dot_inside_the_input_folder_deletes_nothing(tmp_path, model_folder, cli):
    import subprocess

    (model_folder / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    result = subprocess.run(
        [str(cli), "quantize", ".", "-o", ".", "--force"],
        cwd=model_folder,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert "is the input" in result.stderr
    assert snapshot(tmp_path) == before


def test_output_containing_the_input_is_refused(tmp_path, model_folder, run):
    (tmp_path / "unrelated.txt").write_text("keep me")
    before = snapshot(tmp_path)
    result = run("quantize", model_folder, "-o", tmp_path, "--force", expect=1)
    assert "contains the input" in result.stderr
    assert snapshot(tmp_path) == before


def test_output_inside_the_input_is_refused(tmp_path, model_folder, run):
    before = snapshot(tmp_path)
    result = run("quantize", model_folder, "-o", model_folder / "sub", expect=1)
    assert "lies inside the input folder" in result.stderr
    assert snapshot(tmp_path) == before


def test_input_named_through_dots_and_links_is_still_the_input(tmp_path, model_folder, run):
    (tmp_path / "alias").symlink_to(model_folder)
    before = snapshot(tmp_path)
    dotted = f"{model_folder}/../model/."
    assert "is the input" in run("quantize", model_folder, "-o", dotted, "-f", expect=1).stderr
    assert (
        "is the input"
        in run("quantize", tmp_path / "alias", "-o", model_folder, "-f", expect=1).stderr
    )
    assert (
        "symbolic link"
        in run("quantize", model_folder, "-o", tmp_path / "alias", "-f", expect=1).stderr
    )
    assert snapshot(tmp_path) == before


def test_file_output_equal_to_the_input_is_refused(tmp_path, make_checkpoint, run):
    src = tmp_path / "in.safetensors"
    make_checkpoint(src, torch.float32)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    for force in ([], ["--force"]):
        result = run("quantize", src, "-o", src, *force, expect=1)
        assert "is the input" in result.stderr
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest


def test_existing_unrelated_file_is_never_replaced(tmp_path, make_checkpoint, run):
    src = tmp_path / "in.safetensors"
    make_checkpoint(src, torch.float32)
    other = tmp_path / "other.safetensors"
    make_checkpoint(other, torch.float32, seed=1)  # a float checkpoint, not a quantkit output
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    before = snapshot(tmp_path)
    assert "pass --force" in run("quantize", src, "-o", notes, expect=1).stderr
    result = run("quantize", src, "-o", notes, "--force", expect=1)
    assert "not a checkpoint quantkit wrote" in result.stderr
    result = run("quantize", src, "-o", other, "--force", expect=1)
    assert "not a checkpoint quantkit wrote" in result.stderr
    assert snapshot(tmp_path) == before


def test_force_replaces_a_previous_quantkit_output(tmp_path, make_checkpoint, run):
    src = tmp_path / "in.safetensors"
    make_checkpoint(src, torch.float32)
    out = tmp_path / "out.safetensors"
    run("quantize", src, "-o", out, "-s", "int8")
    first = out.read_bytes()
    assert "pass --force" in run("quantize", src, "-o", out, "-s", "int4-g32", expect=1).stderr
    assert out.read_bytes() == first
    run("quantize", src, "-o", out, "-s", "int4-g32", "--force")
    assert out.read_bytes() != first
    assert temporaries(tmp_path) == []


def test_devices_and_fifos_are_never_outputs(tmp_path, make_checkpoint, run):
    src = tmp_path / "in.safetensors"
    make_checkpoint(src, torch.float32)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target in (pathlib.Path("/dev/null"), fifo):
        result = run("quantize", src, "-o", target, "--force", expect=1)
        assert "quantkit writes only regular files and folders" in result.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_users_partial_files_are_not_touched(tmp_path, make_checkpoint, model_folder, run):
    src = tmp_path / "in.safetensors"
    make_checkpoint(src, torch.float32)
    (tmp_path / "q.safetensors.partial").write_text("mine")
    (tmp_path / "out.partial").mkdir()
    (tmp_path / "out.partial" / "keep.txt").write_text("mine")
    run("quantize", src, "-o", tmp_path / "q.safetensors")
    run("quantize", model_folder, "-o", tmp_path / "out")
    assert (tmp_path / "q.safetensors.partial").read_text() == "mine"
    assert (tmp_path / "out.partial" / "keep.txt").read_text() == "mine"


def test_folder_output_with_trailing_slash_and_force(tmp_path, model_folder, run):
    out = f"{tmp_path / 'model-w4'}/"
    run("quantize", model_folder, "-o", out)
    assert "pass --force" in run("quantize", model_folder, "-o", out, expect=1).stderr
    run("quantize", model_folder, "-o", out, "--force", "-s", "int8")
    config = json.loads((tmp_path / "model-w4" / "config.json").read_text())
    assert config["quantization_config"]["quantkit"]["group_0"]["scheme"] == "int8"
    assert (tmp_path / "model-w4" / "1_Pooling" / "config.json").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_force_never_deletes_a_folder_quantkit_did_not_write(tmp_path, model_folder, run):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "cat.jpg").write_bytes(b"\xff\xd8")
    before = snapshot(tmp_path)
    result = run("quantize", model_folder, "-o", target, "--force", expect=1)
    assert "not a checkpoint quantkit wrote" in result.stderr
    assert snapshot(tmp_path) == before


def test_missing_parent_folder_is_named(tmp_path, make_checkpoint, run):
    src = tmp_path / "in.safetensors"
    make_checkpoint(src, torch.float32)
    result = run("quantize", src, "-o", tmp_path / "no" / "such" / "q.safetensors", expect=1)
    assert f"the folder '{tmp_path / 'no' / 'such'}'" in result.stderr
    assert "does not exist" in result.stderr


def test_symlinks_inside_the_input_are_copied_as_links(tmp_path, model_folder, run):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_bytes(bytes(1000))
    (model_folder / "linked").symlink_to(outside, target_is_directory=True)
    (model_folder / "vocab.txt").symlink_to(outside / "big.bin")
    run("quantize", model_folder, "-o", tmp_path / "out")
    assert (tmp_path / "out" / "linked").is_symlink()
    assert os.readlink(tmp_path / "out" / "linked") == str(outside)
    assert (tmp_path / "out" / "vocab.txt").is_symlink()


def test_requantizing_a_quantized_folder_is_refused(tmp_path, model_folder, run):
    run("quantize", model_folder, "-o", tmp_path / "q")
    result = run("quantize", tmp_path / "q", "-o", tmp_path / "qq", expect=1)
    assert "is already quantized" in result.stderr
    assert "config.json" in result.stderr
    assert not (tmp_path / "qq").exists()
    run("quantize", model_folder / "model.safetensors", "-o", tmp_path / "q.safetensors")
    result = run(
        "quantize", tmp_path / "q.safetensors", "-o", tmp_path / "qq.safetensors", expect=1
    )
    assert "is already quantized" in result.stderr


def test_non_object_config_fails_before_anything_is_written(tmp_path, model_folder, run):
    (model_folder / "config.json").write_text("[1, 2]")
    result = run("quantize", model_folder, "-o", tmp_path / "out", expect=3)
    assert "holds JSON array, not an object" in result.stderr
    assert not (tmp_path / "out").exists() and temporaries(tmp_path) == []
