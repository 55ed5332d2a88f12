"""The `quantkit` console script: one command whose checkpoint subcommands run
the C++ tool shipped in the wheel (no PATH search) and whose demo / results
subcommands run the separately installed examples."""

import os
import subprocess
import sys

import pytest
from quantkit.__main__ import main, native_tool


def run_module(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "quantkit", *args], capture_output=True, text=True, env=env
    )


def test_the_wheel_ships_the_checkpoint_tool():
    tool = native_tool()
    assert tool.is_file() and os.access(tool, os.X_OK)
    with open(tool, "rb") as f:
        assert f.read(4) == b"\x7fELF"


def test_checkpoint_commands_run_the_shipped_tool_whatever_path_holds():
    env = dict(os.environ, PATH="/nonexistent")
    result = run_module("schemes", env=env)
    assert result.returncode == 0, result.stderr
    assert "int4-g128" in result.stdout and "nvfp4" in result.stdout


def test_unknown_and_missing_commands_are_usage_errors():
    result = run_module("frobnicate")
    assert result.returncode == 2 and "unknown command 'frobnicate'" in result.stderr
    bare = run_module()
    assert bare.returncode == 2 and "quantize" in bare.stderr and "demo" in bare.stderr
    helped = run_module("--help")
    assert helped.returncode == 0 and "report" in helped.stdout


def test_example_commands_say_how_to_install_the_examples(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "quantkit_examples.__main__", None)  # import fails
    assert main(["demo"]) == 2
    assert "pip install examples/python" in capsys.readouterr().err


def test_example_commands_reach_the_examples_when_installed():
    with pytest.raises(SystemExit) as stop:
        main(["results", "--help"])
    assert stop.value.code == 0
