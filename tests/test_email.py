"""The email summary: rendered for mail clients from the Report, then sent for real to an SMTP
server on 127.0.0.1 (aiosmtpd, started here) and checked as it arrived."""

from __future__ import annotations

import base64
import dataclasses
import email
import json
import re
import socket
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.errors import ConfigError
from reportgen.render.email import (
    EMAIL_CONTENT_WIDTH,
    MAX_EMAIL_HTML,
    Email,
    email_images,
    render_email,
)
from reportgen.report import Report

from .factories import make_report, make_segments

PASSWORD = "s3cret-Pa55word"
USER = "reportgen"
XSS = "<script>alert(1)</script>"
# a 1x1 PNG
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5"
    "ErkJggg==")


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.fixture(scope="module")
def pngs(report: Report) -> dict[str, bytes]:
    return email_images(report)


@pytest.fixture(scope="module")
def mail(report: Report, pngs: dict[str, bytes]) -> Email:
    return render_email(report, pngs)


def write_run(run: Path, mail: Email, *, pdf: bool = True) -> Path:
    """A run folder as `reportgen run` leaves it, as far as the email is concerned."""
    run.mkdir(parents=True, exist_ok=True)
    for name, data in mail.files().items():
        (run / name).write_bytes(data)
    (run / "manifest.json").write_text(json.dumps({"email": mail.manifest()}))
    if pdf:
        (run / "report.pdf").write_bytes(b"%PDF-1.7\n% a stand-in for the report\n%%EOF\n")
    return run


@pytest.fixture()
def run_dir(tmp_path: Path, mail: Email) -> Path:
    return write_run(tmp_path / "2014-06-abc123", mail)


# ----------------------------------------------------------------------------- rendering

def test_email_html_is_a_600px_table_layout_with_every_style_inlined(mail: Email) -> None:
    html = mail.html
    assert "<script" not in html.lower()
    assert re.search(r'<table[^>]*class="container"[^>]*width="600"', html)
    # what is left in <style> is only @media blocks (dark mode, small screens): the rest is
    # in style attributes, which is all Gmail keeps
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    assert len(styles) == 1
    leftover = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", styles[0]).strip()
    assert leftover == ""
    assert re.search(r'<td class="kpi"[^>]*style="[^"]*padding', html)
    assert 'class="h2" style="' in html
    assert "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)


def test_email_html_stays_under_gmails_clipping_size_with_many_segments(report: Report) -> None:
    base = make_segments()
    segments = [dataclasses.replace(s, id=i + 1, name=f"{s.name} {i + 1} with a longer name",
                                    story=s.story * 2)
                for i, s in enumerate(base * 3)]  # 12 segments, long stories
    big = dataclasses.replace(report, segments=segments)
    out = render_email(big, {})
    assert len(out.html.encode("utf-8")) < MAX_EMAIL_HTML
    assert len(re.findall(r'<td class="swatch"[^>]*bgcolor="#', out.html)) == 12


def test_email_html_is_readable_in_dark_mode_and_with_images_off(
    mail: Email, report: Report
) -> None:
    html = mail.html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    # explicit backgrounds as attributes, for clients that drop style on tables
    assert 'bgcolor="#eef1f5"' in html and 'bgcolor="#ffffff"' in html
    assert f'bgcolor="{report.primary_color}"' in html
    # images off: the numbers are in text, and each chart's alt text carries them too
    text = re.sub(r"<[^>]+>", " ", html)
    for s in report.segments:
        assert s.name in text
    imgs = re.findall(r"<img [^>]*>", html)
    assert len(imgs) == len(mail.images) == 2
    for tag in imgs:
        alt = re.search(r'alt="([^"]*)"', tag)
        # shares ("45%") or an index of the average customer ("Total spend 229")
        assert alt and re.search(r"\d+%|[A-Za-z] \d{2,}[;,.]", alt.group(1)), tag
        assert re.search(r'width="\d+" height="\d+"', tag)  # layout holds without the image
    assert f"alt=\"{report.charts['size_value'].description}\"" in html.replace("&amp;", "&")


