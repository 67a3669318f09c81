"""The render worker (render/worker.py): a spawned process that makes the PDF and the email.

Its files must be the bytes the run's own process makes (the path a run takes without a worker,
or when the worker breaks), its errors the errors that path raises, and it must never outlive
the run. The in-process path is run in a fresh interpreter each time: vl-convert numbers Vega's
clip paths per process, so the bytes of an export depend on what the process converted before
(pytest's process converts charts in other tests)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from reportgen.render.pdf import export_for_print
from reportgen.render.worker import RenderWorker
from reportgen.report import Report

from .factories import make_report
from .runs import tagged
from .tables import marketing_table, write_tsv

FORMATS = ["html", "pdf", "email"]

# In a fresh interpreter: the report's files made as write_outputs makes them, in this process
# (mode "here": the chart thread and the renderers, no worker), by a worker ("worker", warmed
# first as a run warms it), or by a worker killed before the report reaches it ("killed": the
# broken pool's fallback). Prints nothing; writes {name: bytes}, the manifest and the number
# of clip paths in the print SVGs into the output pickle.
SCRIPT = """
import os, pickle, signal, sys, tempfile, time
from pathlib import Path

from reportgen.output import ChartExports, _render
from reportgen.render.worker import RenderWorker

def main():
    report = pickle.loads(Path(sys.argv[1]).read_bytes())
    mode, formats = sys.argv[2], sys.argv[3].split(",")
    folder = Path(tempfile.mkdtemp())
    timings, peaks, clips = {}, {}, 0
    if mode in ("exports", "warm exports"):
        from reportgen.render.pdf import print_exports
        from reportgen.render.worker import _warm
        if mode == "warm exports":
            _warm(None)
        exports = print_exports(report)
        Path(sys.argv[4]).write_bytes(pickle.dumps((exports, {}, 0, {}, {})))
        return
    if mode == "here":
        charts = ChartExports(report, formats)
        manifest = _render(report, formats, None, folder, {}, timings, peaks, charts, None)
        clips = sum(data.count("<clipPath") for kind, data in charts.print_exports().values()
                    if kind == "svg")
    else:
        with RenderWorker() as worker:
            worker.warm(None)
            if mode == "killed":
                while not worker.pids:
                    time.sleep(0.01)
                os.kill(worker.pids[0], signal.SIGKILL)
                time.sleep(0.5)
            rendered = worker.render(report, formats, None) if mode == "worker" else None
            if mode == "killed":
                from reportgen.output import _submitted
                rendered = _submitted(worker, report, formats, None)
                assert rendered is None, "the pool should be broken"
                charts = ChartExports(report, formats)
                manifest = _render(report, formats, None, folder, {}, timings, peaks, charts,
                                   None)
            else:
                manifest = _render(report, formats, None, folder, {}, timings, peaks, None,
                                   rendered)
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    Path(sys.argv[4]).write_bytes(pickle.dumps((files, manifest, clips, timings, peaks)))

if __name__ == "__main__":
    main()
"""


def made(report: Report, mode: str, tmp_path: Path, formats: list[str] = FORMATS
         ) -> tuple[dict[str, bytes], dict[str, Any], int, dict[str, float], dict[str, float]]:
    script = tmp_path / "make.py"
    script.write_text(SCRIPT, encoding="utf-8")
    source = tmp_path / "report.pkl"
    source.write_bytes(pickle.dumps(report))
    out = tmp_path / f"{mode}.pkl"
    done = subprocess.run([sys.executable, str(script), str(source), mode, ",".join(formats),
                           str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result: tuple[dict[str, bytes], dict[str, Any], int, dict[str, float],
                  dict[str, float]] = pickle.loads(out.read_bytes())
    return result


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.fixture(scope="module")
def here(report: Report, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[dict[str, bytes], dict[str, Any], int, dict[str, float], dict[str, float]]:
    return made(report, "here", tmp_path_factory.mktemp("here"))


def test_the_worker_makes_the_same_bytes_as_the_run_s_own_process(
        report: Report, here: Any, tmp_path: Path) -> None:
    files, manifest, clips, _, _ = here
    # the charts clip (so Vega's per-process clip numbering is exercised) and every file is there
    assert clips > 0
    assert sorted(files) == ["email-size_value.png", "email-zscore_heatmap.png", "email.html",
                             "email.txt", "report.html", "report.pdf"]
    theirs, their_manifest, _, timings, peaks = made(report, "worker", tmp_path)
    assert sorted(theirs) == sorted(files)
    assert [name for name in files if files[name] != theirs[name]] == []
    assert their_manifest == manifest  # the email's part: subject, files, Content-IDs
    # the worker's own figures reach the manifest: its steps and its peak memory (its own,
    # not its parent's: a fresh interpreter with WeasyPrint and vl-convert, no pandas)
    assert {"charts", "render_pdf", "render_email", "render_wait"} <= set(timings)
    assert 30 < peaks["render_worker"] < 400


def test_the_warm_up_leaves_every_svg_the_bytes_a_fresh_engine_makes(
        report: Report, tmp_path: Path) -> None:
    """The SVGs themselves, not only the files made of them: Vega numbers clip paths on from
    the process's last one, so a warm-up that drew a clipped chart would shift every id."""
    fresh = made(report, "exports", tmp_path)[0]
    warmed = made(report, "warm exports", tmp_path)[0]
    assert any(kind == "svg" and "<clipPath" in data for kind, data in fresh.values())
    assert [name for name in fresh if fresh[name] != warmed[name]] == []


