"""Progress of the long stages (k searched, rows written), for a person at a terminal.

A stage calls ``update(stage, done, total, unit)`` as it goes; that is all it knows. The CLI
decides where it shows: on a terminal one live line on stderr, rewritten in place, with an
estimate of the time left (``LiveLine``); in a CI log or any other non-terminal stderr
nothing, since the per-stage "done in" lines already give one line per stage; with ``-q``
nothing at all. A library caller sees nothing unless it adds a handler to the
"reportgen.progress" logger.
"""

from __future__ import annotations

import logging
import time
from typing import IO

log = logging.getLogger("reportgen.progress")
log.propagate = False  # its own handler (the CLI's, on a terminal), never the stage lines'
log.addHandler(logging.NullHandler())

_started: dict[str, float] = {}


def update(stage: str, done: int, total: int, unit: str) -> None:
    """done of total units of stage (``update("segment", 3, 9, "k")``)."""
    if not log.isEnabledFor(logging.INFO):
        return
    now = time.perf_counter()
    if done <= 0 or stage not in _started:
        _started[stage] = now
    elapsed = now - _started[stage]
    left = elapsed / done * (total - done) if 0 < done < total else 0.0
    log.info("%s: %s of %s %s", stage, f"{done:,}", f"{total:,}", unit,
             extra={"progress": (stage, done, total, unit, left)})
    if done >= total:
        _started.pop(stage, None)


class LiveLine(logging.Handler):
    """Writes each progress record over the previous one (carriage return, clear line)."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(logging.INFO)
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        stage, done, total, unit, left = record.__dict__.get(
            "progress", ("", 0, 0, "", 0.0))
        estimate = f", about {left:.0f} s left" if left >= 1 else ""
        text = f"reportgen: {stage}: {done:,} of {total:,} {unit}{estimate}"
        try:
            self.stream.write("\r\033[K" + text if done < total else "\r\033[K")
            self.stream.flush()
        except (OSError, ValueError):
            pass


class ClearingFormatter(logging.Formatter):
    """The stage lines on a terminal: each first clears the live progress line."""

    def format(self, record: logging.LogRecord) -> str:
        return "\r\033[K" + super().format(record)


def install(stream: IO[str], quiet: bool) -> logging.Handler | None:
    """The live line on stream when it is a terminal and not quiet; None otherwise."""
    log.handlers[:] = [logging.NullHandler()]
    log.setLevel(logging.WARNING)
    if quiet or not stream.isatty():
        return None
    handler = LiveLine(stream)
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    return handler
