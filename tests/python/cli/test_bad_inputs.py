"""Bad inputs get a named error and an exit code, never a crash or a silent
success: incomplete checkpoints, hostile names, corrupted quantized files,
thread counts, interrupted runs and full disks."""

import json
import os
import pathlib
import shutil
import signal
import struct
import subprocess
import time

import pytest
import torch
from safetensors.torch import save_file

# -- helpers: safetensors files built byte by byte -----------------------------

BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


def read_safetensors(path: pathlib.Path) -> tuple[dict, dict, dict]:
    """(tensor entries, metadata, raw bytes per tensor)."""
    blob = path.read_bytes()
    (length,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + length])
    metadata = header.pop("__metadata__", {})
    data = {
        name: blob[8 + length + e["data_offsets"][0] : 8 + length + e["data_offsets"][1]]
        for name, e in header.items()
    }
    return header, metadata, data


def write_safetensors(path: pathlib.Path, entries: dict, metadata: dict, data: dict) -> None:
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name, entry in entries.items():
        header[name] = {
            "dtype": entry["dtype"],
            "shape": entry["shape"],
            "data_offsets": [offset, offset + len(data[name])],
        }
        chunks.append(data[name])
        offset += len(data[name])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def with_tensor_changed(src: pathlib.Path, dst: pathlib.Path, name: str, **changes) -> None:
    """A copy of `src` where tensor `name` has another dtype / shape (its bytes
    resized to match, so the file itself stays valid safetensors)."""
    entries, metadata, data = read_safetensors(src)
    entry = dict(entries[name], **changes)
    numel = 1
    for d in entry["shape"]:
        numel *= d
    size = numel * BITS[entry["dtype"]] // 8
    data[name] = (data[name] * (size // max(len(data[name]), 1) + 1))[:size]
    entries[name] = entry
    write_safetensors(dst, entries, metadata, data)


def without_tensor(src: pathlib.Path, dst: pathlib.Path, name: str) -> None:
    entries, metadata, data = read_safetensors(src)
    del entries[name]
    write_safetensors(dst, entries, metadata, data)


# -- incomplete or inconsistent checkpoints ------------------------------------


def sharded(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir()
    save_file({"a.weight": torch.randn(8, 64)}, str(folder / "model-1.safetensors"))
    save_file({"b.weight": torch.randn(8, 64)}, str(folder / "model-2.safetensors"))
    index = {
        "metadata": {},
        "weight_map": {"a.weight": "model-1.safetensors", "b.weight": "model-2.safetensors"},
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


def test_shard_missing_from_the_index_is_refused(tmp_path, run):
    folder = sharded(tmp_path / "m")
    save_file({"c.weight": torch.randn(8, 64)}, str(folder / "model-3.safetensors"))
    result = run("quantize", folder, "-o", tmp_path / "out", expect=3)
    assert "'model-3.safetensors' lies in the checkpoint folder" in result.stderr
    assert not (tmp_path / "out").exists()


def test_tensor_missing_from_the_index_is_refused(tmp_path, run):
    folder = sharded(tmp_path / "m")
    save_file(
        {"b.weight": torch.randn(8, 64), "extra.weight": torch.randn(8, 64)},
        str(folder / "model-2.safetensors"),
    )
    result = run("quantize", folder, "-o", tmp_path / "out", expect=3)
    assert "holds tensor 'extra.weight'" in result.stderr


def test_empty_checkpoints_are_refused(tmp_path, run):
    folder = sharded(tmp_path / "m")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {}}))
    assert "names no tensor" in run("quantize", folder, "-o", tmp_path / "o", expect=3).stderr
    empty = tmp_path / "empty.safetensors"
    write_safetensors(empty, {}, {}, {})
    assert "holds no tensor" in run("quantize", empty, "-o", tmp_path / "o.st", expect=3).stderr


def test_hostile_names_are_refused_with_a_message(tmp_path, run):
    cases = {
        "long": ("x" * 100_000 + ".weight", "the limit is 4096"),
        "nul": ("a\u0000b.weight", "holds a NUL character"),
    }
    for label, (name, message) in cases.items():
        path = tmp_path / f"{label}.safetensors"
        write_safetensors(path, {name: {"dtype": "F32", "shape": [2, 32]}}, {}, {name: bytes(256)})
        for command in (
            ["inspect", path],
            ["quantize", path, "-o", tmp_path / "o.st"],
            ["quantize", path, "-o", tmp_path / "o.st", "--include", r"x+\.weight"],
        ):
            result = run(*command, expect=3)
            assert message in result.stderr, (label, result.stderr)
    padded = tmp_path / "padded.safetensors"
    padded.write_bytes(struct.pack("<Q", 8) + b"{}" + bytes(6))
    assert "holds a NUL byte" in run("inspect", padded, expect=3).stderr


def test_shard_name_with_nul_is_refused(tmp_path, run):
    folder = sharded(tmp_path / "m")
    index = {"weight_map": {"a.weight": "model-1.safetensors\u0000x"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert "NUL character" in run("inspect", folder, expect=3).stderr


def test_scale_that_underflows_names_the_tensor(tmp_path, run):
    src = tmp_path / "tiny.safetensors"
    save_file({"tiny.weight": (torch.randn(4, 64) * 3e-6).half()}, str(src))
    for scheme in ("fp8", "fp8-channel"):
        result = run("quantize", src, "-o", tmp_path / "q.safetensors", "-s", scheme, expect=1)
        assert "tensor 'tiny.weight'" in result.stderr and "underflows to 0" in result.stderr
        assert not (tmp_path / "q.safetensors").exists()


# -- corrupted quantized files: inspect and report never crash ------------------

CORRUPTIONS = [
    ("_scale", {"dtype": "C64"}),
    ("_scale", {"dtype": "U64"}),
    ("_scale", {"dtype": "U16"}),
    ("_scale", {"dtype": "F4"}),
    ("_scale", {"dtype": "F8_E5M2"}),
    ("_scale", {"shape": [1]}),
    ("_packed", {"dtype": "U8"}),
    ("_packed", {"shape": [1, 1]}),
    ("_zero_point", {"dtype": "F32"}),
    ("_shape", {"dtype": "I32"}),
    ("", {"dtype": "F32"}),
    ("_global_scale", {"dtype": "F16"}),
]


@pytest.mark.parametrize(
    "scheme",
    ["int4-g32-asym", "int8", "fp8", "mxfp4", "nvfp4", "mxfp8", "stretched3-g32", "int2-g32-asym"],
)
def test_corrupted_quantized_files_get_errors_not_crashes(
    tmp_path, cli, run, make_checkpoint, scheme
):
    src = tmp_path / "in.safetensors"
    make_checkpoint(src, torch.float32)
    good = tmp_path / "q.safetensors"
    run("quantize", src, "-o", good, "-s", scheme, "-q")
    entries, _, _ = read_safetensors(good)
    weight = "model.layers.0.mlp.up_proj.weight"
    tried = 0
    for suffix, change in [*CORRUPTIONS, ("_scale", None), ("_packed", None)]:
        name = weight + suffix
        if name not in entries or (
            change is not None and all(entries[name][k] == v for k, v in change.items())
        ):
            continue
        bad = tmp_path / "bad.safetensors"
        if change is None:
            without_tensor(good, bad, name)
        else:
            with_tensor_changed(good, bad, name, **change)
        tried += 1
        for command in (["inspect", bad], ["report", src, bad]):
            result = subprocess.run([str(cli), *map(str, command)], capture_output=True, text=True)
            assert result.returncode in (0, 1, 3), (
                suffix,
                change,
                result.returncode,
                result.stderr,
            )
            if command[0] == "report":
                assert result.returncode == 3, (suffix, change, result.stdout, result.stderr)
                assert weight in result.stderr
    assert tried >= 4


# -- resource bounds -----------------------------------------------------------


def test_thread_counts_are_bounded_with_a_readable_message(tmp_path, run, make_checkpoint):
    src = tmp_path / "in.safetensors"
    make_checkpoint(src, torch.float32)
    for threads in ("1000000", "-1"):
        result = run("quantize", src, "-o", tmp_path / "o.st", "-t", threads, expect=2)
        assert "1024" in result.stderr and len(result.stderr) < 400, result.stderr
    run("quantize", src, "-o", tmp_path / "o.st", "-t", "1024", "-q")


def test_header_with_twenty_thousand_tensors_is_read(tmp_path, run):
    count = 20_000
    entries = {f"model.layers.{i}.weight": {"dtype": "F32", "shape": [1]} for i in range(count)}
    data = {name: bytes(4) for name in entries}
    path = tmp_path / "many.safetensors"
    write_safetensors(path, entries, {}, data)
    result = run("inspect", path)
    assert f"total: {count} tensors" in result.stdout


# -- interrupted runs and full disks -------------------------------------------


def big_checkpoint(path: pathlib.Path) -> None:
    g = torch.Generator().manual_seed(0)
    save_file(
        {f"layer.{i}.weight": torch.randn(1024, 4096, generator=g) for i in range(16)}, str(path)
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_interrupted_run_leaves_no_output_and_no_temporaries(tmp_path, cli, signum, kind):
    src_folder = tmp_path / "model"
    src_folder.mkdir()
    big_checkpoint(src_folder / "model.safetensors")
    src = src_folder if kind == "folder" else src_folder / "model.safetensors"
    before = (src_folder / "model.safetensors").read_bytes()
    out_dir = tmp_path / "out_dir"
    out_dir.mkdir()
    out = out_dir / ("q" if kind == "folder" else "q.safetensors")
    proc = subprocess.Popen(
        [str(cli), "quantize", str(src), "-o", str(out), "-t", "1", "-q", "-s", "int4-g32-asym"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(".partial" in p.name for p in out_dir.iterdir()):  # writing has begun
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signum, stderr
    assert "nothing was written" in stderr
    assert list(out_dir.iterdir()) == []
    assert (src_folder / "model.safetensors").read_bytes() == before


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only): where a write runs out of space."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root: disk-full cases not run")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): disk-full cases not run")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_fails_cleanly(tmp_path, run, small_disk, make_checkpoint):
    src = tmp_path / "in.safetensors"
    save_file({"w.weight": torch.randn(2048, 1024)}, str(src))  # 8 MB; int8 output 2 MB
    result = run("quantize", src, "-o", small_disk / "q.safetensors", "-s", "int8", expect=4)
    assert "No space left on device" in result.stderr
    assert list(small_disk.iterdir()) == []
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(src, folder / "model.safetensors")
    (folder / "config.json").write_text("{}")
    result = run("quantize", folder, "-o", small_disk / "q", "-s", "int8", expect=4)
    assert list(small_disk.iterdir()) == []