def test_email_charts_are_pngs_referenced_by_content_id(mail: Email) -> None:
    cids = re.findall(r'src="cid:([^"]+)"', mail.html)
    assert cids == [i.cid for i in mail.images]
    for image in mail.images:
        assert image.data.startswith(b"\x89PNG") and image.mime == "image/png"
        assert image.filename == f"email-{image.name}.png"
        assert image.width <= EMAIL_CONTENT_WIDTH
    manifest = mail.manifest()
    assert {i["cid"]: i["file"] for i in manifest["images"]} == {
        i.cid: i.filename for i in mail.images}
    assert set(mail.files()) == {"email.html", "email.txt"} | {i.filename for i in mail.images}


def test_email_text_alternative_has_the_numbers_and_no_markup(
    mail: Email, report: Report
) -> None:
    text = mail.text
    assert "<" not in text and "&amp;" not in text
    assert "Northwind Food & Wine" in text
    for s in report.segments:
        assert s.name in text
        assert f"{round(s.value_share * 100)}% of spend" in text
    for t in report.top_actions:
        assert t.action.title in text
    assert "Quality check failed" in text


def test_a_persona_name_with_markup_is_escaped_in_the_email(pngs: dict[str, bytes]) -> None:
    names = [XSS, "Established families", "Deal-seeking web shoppers", "Budget young parents"]
    out = render_email(make_report(names=names), pngs)
    # no script element: the name is text (and, unescaped "<" being legal there, inside the
    # alt attribute, where only quotes and ampersands matter; those are escaped)
    from html.parser import HTMLParser

    tags: list[str] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: tags.append(tag)  # type: ignore[method-assign]
    parser.feed(out.html)
    assert "script" not in tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert XSS in out.text  # plain text is not HTML: shown as typed


def test_email_render_is_cheap_once_the_charts_are_exported(
    report: Report, pngs: dict[str, bytes]
) -> None:
    render_email(report, pngs)  # warm the template cache and the inliner import
    start = time.perf_counter()
    render_email(report, pngs)
    assert time.perf_counter() - start < 0.5  # ~0.03 s here; generous for a busy CI box


def test_brand_colour_and_logo_reach_the_email_header(report: Report, tmp_path: Path) -> None:
    from reportgen.render import branding

    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="30">'
                   '<rect width="120" height="30" fill="#ffcc00"/></svg>')
    branded = dataclasses.replace(report, primary_color="#ffcc00",
                                  logo=branding.logo_data_uri(str(svg)))
    out = render_email(branded, {})
    logo = out.images[0]
    assert logo.name == "logo" and logo.data.startswith(b"\x89PNG")  # no SVG in mail clients
    assert f'src="cid:{logo.cid}"' in out.html
    assert logo.height <= 40
    # a light brand colour gets dark text, not white
    assert 'bgcolor="#ffcc00"' in out.html
    assert "color: #1f2933 !important" in out.html.replace("color:#1f2933", "color: #1f2933")


# ----------------------------------------------------------------------------- SMTP server

class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
          and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            authenticator=_authenticator, auth_require_tls=False)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture()
def smtp_env(monkeypatch: pytest.MonkeyPatch, smtp_server: tuple[Inbox, int]) -> Inbox:
    inbox, port = smtp_server
    for key, value in {"HOST": "127.0.0.1", "PORT": str(port), "SECURITY": "none",
                       "USER": USER, "PASSWORD": PASSWORD}.items():
        monkeypatch.setenv(f"REPORTGEN_SMTP_{key}", value)
    return inbox


def parts(message: EmailMessage) -> list[str]:
    return [p.get_content_type() for p in message.walk()]


