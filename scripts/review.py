#!/usr/bin/env python3
"""Pictures of a run's outputs, to look at them as a reader would.

    python scripts/review.py RUN_DIR [--dpi 80]

writes into RUN_DIR/review/:
    pdf-NN.png              every page of report.pdf (pdftoppm, from poppler-utils)
    report-1280.png         report.html at desktop width, whole page, charts drawn
    report-390.png          report.html at phone width
    email-600.png           email.html at 600 px (the layout's width; phones get the same)
    email-800.png           email.html in a wider desktop client
    email-600-dark.png      email.html with the client in dark mode
    email-images-off.png    email.html with images blocked (what alt text and text carry)

Chromium is the Debian package, driven through Selenium and Debian's chromium-driver by
tests/support/browser.py (the test extra brings selenium); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support, from any working directory

WAIT_FOR_CHARTS = """new Promise(function (resolve) {
  var start = Date.now();
  (function poll() {
    var charts = document.querySelectorAll("div.chart");
    var pending = Array.prototype.some.call(charts, function (el) {
      return !el.querySelector("svg, canvas") && !el.textContent;
    });
    if (!pending || Date.now() - start > 20000) { resolve(charts.length); }
    else { setTimeout(poll, 100); }
  })();
})"""


def pdf_pages(run: Path, out: Path, dpi: int) -> list[Path]:
    pdf = run / "report.pdf"
    if not pdf.is_file():
        return []
    if shutil.which("pdftoppm") is None:
        print("review: pdftoppm not found (apt-get install poppler-utils); PDF skipped",
              file=sys.stderr)
        return []
    for old in out.glob("pdf-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(out / "pdf")], check=True)
    return sorted(out.glob("pdf-*.png"))


def email_preview(run: Path, out: Path) -> Path | None:
    """email.html with each cid: replaced by its image file, as a mail client shows it."""
    html_path = run / "email.html"
    if not html_path.is_file():
        return None
    html = html_path.read_text(encoding="utf-8")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    for image in manifest.get("email", {}).get("images", []):
        shutil.copy2(run / image["file"], out / image["file"])
        html = html.replace(f"cid:{image['cid']}", image["file"])
    preview = out / "email-preview.html"
    preview.write_text(html, encoding="utf-8")
    blocked = out / "email-images-off.html"
    blocked.write_text(re.sub(r'src="cid:[^"]*"', 'src="blocked:"', html_path.read_text(
        encoding="utf-8")), encoding="utf-8")
    return preview


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--dpi", type=int, default=80, help="PDF page resolution")
    args = parser.parse_args()
    run: Path = args.run_dir
    if not (run / "manifest.json").is_file():
        print(f"review: {run} is not a run folder (no manifest.json)", file=sys.stderr)
        return 2
    out = run / "review"
    out.mkdir(exist_ok=True)
    made = pdf_pages(run, out, args.dpi)

    try:
        from tests.support.browser import Chromium, missing
    except ImportError:  # selenium comes with the test extra
        absent: str | None = "selenium is not installed (pip install -e '.[test]')"
    else:
        absent = missing()
    if absent is not None:
        print(f"review: {absent}; HTML and email skipped", file=sys.stderr)
    else:
        with Chromium() as browser:
            if (run / "report.html").is_file():
                for width in (1280, 390):
                    browser.open(run / "report.html", width=width, height=900)
                    browser.evaluate(WAIT_FOR_CHARTS)
                    made.append(browser.screenshot(out / f"report-{width}.png"))
                errors = [text for level, text in browser.console if level == "error"]
                if errors:
                    print("review: console errors in report.html:", *errors, sep="\n  ",
                          file=sys.stderr)
            preview = email_preview(run, out)
            if preview is not None:
                for name, width, dark in (("email-600", 600, False), ("email-800", 800, False),
                                          ("email-600-dark", 600, True)):
                    browser.open(preview, width=width, height=900, dark=dark)
                    made.append(browser.screenshot(out / f"{name}.png"))
                browser.open(out / "email-images-off.html", width=600, height=900)
                made.append(browser.screenshot(out / "email-images-off.png"))
    for path in made:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
