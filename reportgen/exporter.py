"""Work that runs beside the pipeline in helper processes: the Vega JavaScript bundle, chart
export, and serialising the model.

Why processes: each of these holds the GIL or costs a fixed import, and the machine has a second
core. vl-convert holds the GIL while it works (measured: a Python thread makes no progress during
``javascript_bundle()``) and has fixed costs — ~0.45 s to start its JS engine, ~1.1 s to build the
bundle, ~0.05 s per chart; importing skops costs ~0.45 s because it loads every scikit-learn
estimator. Started when the run starts, the first helper builds the bundle while the main process
imports scikit-learn and clusters; a second one is forked after clustering (inheriting the
loaded modules) to serialise the model; the first exports the charts while the main process
writes the tables.

Helpers are forked, so they cost no new interpreter start. Where fork is unavailable (or
REPORTGEN_EXPORT_INLINE=1), everything runs in-process with the same results: the outputs do not
depend on where the work ran.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)

# One helper, fed in the order the work is needed: bundle, print charts, email charts, model.
# A second one competed with the first for the second core and slowed the chart exports down.
WORKERS = 1
# Far above the ~1 s the work takes: only a hung or dead helper gets near it.
HELPER_TIMEOUT_S = float(os.environ.get("REPORTGEN_HELPER_TIMEOUT", "120"))

Exported = dict[str, tuple[str, "bytes | str"]]


def _warm_and_bundle() -> str:
    import vl_convert as vlc

    # A tiny conversion starts the JS engine now rather than at the first real chart.
    vlc.vegalite_to_svg({"mark": "point", "data": {"values": [{"a": 1}]}})
    return str(vlc.javascript_bundle())  # type: ignore[call-arg]  # the stub wants a snippet


def _export(specs: dict[str, tuple[dict[str, Any], bool]], png_scale: float) -> Exported:
    """name -> ("png", bytes) for dense charts, ("svg", text) for the rest."""
    from . import charts

    out: Exported = {}
    for name, (spec, dense) in specs.items():
        out[name] = ("png", charts.to_png(spec, scale=png_scale)) if dense else \
            ("svg", charts.to_svg(spec))
    return out


def _email_pngs(specs: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    from .render import email_png

    return {name: email_png(spec) for name, spec in specs.items()}


def _dump_model(bundle: dict[str, Any]) -> bytes:
    import skops.io

    return bytes(skops.io.dumps(bundle))


class Task:
    """Work handed to the helper, with a way back: ``result()`` waits at most HELPER_TIMEOUT_S,
    and if the helper hung or died, kills it and does the work in this process. Errors raised
    by the work itself (a ReportgenError, say) come through unchanged."""

    def __init__(self, owner: Background, fn: Any, *args: Any) -> None:
        self._owner, self._fn, self._args = owner, fn, args
        self._future = owner._pool.submit(fn, *args) if owner._pool is not None else None
        self._done = False
        self._value: Any = None

    def result(self) -> Any:
        if not self._done:
            self._value = self._run()
            self._done = True
        return self._value

    def _run(self) -> Any:
        if self._future is not None:
            try:
                return self._future.result(timeout=HELPER_TIMEOUT_S)
            except (TimeoutError, BrokenProcessPool, CancelledError) as exc:
                log.warning("helper process failed (%s); doing its work in this process",
                            exc.__class__.__name__)
                self._owner.kill()
        return self._fn(*self._args)


class Background:
    """Create with ``Background()`` when the run starts; later ``bundle()``, ``export(specs)``
    and ``dump_model(bundle)``. Use as a context manager, or call ``close()``."""

    def __init__(self, *, bundle: bool = True) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._bundle: Task | None = None
        # A process that has already used vl-convert (its JS engine runs threads) cannot fork a
        # helper that uses it again: the child hangs forever (seen in the test suite, where
        # tests/test_charts.py converts charts in-process before the CLI tests run). Such a
        # process does the work in-process instead; a normal CLI run still forks.
        inline = os.environ.get("REPORTGEN_EXPORT_INLINE") == "1" or \
            "fork" not in multiprocessing.get_all_start_methods() or \
            "vl_convert" in sys.modules
        if not inline:
            try:
                self._pool = ProcessPoolExecutor(
                    max_workers=WORKERS, mp_context=multiprocessing.get_context("fork"))
                if bundle:
                    self._bundle = Task(self, _warm_and_bundle)
            except OSError as exc:  # no processes allowed here: do the work in-process
                log.debug("background: running in-process (%s)", exc)
                self._pool = None

    def bundle(self) -> str:
        if self._bundle is None:
            self._bundle = Task(self, _warm_and_bundle) if self._pool is None else None
        assert self._bundle is not None
        return str(self._bundle.result())

    def dump_model(self, bundle: dict[str, Any]) -> Task:
        """Start serialising the model with skops; the task gives the file's bytes."""
        return Task(self, _dump_model, bundle)

    def export(self, specs: dict[str, tuple[dict[str, Any], bool]], png_scale: float = 2
               ) -> Task:
        """Start exporting {name: (spec, as PNG)}; the task gives {name: (kind, data)}.

        Not split across both helpers: the one that built the bundle has vl-convert's engine
        running, the other would pay ~0.45 s of CPU to start its own."""
        return Task(self, _export, specs, png_scale)

    def email_pngs(self, specs: dict[str, dict[str, Any]]) -> Task:
        """Start exporting the email's charts; the task gives {name: PNG bytes}."""
        return Task(self, _email_pngs, specs)

    def kill(self) -> None:
        """Stop the helper now, whatever it is doing (it hung or died)."""
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        # Every result has been collected by now (or the run failed): stop the helper rather
        # than wait for it, so the process can exit at once (cli.entry).
        self.kill()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
