"""The scheduled-job examples in examples/: the GitHub Actions workflow is a valid workflow,
every shell step and the cron script parse, (and, once the monthly options exist, every
reportgen command in them is one the command line accepts)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
