"""The whole report on the bundled sample, read back as a user's tools would read it."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pandas as pd
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from reportgen.cli import main

from .runs import only_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(main, ["run", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    run = only_run(out)
    return run


@pytest.fixture(scope="module")
def summary(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def test_a_run_writes_every_artifact(run_dir):
    assert re.fullmatch(r"2014-06-[0-9a-f]{8}", run_dir.name)
    assert {p.name for p in run_dir.iterdir()} >= {
        "report.pdf", "report.html", "segments.csv", "summary.json", "manifest.json"}


def test_summary_agrees_with_segments_csv(run_dir, summary):
    csv = pd.read_csv(run_dir / "segments.csv")
    assert len(csv) == 2240 and csv["ID"].is_unique
    counts = csv["segment"].value_counts().to_dict()
    assert {s["id"]: s["size"] for s in summary["segments"]} == counts
    assert sum(counts.values()) + csv["left_out"].notna().sum() == 2240
    assert summary["headline"]["customers"] == sum(counts.values())
    for s in summary["segments"]:
        assert set(csv.loc[csv["segment"] == s["id"], "persona"]) == {s["name"]}


def test_summary_holds_personas_actions_method_and_cleaning(summary):
    segments = summary["segments"]
    assert summary["headline"]["k"] == len(segments) == summary["method"]["k"]
    assert len({s["name"] for s in segments}) == len(segments)
    for s in segments:
        assert 3 <= len(s["traits"]) <= 5 and 3 <= len(s["actions"]) <= 5
        assert all(a["evidence"] for a in s["actions"])
    assert len(summary["top_actions"]) == 3
    assert [r["k"] for r in summary["method"]["k_table"]] == list(range(2, 11))
    assert sum(r["chosen"] for r in summary["method"]["k_table"]) == 1
    columns = {c["column"] for c in summary["cleaning"]}
    assert {"Income", "Year_Birth", "Marital_Status", "Z_CostContact"} <= columns
    assert summary["as_of"] == "2014-06-29" and summary["period"] == "June 2014"


def test_manifest_records_input_hash_versions_seed_and_timings(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["input"]["sha256"]) == 64
    assert manifest["seed"] == 42
    assert {"pandas", "scikit-learn", "weasyprint", "altair"} <= set(manifest["versions"])
    assert {"load", "segment", "render_html", "render_pdf"} <= set(manifest["timings_s"])
    # the process's peak memory (MB) once each stage was done: it never goes down, and the
    # renderers run after the data stages
    peaks = manifest["peak_rss_mb"]
    order = ["load", "clean", "features", "segment", "profile", "report", "segments",
             "render_html", "render_pdf"]
    assert set(order) <= set(peaks) and peaks["load"] > 50
    assert [peaks[s] for s in order] == sorted(peaks[s] for s in order)


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.personas: list[str] = []
        self.ids: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"] or "")
        if tag == "section" and "persona" in (a.get("class") or "").split():
            self.personas.append(a.get("id") or "")
        for key in ("src", "href"):
            value = a.get(key) or ""
            if re.match(r"\s*(https?:)?//", value):
                self.external.append(value)


def test_html_has_one_section_per_persona_and_no_external_reference(run_dir, summary):
    html = (run_dir / "report.html").read_text()
    parser = _Sections()
    parser.feed(html)
    assert parser.personas == [f"segment-{s['id']}" for s in summary["segments"]]
    assert parser.external == []
    assert not re.search(r"@import|url\(\s*['\"]?https?:", html)
    for s in summary["segments"]:
        assert s["name"] in html
    assert {f"chart-{name}" for name in summary["charts"]} <= parser.ids
    assert html.count("<script") == 2  # the Vega bundle once, and the embedding code


def test_pdf_has_cover_summary_a_page_per_persona_and_appendix(run_dir, summary):
    reader = PdfReader(run_dir / "report.pdf")
    texts = [" ".join((page.extract_text() or "").split()) for page in reader.pages]
    k = len(summary["segments"])
    assert len(texts) >= 2 + k + 1
    assert "june 2014" in texts[0].lower()
    for s in summary["segments"]:
        pages = [i for i, t in enumerate(texts) if s["name"] in t and s["actions"][0]["title"][:30]
                 in t]
        assert pages, f"no page with persona {s['name']!r} and its first action"
    assert any("Appendix" in t for t in texts[k:])
