"""The print worker: one spawned process that exports the charts and lays out the PDF while this
process writes the rest of the run. Standard library only (concurrent.futures).

Why: the machine has two cores, and after the report is built, chart export (vl-convert) and
the PDF (WeasyPrint) are the longest chain of work left; it needs nothing this process writes
meanwhile (the tables, the HTML, the email, the model). Started when the run starts, the worker
imports WeasyPrint and starts vl-convert's JS engine on the core this process leaves free while
it imports scikit-learn and clusters. README "Performance" has the measurements.

- spawn, never fork: the worker is a fresh interpreter, so it inherits no threads (pyarrow's),
  locks or vl-convert engine from this process. Its jobs are plain functions of picklable values
  (the Report, a path, the print exports). ``python -m reportgen`` and the ``reportgen`` script
  are safe to spawn from; a script calling ``reportgen.run`` needs the usual
  ``if __name__ == "__main__":`` guard, as with any multiprocessing code.
- It ends with the run: ``close()`` stops it once its results are in, or at once when the run
  fails (SIGTERM and Ctrl-C included); and it watches its parent, so a parent killed outright
  (SIGKILL) takes it along within a moment: no orphan is left holding a pipe open.
- A broken pool (the worker killed, or unable to start) is not the run's failure: the caller
  does that work in its own process (``BrokenProcessPool``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..report import Report
    from .environment import ChartImage
    from .pdf import Exported


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _started() -> None:
    """In the worker, first thing: Ctrl-C is the parent's to handle (it stops the worker), and
    the worker ends when the parent is gone: on Linux the kernel kills it (PR_SET_PDEATHSIG,
    at once, whatever the worker is doing); elsewhere a thread waiting on the parent's
    sentinel does, as soon as it gets the GIL."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent.pid:  # the parent died before prctl took effect
            os._exit(1)

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])  # readable once the parent is gone
        os._exit(1)  # the only way out of a process from a thread; nothing here to save

    threading.Thread(target=watch, name="reportgen-watch-parent", daemon=True).start()


def _warm() -> str:
    """Load what the PDF needs before the report exists: WeasyPrint and its fonts (a one-line
    PDF), vl-convert's JS engine (a one-point chart), the PDF template. Returns the Vega bundle
    for the HTML (read from the cache, or built here on a first run)."""
    import weasyprint

    from . import vega
    from .environment import environment
    from .pdf import PDF_TEMPLATE

    weasyprint.HTML(string="<p>reportgen</p>").write_pdf()
    vega.to_svg({"mark": "point", "data": {"values": [{"a": 1}]}})
    environment(None).get_template(PDF_TEMPLATE)
    return vega.vega_bundle()


class PrintWorker:
    """One worker process; ``exports`` and ``pdf`` hand it work, ``close`` ends it."""

    def __init__(self) -> None:
        before = set(multiprocessing.active_children())
        self._pool = ProcessPoolExecutor(max_workers=1,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_started)
        self.bundle: Future[str] = self._pool.submit(_warm)
        # the process the first submit started: ours to stop in close()
        self._processes = [p for p in multiprocessing.active_children() if p not in before]

    def exports(self, report: Report, names: list[str] | None = None
                ) -> Future[dict[str, Exported]]:
        """The print exports of the report's charts (``pdf.print_exports``)."""
        from .pdf import print_exports

        return self._pool.submit(print_exports, report, names)

    def pdf(self, report: Report, template_dir: Path | None,
            images: dict[str, ChartImage]) -> Future[bytes]:
        """The PDF (``pdf.render_pdf``) from images already exported."""
        from .pdf import render_pdf

        return self._pool.submit(render_pdf, report, template_dir, images=images)

    def close(self) -> None:
        """Stop the worker now. By the time a run closes it every result has been collected
        (or the run failed and needs none), so nothing is lost; stopping it rather than asking
        it to finish spares waiting for its interpreter to tear down."""
        for process in self._processes:
            process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for process in self._processes:
            process.join()

    def __enter__(self) -> PrintWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
