"""The installed command (cli.entry): exit codes and output survive the fast exit."""

from __future__ import annotations

import subprocess
import sys


def reportgen(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "reportgen", *args], capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_output_is_flushed_and_exit_code_is_zero():
    result = reportgen("--version")
    assert result.returncode == 0
    assert "reportgen" in result.stdout and "version" in result.stdout


def test_bad_input_exits_2_with_one_line(tmp_path):
    result = reportgen("run", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "missing.csv" in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_exit_leaves_the_runs_objects_to_reference_counting(tmp_path):
    """entry() freezes what the command made (gc.freeze): the interpreter's exit then does not
    collect it generation by generation; atexit handlers still run after it."""
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count(), flush=True))\n"
            "from reportgen.cli import entry\n"
            "sys.argv = ['reportgen', '--version']\n"
            "entry()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "version" in lines[0]
    assert lines[-1].startswith("frozen ") and int(lines[-1].split()[1]) > 10_000


def test_usage_error_keeps_clicks_exit_code(tmp_path):
    result = reportgen("run", "--k", "many")
    assert result.returncode == 2
    assert "Invalid value for '--k'" in result.stderr
