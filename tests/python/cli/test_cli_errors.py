"""Every malformed input and bad request gets its own message, a non-zero
exit code and no output file."""

import json
import struct

import pytest
import torch


def write_raw(path, header: dict | bytes, data: bytes, length: int | None = None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)


GOOD = {"w.weight": {"dtype": "F32", "shape": [2, 32], "data_offsets": [0, 256]}}


def corrupt_cases():
    def with_entry(**changes):
        entry = dict(GOOD["w.weight"], **changes)
        return {"w.weight": entry}

    return {
        "truncated": (b"\x10\x00", None, None, "too short for the 8-byte header length"),
        "length past EOF": (GOOD, bytes(256), 10_000, "runs past the end of the file"),
        "overlapping": (
            {**GOOD, "b": {"dtype": "F32", "shape": [2], "data_offsets": [248, 256]}},
            bytes(256),
            None,
            "overlap",
        ),
        "unknown dtype": (with_entry(dtype="Q4_K"), bytes(256), None, "unknown dtype 'Q4_K'"),
        "shape/bytes mismatch": (with_entry(shape=[3, 32]), bytes(256), None, "needs 384 bytes"),
        "non-UTF-8 name": (
            json.dumps(GOOD).encode().replace(b"w.weight", b"w.\xffeight"),
            bytes(256),
            None,
            "not valid UTF-8",
        ),
        "truncated data": (GOOD, bytes(100), None, "run past the end of the data buffer"),
    }


@pytest.mark.parametrize("case", list(corrupt_cases()))
def test_corrupt_input_is_rejected_without_output(tmp_path, run, case):
    header, data, length, message = corrupt_cases()[case]
    src = tmp_path / "bad.safetensors"
    if data is None:
        src.write_bytes(header)
    else:
        write_raw(src, header, data, length)
    out = tmp_path / "out.safetensors"
    result = run("quantize", src, "-o", out, expect=3)
    assert message in result.stderr
    assert not out.exists() and not (tmp_path / "out.safetensors.partial").exists()
    assert message in run("inspect", src, expect=3).stderr


def test_bad_requests_name_the_problem(tmp_path, run, make_checkpoint):
    make_checkpoint(tmp_path / "in.safetensors", torch.float32)
    out = tmp_path / "out.safetensors"
    cases = {
        ("--scheme", "int5"): "scheme 'int5' is not one of",
        (
            "--scheme",
            "int4-g128",
            "--embeddings",
        ): "tensor 'model.embed_tokens.weight' has 64 columns, not a multiple",
        ("--include", "(["): "--include '([' is not a valid regular expression",
        ("--override", "proj"): "--override 'proj' must be REGEX=SCHEME",
    }
    for args, message in cases.items():
        result = run("quantize", tmp_path / "in.safetensors", "-o", out, *args, expect=1)
        assert message in result.stderr, result.stderr
        assert not out.exists()
    assert (
        "no such file or folder"
        in run("quantize", tmp_path / "missing", "-o", out, expect=4).stderr
    )
    assert "cannot open" in run("inspect", tmp_path / "missing", expect=4).stderr
    run("quantize", tmp_path / "in.safetensors", expect=2)  # -o is required: a usage error


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, run, make_checkpoint):
    make_checkpoint(tmp_path / "in.safetensors", torch.bfloat16)
    out = tmp_path / "out.safetensors"
    result = run(
        "quantize",
        tmp_path / "in.safetensors",
        "-o",
        out,
        "-s",
        "int4-g32",
        "--override",
        ".*down_proj=int8",
        "--dry-run",
    )
    lines = {
        line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("model.")
    }
    assert " int4-g32 " in lines["model.layers.0.mlp.up_proj.weight"]
    assert " int8 " in lines["model.layers.0.mlp.down_proj.weight"]
    assert "keep (embedding" in lines["model.embed_tokens.weight"]
    assert "keep (1-D)" in lines["model.norm.weight"]
    assert not out.exists()


def test_inspect_shows_detected_quantization(tmp_path, run, make_checkpoint):
    make_checkpoint(tmp_path / "in.safetensors", torch.float16)
    run(
        "quantize",
        tmp_path / "in.safetensors",
        "-o",
        tmp_path / "q.safetensors",
        "-s",
        "nvfp4",
        "-q",
    )
    text = run("inspect", tmp_path / "q.safetensors").stdout
    assert "model.layers.0.mlp.up_proj.weight_packed" in text and "U8" in text
    assert "quantized weights (quantkit" in text and "nvfp4" in text
    assert "no quantization detected" in run("inspect", tmp_path / "in.safetensors").stdout
    assert "mxfp4" in run("schemes").stdout
