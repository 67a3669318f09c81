"""User-facing errors: what went wrong, where, and how to fix it.

The CLI turns every ReportgenError into a one-line ``Error: ...`` and exit code 2.
Anything else is a bug (exit code 1).
"""

from __future__ import annotations

import re

# Characters a terminal acts on instead of showing: C0/C1 controls (ESC starts a colour,
# a title change or worse), DEL, line and paragraph separators, and the bidi overrides that
# reorder what is shown. Data (a column name, a file name) reaches the terminal through
# printable().
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e"
                          r"\u2066-\u2069]")


def printable(text: str) -> str:
    """text with every control character shown as an escape (\\x1b), tabs and newlines
    kept."""
    return _UNPRINTABLE.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"),
                            text)


class ReportgenError(Exception):
    """Base class for problems the user can fix (bad input, bad config)."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        row: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.column = column
        self.row = row
        self.hint = hint

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        text = f"{': '.join(where)}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        return printable(" ".join(text.split()))  # always one line, nothing a terminal runs


class InputError(ReportgenError):
    """The customer table cannot be read or does not contain what is needed."""


class ConfigError(ReportgenError):
    """The configuration file or the command-line options are invalid."""


class SegmentationError(ReportgenError):
    """The table cannot be segmented as asked (too few rows, constant features, bad k)."""


class MailError(ReportgenError):
    """The email summary cannot be built from the run folder or sent over SMTP."""


class HistoryError(ReportgenError):
    """The series' history (database or a previous run's files) cannot be read or written."""


class ModelError(ReportgenError):
    """A saved model or its decisions are missing, unreadable, or do not fit the table."""


class LimitError(InputError):
    """The input is larger than a limit in [limits] allows (the message names the limit)."""


class RefusedResourceError(ReportgenError):
    """The PDF renderer was asked for something outside data: URIs and the template folders."""
