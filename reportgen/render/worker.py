"""The render worker: one spawned process that exports the charts and makes the PDF and the email
while the run's own process writes the segments, the JSON, the model and the HTML. Standard
library only (concurrent.futures, multiprocessing's spawn start method).

Why: the machine has two cores, and vl-convert (1.9) holds the GIL while it converts, so in one
process the chart exports (~2 s at 1 M customers, with the JS engine's warm-up) and WeasyPrint
(~1.8 s) take turns with the segments' writing (~1.5-2 s), the model file and the HTML. In a
process of their own they run on the second core. README "Performance" has the measurements.

- spawn, never fork: the worker is a fresh interpreter, so it inherits no threads (pyarrow's,
  OpenMP's), locks or vl-convert engine from the run's process. It imports only the render
  side (WeasyPrint, vl-convert, Jinja; no pandas, no scikit-learn), gets the Report by pickle
  and returns bytes: it never writes a file, so the run's folder is written by one process and
  stays all or nothing. Only the command line uses it (``allow``, called by ``cli.entry``):
  a spawned interpreter imports the parent's main module again, which ``python -m reportgen``
  and the ``reportgen`` script guard, but a user's script calling ``reportgen.run`` at its
  top level without ``if __name__ == "__main__":`` would be run again in the worker, its
  table read a second time. ``reportgen.run`` from a library stays in one process (the same
  bytes).
- Its chart exports are made in the order the run's process would make them, from a fresh JS
  engine: Vega numbers clip paths per engine, so the SVGs are the same bytes. The warm-up
  (``_warm``) converts nothing through Vega for that reason; it imports and loads templates.
- It ends with the run: ``close()`` stops it (SIGTERM) once its result is in, or at once when
  the run fails (SIGTERM and Ctrl-C included). It watches its parent, so a parent killed
  outright (SIGKILL) takes it along: no orphan is left holding memory or a pipe.
- A broken pool (the worker killed, or unable to start) is not the run's failure: the caller
  does the work in its own process (``BrokenProcessPool``). An error of the work itself (a
  chart vl-convert rejects, a user template WeasyPrint refuses) comes through as it is.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..report import Report

log = logging.getLogger("reportgen")

PR_SET_PDEATHSIG = 1  # linux/prctl.h

_allowed = False  # whether this process's runs start a worker: see ``allow``


def allow() -> None:
    """Let the runs of this process use a render worker. The command line calls it: its main
    module (``reportgen.__main__``, the ``reportgen`` script) is safe to spawn from, where a
    library caller's may not be (see the module's docstring)."""
    global _allowed
    _allowed = True


def allowed() -> bool:
    """Whether ``allow`` was called in this process."""
    return _allowed


@dataclass
class Rendered:
    """What the worker made: file name -> bytes (report.pdf, email.html, email.txt and the
    email's images), the email's manifest entry, seconds per step and the worker's peak
    resident memory (MB)."""

    files: dict[str, bytes] = field(default_factory=dict)
    email: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0


def _dies_with_parent() -> bool:
    """Whether the kernel now kills this process when its parent dies (Linux's
    PR_SET_PDEATHSIG, asked through the C library's prctl)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG,
                                                            signal.SIGKILL) == 0)
    except (OSError, AttributeError):
        return False


def _end() -> None:
    """End this process at once, as PR_SET_PDEATHSIG would: the worker holds nothing to save
    (it writes no file), and a thread cannot end its process otherwise."""
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))


def _started(gc_thresholds: tuple[int, int, int]) -> None:
    """In the worker, first thing: the parent's garbage collector thresholds (the CLI's make
    WeasyPrint's layout ~12 % faster); Ctrl-C is the parent's to handle (it stops the worker);
    and the worker ends when the parent is gone: on Linux the kernel kills it
    (PR_SET_PDEATHSIG, whatever the worker is doing); elsewhere a thread waiting on the
    parent's sentinel does, as soon as it gets the GIL."""
    gc.set_threshold(*gc_thresholds)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if _dies_with_parent():
        if os.getppid() != parent.pid:  # the parent died before prctl took effect
            _end()
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])  # readable once the parent is gone
        _end()

    threading.Thread(target=watch, name="reportgen-watch-parent", daemon=True).start()


# What warms vl-convert's JS engine (0.4-0.5 s on its first call): a Vega-Lite spec compiled
# to Vega, not rendered. A rendered chart that clips would move the numbers Vega gives clip
# paths (clip0, clip1, ...) in every later SVG of the process; compiling runs no Vega view.
_WARM_SPEC = {"mark": "point", "data": {"values": [{"a": 1}]},
              "encoding": {"x": {"field": "a", "type": "quantitative"}}}


HELD = {signal.SIGTERM, signal.SIGINT}


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT held back while the worker process starts, then delivered: their
    handlers (the CLI turns SIGTERM into an exception) run after the start, not in the middle
    of writing the new process's start-up data. Only in the main thread, where handlers run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    # signal.signal runs a handler already due before it swaps: nothing has started then
    previous = {signum: signal.signal(signum, hold) for signum in HELD}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        for due in caught:
            signal.raise_signal(due)


