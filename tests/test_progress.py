"""Progress lines: live on a terminal, nothing on a pipe or with -q."""

from __future__ import annotations

import io
import logging

import pytest

from reportgen import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore():
    yield
    progress.install(io.StringIO(), quiet=True)


def test_a_terminal_gets_one_live_line_rewritten_in_place_and_cleared_at_the_end(
        monkeypatch) -> None:
    monkeypatch.setattr(progress.time, "perf_counter", lambda: 5.0)  # no time passes
    stream = Terminal()
    assert progress.install(stream, quiet=False) is not None
    for done in range(0, 4):
        progress.update("segment", done, 3, "k searched")
    text = stream.getvalue()
    assert "\n" not in text
    shown = [part for part in text.split("\r\033[K") if part]
    assert shown == ["reportgen: segment: 0 of 3 k searched",
                     "reportgen: segment: 1 of 3 k searched",
                     "reportgen: segment: 2 of 3 k searched"]
    assert text.endswith("\r\033[K")  # cleared when the stage is done


@pytest.mark.parametrize("stream, quiet", [(io.StringIO(), False), (Terminal(), True)])
def test_a_pipe_or_quiet_gets_no_progress(stream, quiet) -> None:
    assert progress.install(stream, quiet=quiet) is None
    progress.update("output", 200_000, 1_000_000, "rows written")
    assert stream.getvalue() == ""


def test_the_estimate_is_the_time_left_at_the_pace_so_far(monkeypatch) -> None:
    clock = iter([100.0, 110.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    stream = Terminal()
    progress.install(stream, quiet=False)
    progress.update("output", 0, 4, "rows written")
    progress.update("output", 1, 4, "rows written")  # 10 s for one: 30 s for three more
    assert stream.getvalue().endswith("reportgen: output: 1 of 4 rows written, about 30 s left")


def test_the_stage_lines_clear_the_live_line_first() -> None:
    record = logging.LogRecord("reportgen", logging.INFO, "", 0, "clean     done in 1.00 s",
                               None, None)
    line = progress.ClearingFormatter("reportgen: %(message)s").format(record)
    assert line == "\r\033[Kreportgen: clean     done in 1.00 s"
