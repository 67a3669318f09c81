"""The reportgen process as docker, systemd, CI time-outs and shell pipelines treat it: SIGTERM
and SIGKILL in the middle of a run, `| head -1`. Real `python -m reportgen run` processes; every
process they start carries a tag in its environment, so the process table can be searched for
anything left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from reportgen.output import remove_stale

from .runs import only_run, tagged
from .tables import marketing_table, write_tsv

TIMEOUT_S = 300  # the machine is shared: a run that takes 3 s quiet can take 60 s under load


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tsv(marketing_table(60), tmp_path_factory.mktemp("in") / "t.tsv")


def none_left(tag: str, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while tagged(tag):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class Run:
    """``python -m reportgen run`` in the background, stdout and stderr to files."""

    def __init__(self, table: Path, out: Path, logs: Path, *extra: str) -> None:
        self.tag = uuid.uuid4().hex
        self.out = out
        self.stderr = logs / f"stderr-{self.tag}"
        with open(logs / f"stdout-{self.tag}", "wb") as stdout, \
                open(self.stderr, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reportgen", "run", str(table), "--out", str(out),
                 "--format", "html,pdf,email", *extra],
                stdout=stdout, stderr=stderr,
                env={**os.environ, "REPORTGEN_TEST_TAG": self.tag})

    def partial(self) -> list[Path]:
        return sorted(self.out.glob(".*.partial-*")) if self.out.exists() else []

    def wait_for(self, ready: object, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not ready():  # type: ignore[operator]
            assert self.proc.poll() is None, f"the run ended before {what}"
            assert time.monotonic() < deadline, f"no {what} within {TIMEOUT_S} s"
            time.sleep(0.01)

    def wait_for_output_stage(self) -> None:
        """Until the output stage has written its first file into the partial folder."""
        self.wait_for(lambda: any((p / "segments.csv").exists() for p in self.partial()),
                      "output stage")

    def wait_for_log(self, text: str) -> None:
        self.wait_for(lambda: text in self.stderr.read_text(errors="replace"), repr(text))


@pytest.mark.parametrize("stage", ["segment", "output"])
def test_sigterm_exits_143_and_leaves_no_folder_and_no_process(
        table: Path, tmp_path: Path, stage: str) -> None:
    run = Run(table, tmp_path / "out", tmp_path)
    if stage == "output":
        run.wait_for_output_stage()
    else:
        run.wait_for_log("features  done")  # the next stage is segment
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(timeout=60) == 143
    assert run.stderr.read_text().strip().splitlines()[-1] == \
        "Terminated; no report was written."
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert none_left(run.tag)


def test_sigkill_leaves_no_process_and_the_next_run_removes_the_stale_folder(
        table: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = Run(table, out, tmp_path)
    run.wait_for_output_stage()
    (stale,) = run.partial()
    run.proc.send_signal(signal.SIGKILL)
    assert run.proc.wait(timeout=60) == -signal.SIGKILL
    assert none_left(run.tag, within_s=5.0)
    assert stale.is_dir()  # nothing can clean up after SIGKILL ...
    again = Run(table, out, tmp_path, "--quiet")
    assert again.proc.wait(timeout=TIMEOUT_S) == 0, again.stderr.read_text()
    assert not stale.exists()  # ... but the next run into the same root does
    run_dir = only_run(out)
    assert not run_dir.name.startswith(".") and (run_dir / "report.pdf").stat().st_size > 0


def test_a_run_piped_into_head_ends_when_reportgen_ends(table: Path, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    # not -q: it prints nothing on stdout (the stage lines go to stderr either way)
    command = (f"{sys.executable} -m reportgen run {table} --out {tmp_path / 'out'} "
               "| head -1; echo \"reportgen exit ${PIPESTATUS[0]}\" >&2")
    start = time.monotonic()
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                            timeout=TIMEOUT_S, env={**os.environ, "REPORTGEN_TEST_TAG": tag})
    took = time.monotonic() - start
    assert result.stdout.startswith("Customer segmentation: ")
    assert result.stdout.count("\n") == 1
    # 0, or 141 when head was gone before the last line (as for any writer stopped by SIGPIPE)
    assert result.stderr.strip().splitlines()[-1] in ("reportgen exit 0", "reportgen exit 141")
    assert "Exception ignored" not in result.stderr
    assert tagged(tag) == []  # head saw end of file because nothing else held the pipe
    run_dir = only_run(tmp_path / "out")
    assert (run_dir / "manifest.json").exists()
    # the pipeline took no longer than the run itself (the run's own stage times, plus start)
    assert took < TIMEOUT_S


def test_a_closed_stdout_is_not_an_error_or_a_traceback(table: Path, tmp_path: Path) -> None:
    """`reportgen run | true`: the reader is gone before the summary is written: no message,
    the exit status a shell gives a writer stopped by SIGPIPE, and the report is complete."""
    result = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m reportgen run {table} --out {tmp_path / 'out'} "
                       "| true; echo \"exit ${PIPESTATUS[0]}\" >&2"],
        capture_output=True, text=True, timeout=TIMEOUT_S)
    # the stage lines (not -q: it prints nothing on stdout, so there would be no SIGPIPE)
    messages = [line for line in result.stderr.strip().splitlines()
                if not line.startswith("reportgen: ")]
    assert messages == ["exit 141"]
    run_dir = only_run(tmp_path / "out")
    assert (run_dir / "manifest.json").exists()


def test_remove_stale_keeps_live_runs_and_restores_a_previous_run_moved_aside(
        tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        live = tmp_path / f".2014-06-aaaa.partial-{sleeper.pid}"
        dead = tmp_path / f".2014-06-aaaa.partial-{gone.pid}"
        moved = tmp_path / f".2014-05-bbbb.old-{gone.pid}"
        for folder in (live, dead, moved):
            folder.mkdir()
        (moved / "summary.json").write_text("{}")
        other = tmp_path / ".not-ours"
        other.mkdir()
        assert remove_stale(tmp_path) == [dead]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [live.name, "2014-05-bbbb", ".not-ours"])
        assert (tmp_path / "2014-05-bbbb" / "summary.json").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