def check_message(message: EmailMessage, mail: Email, *, pdf: bool = True) -> None:
    """The structure mail clients expect, and every cid: of the HTML resolving."""
    expected = ["multipart/mixed", "multipart/alternative", "text/plain", "multipart/related",
                "text/html"] + ["image/png"] * len(mail.images) + (["application/pdf"]
                                                                    if pdf else [])
    if not pdf:
        expected.remove("multipart/mixed")
    assert parts(message) == expected
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert html.replace("\r\n", "\n").rstrip() == mail.html.replace("\r\n", "\n").rstrip()
    text_part = message.get_body(preferencelist=("plain",))
    assert text_part is not None and "THREE THINGS TO DO THIS MONTH" in text_part.get_content()
    images = {p["Content-ID"].strip("<>"): p for p in message.walk()
              if p.get_content_maintype() == "image"}
    referenced = re.findall(r'src="cid:([^"]+)"', html)
    assert referenced and set(referenced) == set(images)
    for image in mail.images:
        part = images[image.cid]
        assert part.get_content() == image.data
        assert part.get_content_disposition() == "inline"
    attachments = [p for p in message.iter_attachments() if p.get_content_type() ==
                   "application/pdf"]
    assert len(attachments) == (1 if pdf else 0)
    if pdf:
        assert attachments[0].get_filename() == "report.pdf"
        assert attachments[0].get_content().startswith(b"%PDF")


def test_reportgen_email_sends_the_summary_to_a_real_smtp_server(
    run_dir: Path, smtp_env: Inbox, mail: Email
) -> None:
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "director@example.com",
                                       "--to", "analyst@example.org",
                                       "--from", "reports@example.com"])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    (envelope,) = smtp_env.envelopes
    assert envelope.mail_from == "reports@example.com"
    assert envelope.rcpt_tos == ["director@example.com", "analyst@example.org"]
    message = email.message_from_bytes(envelope.content, policy=default_policy)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Northwind Food & Wine: Customer segmentation, June 2014"
    assert message["To"] == "director@example.com, analyst@example.org"
    assert message["Message-ID"] and message["Date"]
    check_message(message, mail)
    assert PASSWORD.encode() not in envelope.original_content


def test_subject_option_and_no_pdf_attachment(
    run_dir: Path, smtp_env: Inbox, mail: Email
) -> None:
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@example.com",
                                       "--subject", "Segments for June", "--no-attach-pdf"])
    assert result.exit_code == 0, result.output
    message = email.message_from_bytes(smtp_env.envelopes[0].content, policy=default_policy)
    assert message["Subject"] == "Segments for June"
    check_message(message, mail, pdf=False)  # type: ignore[arg-type]


def test_dry_run_writes_message_eml_and_sends_nothing(
    run_dir: Path, smtp_env: Inbox, mail: Email, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@example.com",
                                       "--dry-run"])
    assert result.exit_code == 0, result.output
    assert smtp_env.envelopes == []
    message = email.message_from_bytes((run_dir / "message.eml").read_bytes(),
                                       policy=default_policy)
    check_message(message, mail)  # type: ignore[arg-type]
    out = tmp_path / "elsewhere.eml"
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@example.com",
                                       "--dry-run", "--out", str(out)])
    assert result.exit_code == 0 and out.is_file()


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert PASSWORD not in result.output
    assert base64.b64encode(PASSWORD.encode()).decode() not in result.output
    return lines[0]


def test_a_wrong_password_is_one_line_without_the_password(
    run_dir: Path, smtp_env: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORTGEN_SMTP_PASSWORD", PASSWORD + "-wrong")
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@example.com"])
    line = _one_line_error(result)
    assert "refused the login for 'reportgen'" in line
    assert "wrong" not in line
    assert smtp_env.envelopes == []


def test_a_refused_connection_is_one_line(run_dir: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("REPORTGEN_SMTP_PASSWORD", PASSWORD)
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@example.com",
                                       "--smtp-host", "127.0.0.1", "--smtp-port", str(port),
                                       "--smtp-security", "none", "--smtp-user", USER])
    line = _one_line_error(result)
    assert f"127.0.0.1:{port}" in line


