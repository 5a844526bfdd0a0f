"""The top-level CLI: every command is reachable, documents itself, and fails cleanly."""

import subprocess
import sys

import pytest

from lenet_edge.cli import COMMANDS, main


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "lenet_edge", *args], capture_output=True, text=True, timeout=120
    )


def test_top_level_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_real_help(name, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: lenet-edge " + name)
    # A real description, not just the usage line and the options list.
    assert len(out.splitlines()) > 5


def test_unknown_command_is_a_clean_error():
    result = run_cli("frobnicate")
    assert result.returncode != 0
    assert "No such command" in result.stderr
    assert "Traceback" not in result.stderr
