"""The time limit of a command (limits.seconds): past it the command stops with one line.

The other limits in [limits] are checked where the input is read (load.py); time is the one
that no single stage can check, so the command line sets an alarm around the whole run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from .errors import LimitError


@contextmanager
def deadline(seconds: int, what: str = "the run") -> Iterator[None]:
    """Raise LimitError in the main thread once ``seconds`` have passed.

    Only the main thread receives signals: elsewhere (a library caller's worker thread) this
    does nothing, and the caller bounds its own time. A failed run writes nothing either way:
    output moves the finished folder into place only at the very end.
    """
    if threading.current_thread() is not threading.main_thread() or \
            not hasattr(signal, "setitimer"):
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        raise LimitError(f"{what} took longer than limits.seconds = {seconds:,} s",
                         hint="raise seconds under [limits] in the config, or give a smaller "
                              "table")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
