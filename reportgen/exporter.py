"""Work that runs beside the pipeline, in two forked helper processes.

Why processes: the machine has two cores and the work after clustering is a chain — chart
export (vl-convert), then the PDF (WeasyPrint) — that would otherwise run after everything
else in one process. vl-convert holds the GIL while it works, so threads cannot overlap it.

- Both helpers are forked when the run starts and warm up one after the other (a warm-up
  waits for the previous helper's), on the core the main process leaves free while it imports
  scikit-learn and clusters: side by side, three processes would share two cores and slow the
  main one. The *print* helper imports WeasyPrint and renders a one-line PDF (~0.6 s); the
  *charts* helper starts vl-convert's JS engine (~0.45 s) and reads the Vega JavaScript bundle
  from the cache (building it takes ~1.1 s, once per vl-convert version).
- The main process hands each chart to the charts helper as soon as it is built
  (``export_chart``), in page order. Once the report is complete the print helper lays it out
  and takes each chart when layout reaches it (``render.render_pdf(source=...)``): the charts
  helper sends every chart to it through a queue as soon as it is drawn, so export and layout
  overlap. The charts helper then draws the email's PNGs.
- The main process meanwhile writes the tables, the HTML, the email and the model.

A process whose vl-convert engine is running cannot fork a helper that uses it again (the
child hangs), so the helpers are forked before anything uses vl-convert. Where fork is
unavailable, vl-convert is already loaded (the test suite), or REPORTGEN_EXPORT_INLINE=1,
everything runs in this process with the same results: the outputs do not depend on where the
work ran.

A helper that dies or does not answer within REPORTGEN_HELPER_TIMEOUT seconds is killed and
its work is done in this process; errors raised by the work itself (a ReportgenError, say)
come through unchanged.
"""

from __future__ import annotations

import gc
import itertools
import logging
import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .report import ChartSpec, Report

log = logging.getLogger(__name__)

# Far above the ~1-2 s the work takes: only a hung or dead helper gets near it.
HELPER_TIMEOUT_S = float(os.environ.get("REPORTGEN_HELPER_TIMEOUT", "120"))
_POLL_S = 0.2  # how often a wait checks that the helper is still alive
WARM_TURN_S = 5.0  # a helper waits at most this long for the one before it to warm up
GC_THRESHOLDS = (50_000, 20, 100)  # Python's default is (700, 10, 10); see cli.entry

Exported = dict[str, tuple[str, "bytes | str"]]


class Charts(NamedTuple):
    """What the charts helper exports: the print charts and the email's PNGs."""

    print: Exported
    email: dict[str, bytes]


class ChartsTask:
    """The charts of one report being exported: one task per print chart (started as each
    chart is built) and one for the email's PNGs. ``result()`` gives a ``Charts``."""

    def __init__(self, prints: dict[str, Task], email: Task) -> None:
        self._prints, self._email = prints, email

    def result(self) -> Charts:
        exported = {name: task.result() for name, task in self._prints.items()}
        return Charts(exported, self._email.result())


# Set in a helper process when it starts: the charts queue between the two helpers.
_charts_queue: Any = None
# In the charts helper: the print charts it exported, for the email to reuse.
_exported: Exported = {}


# ----------------------------------------------------------------------------- helper work

def _warm_charts() -> None:
    from . import charts

    # A tiny conversion starts the JS engine now rather than at the first real chart.
    charts.to_svg({"mark": "point", "data": {"values": [{"a": 1}]}})


def _warm_print() -> None:
    import weasyprint

    from . import render

    # Load the fonts and the PDF machinery on a one-line document now, not on the report.
    weasyprint.HTML(string="<p>reportgen</p>").write_pdf()
    render.environment(None).get_template(render.PDF_TEMPLATE)


def _bundle() -> str:
    from . import charts
    from .resources import cache_dir

    return charts.javascript_bundle(cache_dir())


def _export_chart(chart: ChartSpec) -> tuple[str, bytes | str]:
    """``render.export_for_print``; in the charts helper the chart also goes to the print
    helper at once, and is kept for the email."""
    from . import render

    try:
        item = render.export_for_print(chart)
    except BaseException as exc:
        if _charts_queue is not None:  # the print helper stops waiting and reports it
            _charts_queue.put((None, exc))
        raise
    if _charts_queue is not None:
        _charts_queue.put((chart.name, item))
        _exported[chart.name] = item
    return item


def _email_pngs(specs: dict[str, dict[str, Any]], exported: Exported | None = None
                ) -> dict[str, bytes]:
    """The email's charts as PNG, from the print SVGs where this process has them."""
    from . import render

    return render.email_pngs(specs, exported if exported is not None else _exported)