def test_a_broken_worker_s_work_is_done_in_the_run_s_process_with_the_same_bytes(
        report: Report, here: Any, tmp_path: Path) -> None:
    files = here[0]
    theirs = made(report, "killed", tmp_path)[0]
    assert [name for name in files if files[name] != theirs.get(name)] == []


def test_the_pdf_alone_and_the_email_alone_are_the_same_bytes_too(
        report: Report, tmp_path: Path) -> None:
    for formats in (["pdf"], ["email"]):
        folder = tmp_path / formats[0]
        folder.mkdir()
        ours = made(report, "here", folder, formats)[0]
        theirs = made(report, "worker", folder, formats)[0]
        assert sorted(ours) == sorted(theirs) and ours == theirs, formats


def broken(report: Report, name: str) -> Report:
    """report with chart ``name``'s spec one that vl-convert rejects."""
    chart = report.charts[name]
    spec = {"mark": "nope", "data": {"values": [{"a": 1}]}}
    return dataclasses.replace(report, charts={**report.charts,
                                               name: dataclasses.replace(chart, spec=spec)})


def test_a_chart_vl_convert_rejects_is_the_same_error_from_the_worker(report: Report) -> None:
    bad = broken(report, "size_value")
    with pytest.raises(ValueError) as here:
        export_for_print(bad.charts["size_value"])
    with RenderWorker() as worker, pytest.raises(ValueError) as there:
        worker.render(bad, FORMATS, None).result(timeout=300)
    assert type(there.value) is type(here.value)
    assert str(there.value) == str(here.value)
    assert "conversion failed" in str(there.value)


def test_close_stops_the_worker_at_once_and_a_closed_worker_is_gone(report: Report) -> None:
    worker = RenderWorker()
    assert worker.pids == []  # nothing is started before it is needed
    worker.warm(None)
    (pid,) = worker.pids
    job = worker.render(report, FORMATS, None)
    start = time.monotonic()
    worker.close()  # while it works: a failed run does not wait for its PDF
    assert time.monotonic() - start < 10
    assert not alive(pid)
    assert job.cancelled() or job.done()


def alive(pid: int) -> bool:
    """Whether pid is a live process (a zombie waiting to be reaped is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_run_that_fails_in_the_worker_exits_2_with_the_message_and_leaves_no_process(
        tmp_path: Path) -> None:
    """A user PDF template that cannot be rendered fails in the worker: the CLI's one line
    and exit 2, as without a worker; no folder, and no process of the run left behind."""
    table = write_tsv(marketing_table(60), tmp_path / "t.tsv")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report_pdf.html.j2").write_text("<h1>{{ report.title }}</h1>\n"
                                                  "{{ report.nope }}\n", encoding="utf-8")
    config = tmp_path / "reportgen.toml"
    config.write_text(f'[report]\ntemplate_dir = "{templates}"\n', encoding="utf-8")
    tag = uuid.uuid4().hex
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "reportgen", "run", str(table), "--out",
                           str(out), "--config", str(config), "-q"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "REPORTGEN_TEST_TAG": tag})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "report.template_dir" in done.stderr and "report_pdf.html.j2" in done.stderr
    assert "line 2" in done.stderr
    assert not out.exists() or list(out.iterdir()) == []
    deadline = time.monotonic() + 5
    while tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tagged(tag) == []


def test_the_worker_dies_with_its_parent_killed_outright(tmp_path: Path) -> None:
    """A parent killed with SIGKILL cannot stop its worker: the worker goes by itself."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from reportgen.render.worker import RenderWorker\n"
        "if __name__ == '__main__':\n"
        "    worker = RenderWorker()\n"
        "    worker.warm(None)\n"
        "    while not worker.pids:\n"
        "        time.sleep(0.01)\n"
        "    print(worker.pids[0], flush=True)\n"
        "    time.sleep(600)\n", encoding="utf-8")
    # stderr: its resource tracker, left alone, says what it cleans up after the kill
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert Path(f"/proc/{child}").exists()
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_the_command_uses_the_worker_and_a_library_script_stays_in_one_process(
        tmp_path: Path) -> None:
    """`reportgen run` makes its PDF in the worker (the worker's peak is in the manifest); a
    script calling reportgen.run at its top level, without the __main__ guard, runs once:
    no worker re-runs it (spawn imports the parent's main module again), and its files are
    the command's, byte for byte."""
    table = write_tsv(marketing_table(60), tmp_path / "t.tsv")
    cli = subprocess.run([sys.executable, "-m", "reportgen", "run", str(table), "--out",
                          str(tmp_path / "cli"), "-q", "--format", "pdf,email"],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    [cli_run] = [p for p in (tmp_path / "cli").iterdir() if p.is_dir()]
    assert "render_worker" in json.loads((cli_run / "manifest.json").read_text())["peak_rss_mb"]
    marks = tmp_path / "marks.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import reportgen\n"
        "from reportgen.config import Config\n"
        f"open({str(marks)!r}, 'a').write('ran\\n')\n"
        f"reportgen.run({str(table)!r}, Config().with_overrides(report__formats=['pdf', "
        f"'email']), {str(tmp_path / 'lib')!r})\n", encoding="utf-8")
    lib = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300)
    assert lib.returncode == 0, lib.stderr
    assert marks.read_text() == "ran\n"
    [lib_run] = [p for p in (tmp_path / "lib").iterdir() if p.is_dir()]
    assert "render_worker" not in json.loads(
        (lib_run / "manifest.json").read_text())["peak_rss_mb"]
    assert lib_run.name == cli_run.name
    for name in ("report.pdf", "email.html", "email.txt"):
        assert (lib_run / name).read_bytes() == (cli_run / name).read_bytes(), name