def _warm(template_dir: Path | None) -> float:
    """Load what the PDF and the email need before the Report exists: WeasyPrint, Pillow, the
    CSS inliner, the templates and vl-convert's JS engine (``_WARM_SPEC``). Returns the
    seconds it took."""
    start = time.perf_counter()
    import css_inline  # noqa: F401
    import PIL.Image  # noqa: F401
    import vl_convert
    import weasyprint  # noqa: F401

    from .email import EMAIL_TEMPLATE, EMAIL_TEXT_TEMPLATE
    from .environment import environment
    from .pdf import PDF_TEMPLATE

    env = environment(template_dir)
    for name in (PDF_TEMPLATE, EMAIL_TEMPLATE, EMAIL_TEXT_TEMPLATE):
        env.get_template(name)
    vl_convert.vegalite_to_vega(_WARM_SPEC)
    return time.perf_counter() - start


def render_files(report: Report, formats: list[str], template_dir: Path | None) -> Rendered:
    """report.pdf and the email's files as ``formats`` asks, from the Report alone: the charts
    exported in the order ``output.ChartExports`` exports them (the print exports in page
    order, then the email's PNGs, rasterised from the print SVGs where there are some), then
    the PDF, then the email. What the worker runs; also correct in any process."""
    from .email import email_images, render_email
    from .pdf import chart_images, print_exports, render_pdf

    out = Rendered()
    start = time.perf_counter()
    exported = print_exports(report) if "pdf" in formats else {}
    email_png = email_images(report, exported) if "email" in formats else {}
    out.timings["charts"] = round(time.perf_counter() - start, 4)
    if "pdf" in formats:
        start = time.perf_counter()
        out.files["report.pdf"] = render_pdf(report, template_dir,
                                             images=chart_images(report, exported))
        out.timings["render_pdf"] = round(time.perf_counter() - start, 4)
    if "email" in formats:
        start = time.perf_counter()
        email = render_email(report, email_png, template_dir)
        out.files.update(email.files())
        out.email = email.manifest()
        out.timings["render_email"] = round(time.perf_counter() - start, 4)
    out.peak_rss_mb = _peak_rss_mb()
    return out


def _peak_rss_mb() -> float:
    """This process's peak resident memory in MB: VmHWM, which starts afresh at exec (the
    worker's ru_maxrss starts at its parent's RSS when it was forked to exec the interpreter,
    PERFORMANCE.md trap 8); ru_maxrss where there is no /proc."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


class RenderWorker:
    """One worker process: ``warm`` readies it, ``render`` hands it a Report, ``close`` ends
    it. The process starts with the first of these (not when the object is made). Usable as a
    context manager."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_started, initargs=(gc.get_threshold(),))
        self._warm: Future[float] | None = None
        self._broken = False
        # the process the first submit starts: ours to stop in close()
        self._processes: list[multiprocessing.process.BaseProcess] = []

    def _submit(self, fn: Any, *args: Any) -> Future[Any]:
        if self._processes:
            return self._pool.submit(fn, *args)
        before = set(multiprocessing.active_children())
        # The first submit starts the process: SIGTERM and Ctrl-C wait until it has its
        # start-up data (an exception raised in the middle of writing it left the new
        # interpreter to print "EOFError: Ran out of input" after the run had ended).
        with _signals_held():
            future = self._pool.submit(fn, *args)
        self._processes = [p for p in multiprocessing.active_children() if p not in before]
        return future

    def warm(self, template_dir: Path | None = None) -> None:
        """Start the process and load the renderers in it (``_warm``), on the core this
        process leaves free. A process that cannot be started (the system's limit on
        processes, memory) is not the run's failure: ``render`` then raises
        BrokenProcessPool and the caller does the work itself."""
        if self._warm is None and not self._broken:
            try:
                self._warm = self._submit(_warm, template_dir)
            except OSError as exc:
                log.warning("the render worker could not start (%s)", exc)
                self._broken = True

    def render(self, report: Report, formats: list[str], template_dir: Path | None
               ) -> Future[Rendered]:
        """``render_files`` in the worker."""
        if self._broken:
            raise BrokenProcessPool("the render worker could not start")
        return self._submit(render_files, report, formats, template_dir)

    @property
    def pids(self) -> list[int]:
        """The worker's process id (none before it has started)."""
        return [p.pid for p in self._processes if p.pid is not None]

    def close(self) -> None:
        """Stop the worker now: by the time a run closes it its result has been collected (or
        the run failed and needs none), so nothing is lost, and stopping it spares waiting for
        its interpreter to tear down."""
        for process in self._processes:
            with contextlib.suppress(OSError, ValueError):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for process in self._processes:
            with contextlib.suppress(ValueError):
                process.join()

    def __enter__(self) -> RenderWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