def _render_pdf(report: Report, template_dir: str | None) -> tuple[bytes, float]:
    """The PDF and the seconds it took, with the charts as the charts helper sends them."""
    from . import render

    start = time.perf_counter()
    pdf = render.render_pdf(report, None, Path(template_dir) if template_dir else None,
                            source=_ChartsArriving(_charts_queue, HELPER_TIMEOUT_S))
    return pdf, time.perf_counter() - start


class _ChartsArriving:
    """Charts from the charts helper, in the order it exports them: ``source(name)`` waits
    for that chart, keeping the ones that came before it."""

    def __init__(self, charts_queue: Any, timeout: float) -> None:
        self._queue, self._timeout = charts_queue, timeout
        self._got: Exported = {}

    def __call__(self, name: str) -> tuple[str, bytes | str]:
        while name not in self._got:
            try:
                got, payload = self._queue.get(timeout=self._timeout)
            except queue.Empty:
                # The parent then renders the PDF itself, with charts it exports or gets.
                raise HelperFailed(f"chart {name!r} did not arrive from the charts helper"
                                   ) from None
            if got is None:
                raise payload
            self._got[got] = payload
        return self._got[name]


# ----------------------------------------------------------------------------- processes

class HelperFailed(Exception):
    """The helper process died or did not answer in time."""


def _serve(jobs: Any, results: Any, warm: Callable[[], None], charts_queue: Any,
           turn: tuple[Any, Any]) -> None:
    """A helper's life: warm up (after the helper before it, see Background), then run jobs
    in order until told to stop."""
    global _charts_queue
    _charts_queue = charts_queue
    after, done = turn
    if after is not None:
        after.wait(WARM_TURN_S)
    try:
        warm()
    except Exception as exc:  # the job that needs it will fail and be redone in the parent
        log.debug("helper warm-up failed: %s", exc)
    if done is not None:
        done.set()
    # Everything loaded so far (modules, the parent's objects) lives as long as the helper:
    # the garbage collector stops scanning it, and collects young objects less often. The
    # PDF's layout allocates millions of short-lived objects; this takes 12% off its time.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    while True:
        job = jobs.get()
        if job is None:
            return
        job_id, fn, args = job
        try:
            results.put((job_id, True, fn(*args)))
        except BaseException as exc:
            try:
                results.put((job_id, False, exc))
            except Exception:  # an exception that cannot be pickled
                results.put((job_id, False, RuntimeError(f"{type(exc).__name__}: {exc}")))


class _Helper:
    """One forked process running jobs in the order they were submitted."""

    def __init__(self, name: str, warm: Callable[[], None], charts_queue: Any,
                 turn: tuple[Any, Any] = (None, None)) -> None:
        ctx = multiprocessing.get_context("fork")
        # Queues, not pipes: putting a job never blocks this process, whatever the helper is
        # doing (a queue's feeder thread writes it).
        self._jobs, self._results = ctx.Queue(), ctx.Queue()
        self.name = name
        self.process = ctx.Process(target=_serve, name=f"reportgen-{name}", daemon=True,
                                   args=(self._jobs, self._results, warm, charts_queue, turn))
        self.process.start()
        self._ids = itertools.count()
        self._done: dict[int, tuple[bool, Any]] = {}
        self.failed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        job_id = next(self._ids)
        self._jobs.put((job_id, fn, args))
        return job_id

    def wait(self, job_id: int, timeout: float) -> Any:
        """The job's value; its exception is raised; HelperFailed if the helper is gone."""
        deadline = time.monotonic() + timeout
        while job_id not in self._done:
            if self.failed:
                raise HelperFailed(f"{self.name} helper stopped")
            try:
                got, ok, value = self._results.get(timeout=_POLL_S)
            except queue.Empty:
                if not self.process.is_alive():
                    raise HelperFailed(f"{self.name} helper died") from None
                if time.monotonic() > deadline:
                    raise HelperFailed(f"{self.name} helper timed out") from None
                continue
            self._done[got] = (ok, value)
        ok, value = self._done.pop(job_id)
        if not ok:
            raise value
        return value

    def kill(self) -> None:
        self.failed = True
        if self.process.is_alive():
            self.process.kill()
        for q in (self._jobs, self._results):
            q.cancel_join_thread()  # never wait to flush a queue to a dead process
            q.close()