def test_starttls_is_required_unless_security_none(run_dir: Path, smtp_env: Inbox,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPORTGEN_SMTP_SECURITY")
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@example.com"])
    assert "does not offer STARTTLS" in _one_line_error(result)
    assert smtp_env.envelopes == []


def test_missing_run_dir_or_email_is_one_line(tmp_path: Path, mail: Email) -> None:
    result = CliRunner().invoke(main, ["email", str(tmp_path / "nope"), "--to", "a@x.com",
                                       "--dry-run"])
    assert "not a run folder" in _one_line_error(result)
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text("{}")
    result = CliRunner().invoke(main, ["email", str(run), "--to", "a@x.com", "--dry-run"])
    assert "no email.html" in _one_line_error(result)
    no_pdf = write_run(tmp_path / "no-pdf", mail, pdf=False)
    result = CliRunner().invoke(main, ["email", str(no_pdf), "--to", "a@x.com", "--dry-run"])
    assert "no report.pdf" in _one_line_error(result)
    result = CliRunner().invoke(main, ["email", str(no_pdf), "--to", "not-an-address",
                                       "--dry-run", "--no-attach-pdf"])
    assert "is not an email address" in _one_line_error(result)


def test_a_cid_without_its_image_is_refused(run_dir: Path) -> None:
    html = (run_dir / "email.html").read_text()
    (run_dir / "email.html").write_text(html.replace("</body>",
                                                     '<img src="cid:ghost@reportgen"></body>'))
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@x.com", "--dry-run"])
    assert "ghost@reportgen" in _one_line_error(result)


def test_no_smtp_host_is_a_config_error(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPORTGEN_SMTP_HOST", raising=False)
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@x.com"])
    assert "no SMTP server" in _one_line_error(result)


def test_a_user_without_a_password_stops_with_one_line_and_sends_nothing(
    run_dir: Path, smtp_env: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPORTGEN_SMTP_PASSWORD")
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@example.com"])
    assert _one_line_error(result) == (
        "Error: the SMTP user 'reportgen' has no password: set REPORTGEN_SMTP_PASSWORD or use "
        "--ask-password")
    assert smtp_env.envelopes == []


def test_ask_password_reads_it_from_the_prompt_and_sends(
    run_dir: Path, smtp_env: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPORTGEN_SMTP_PASSWORD")
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@example.com",
                                       "--ask-password"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert len(smtp_env.envelopes) == 1


def test_sender_and_recipients_from_the_runs_email_settings(
    run_dir: Path, smtp_env: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["config"] = {"email": {"sender": "crm-reports@example.com",
                                    "to": ["director@example.com", "cmo@example.com"]}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.delenv("REPORTGEN_MAIL_FROM", raising=False)
    result = CliRunner().invoke(main, ["email", str(run_dir)])
    assert result.exit_code == 0, result.output
    (envelope,) = smtp_env.envelopes
    assert envelope.mail_from == "crm-reports@example.com"
    assert envelope.rcpt_tos == ["director@example.com", "cmo@example.com"]
    monkeypatch.setenv("REPORTGEN_MAIL_FROM", "ops@example.com")  # the environment wins
    result = CliRunner().invoke(main, ["email", str(run_dir), "--to", "a@example.com"])
    assert result.exit_code == 0, result.output
    assert smtp_env.envelopes[1].mail_from == "ops@example.com"
    assert smtp_env.envelopes[1].rcpt_tos == ["a@example.com"]


def test_smtp_settings_ask_for_a_missing_password_only_when_they_can() -> None:
    from reportgen import mail

    env = {"REPORTGEN_SMTP_HOST": "h", "REPORTGEN_SMTP_USER": "u"}
    assert mail.smtp_settings(env=env, ask=lambda: "typed").password == "typed"
    with pytest.raises(ConfigError, match="has no password"):
        mail.smtp_settings(env=env)
    with pytest.raises(ConfigError, match="has no password"):
        mail.smtp_settings(env=env, ask=lambda: "")


def test_smtp_settings_never_show_the_password() -> None:
    from reportgen import mail

    settings = mail.smtp_settings(env={"REPORTGEN_SMTP_HOST": "smtp.example.com",
                                       "REPORTGEN_SMTP_USER": "u",
                                       "REPORTGEN_SMTP_PASSWORD": PASSWORD})
    assert settings.port == 587 and settings.security == "starttls"
    assert PASSWORD not in repr(settings)
    assert mail.smtp_settings(host="h", security="ssl", env={}).port == 465
