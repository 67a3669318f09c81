"""User-facing errors: what went wrong, where, and how to fix it.

The CLI turns every ReportgenError into a one-line ``Error: ...`` and exit code 2.
Anything else is a bug (exit code 1).
"""

from __future__ import annotations


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
        return " ".join(text.split())  # always one line


class InputError(ReportgenError):
    """The customer table cannot be read or does not contain what is needed."""


class ConfigError(ReportgenError):
    """The configuration file or the command-line options are invalid."""


class SegmentationError(ReportgenError):
    """The table cannot be segmented as asked (too few rows, constant features, bad k)."""


class MailError(ReportgenError):
    """The email summary cannot be built from the run folder or sent over SMTP."""


class ModelError(ReportgenError):
    """A saved model or its decisions are missing, unreadable, or do not fit the table."""


class RefusedResourceError(ReportgenError):
    """The PDF renderer was asked for something outside data: URIs and the template folders."""