class Task:
    """Work handed to a helper: ``result()`` waits for it. If the helper died or hung, it is
    killed and the work is done in this process (``fallback``, default the same function)."""

    def __init__(self, helper: _Helper | None, fn: Callable[..., Any], *args: Any,
                 fallback: Callable[[], Any] | None = None) -> None:
        self._helper = helper
        self._fallback = fallback or (lambda: fn(*args))
        self._job = helper.submit(fn, *args) if helper is not None else None
        self._done, self._value = False, None

    def result(self) -> Any:
        if not self._done:
            self._value = self._run()
            self._done = True
        return self._value

    def _run(self) -> Any:
        if self._helper is not None and self._job is not None:
            try:
                return self._helper.wait(self._job, HELPER_TIMEOUT_S)
            except HelperFailed as exc:
                log.warning("helper process failed (%s); doing its work in this process", exc)
                self._helper.kill()
        return self._fallback()


def _inline() -> bool:
    return os.environ.get("REPORTGEN_EXPORT_INLINE") == "1" or \
        "fork" not in multiprocessing.get_all_start_methods() or \
        "vl_convert" in sys.modules  # see the module docstring: forking now could hang


class Background:
    """Create when the run starts (it forks the helpers then); later ``bundle()``,
    ``pdf(...)``, ``export_chart(...)`` and ``charts(...)``. Use as a context manager, or
    call ``close()``."""

    def __init__(self, *, charts: bool = True, pdf: bool = True) -> None:
        self._charts: _Helper | None = None
        self._print: _Helper | None = None
        self._bundle: Task | None = None
        self._exports: dict[str, Task] = {}
        if _inline() or not (charts or pdf):
            return
        try:
            ctx = multiprocessing.get_context("fork")
            charts_queue = ctx.Queue() if pdf else None
            # The helpers warm up one after the other, on the core this process leaves free
            # while it imports and clusters: warming side by side, three processes would
            # share two cores and slow this one down.
            printed = ctx.Event() if pdf else None
            if pdf:
                self._print = _Helper("print", _warm_print, charts_queue, (None, printed))
            self._charts = _Helper("charts", _warm_charts, charts_queue, (printed, None))
            self._bundle = Task(self._charts, _bundle)
        except OSError as exc:  # no processes allowed here: do the work in-process
            log.debug("background: running in-process (%s)", exc)
            self.close()

    @property
    def helpers(self) -> bool:
        """Whether the work runs in helper processes (False: all in this one)."""
        return self._print is not None or self._charts is not None

    def bundle(self) -> str:
        """The Vega JavaScript bundle for the HTML report."""
        if self._bundle is None:
            self._bundle = Task(None, _bundle)
        return str(self._bundle.result())

    def export_chart(self, chart: ChartSpec) -> None:
        """Start exporting one print chart now (the report's charts are handed over as they
        are built, so export starts before the report is complete)."""
        if chart.name not in self._exports:
            self._exports[chart.name] = Task(self._charts, _export_chart, chart)

    def charts(self, prints: dict[str, ChartSpec], email: dict[str, dict[str, Any]]
               ) -> ChartsTask:
        """Export the print charts (``prints``, in page order, those not already started by
        ``export_chart``; each goes to the print helper as soon as it is drawn), then the
        email's charts (``email``: name -> spec)."""
        for chart in prints.values():
            self.export_chart(chart)
        tasks = {name: self._exports[name] for name in prints}

        def email_in_process() -> dict[str, bytes]:
            return _email_pngs(email, {name: task.result() for name, task in tasks.items()})

        return ChartsTask(tasks, Task(self._charts, _email_pngs, email,
                                      fallback=email_in_process))

    def pdf(self, report: Report, template_dir: Path | None = None) -> Task:
        """Start the PDF of ``report``: the print helper lays the pages out while the charts
        helper exports the charts (handed over by ``export_chart`` or ``charts()``), taking
        each when layout reaches it. The task gives the PDF's bytes and the seconds its
        rendering took; by the time it is asked for, every chart must have been handed over
        (``charts()`` makes sure)."""
        from . import render

        def in_process() -> tuple[bytes, float]:
            start = time.perf_counter()
            pdf = render.render_pdf(report, None, template_dir,
                                    source=lambda name: self._exports[name].result())
            return pdf, time.perf_counter() - start

        if self._print is None or self._charts is None:
            return Task(None, in_process, fallback=in_process)
        return Task(self._print, _render_pdf, report,
                    str(template_dir) if template_dir else None, fallback=in_process)

    def close(self) -> None:
        """Stop the helpers now: by the time the run closes this, every result has been
        collected (or the run failed), so nothing is lost and nothing is waited for."""
        for helper in (self._charts, self._print):
            if helper is not None:
                helper.kill()
        self._charts = self._print = None

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
