#!/usr/bin/env python3
"""Regenerate the README's config table and CLI help from the code, so the two cannot drift.

    python scripts/docs.py          rewrite README.md in place
    python scripts/docs.py --check  exit 1 if README.md is out of date (the tests call this)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from click.testing import CliRunner

from reportgen.cli import main
from reportgen.config import describe

README = Path(__file__).resolve().parent.parent / "README.md"


def config_table() -> str:
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for key, default, help_text in describe():
        rows.append(f"| `{key}` | `{default}` | {help_text} |")
    return "\n".join(rows)


def cli_help() -> str:
    blocks = []
    runner = CliRunner()
    commands = [[]] + [[name] for name in sorted(main.commands)]  # type: ignore[attr-defined]
    for args in commands:
        result = runner.invoke(main, [*args, "--help"], prog_name="reportgen",
                               terminal_width=100)
        command = " ".join([*args, "--help"])
        blocks.append(f"```\n$ reportgen {command}\n{result.output.rstrip()}\n```")
    return "\n\n".join(blocks)


def render(text: str) -> str:
    for name, body in (("config-table", config_table()), ("cli-help", cli_help())):
        pattern = re.compile(rf"(<!-- {name}:[^\n]*-->\n).*?(<!-- /{name} -->)", re.S)
        text = pattern.sub(lambda m, b=body: f"{m.group(1)}{b}\n{m.group(2)}", text)
    return text


def main_() -> int:
    current = README.read_text(encoding="utf-8")
    fresh = render(current)
    if "--check" in sys.argv:
        if fresh != current:
            print("README.md is out of date: run python scripts/docs.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main_())
