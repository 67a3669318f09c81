"""Send a run's email summary: build the MIME message from the run folder, send it over SMTP.

The message, as mail clients expect it::

    multipart/mixed
    ├── multipart/alternative
    │   ├── text/plain                 email.txt
    │   └── multipart/related
    │       ├── text/html              email.html (images referenced as cid:)
    │       └── image/png ...          email-*.png, each with its Content-ID
    └── application/pdf                report.pdf (unless --no-attach-pdf)

Everything comes from the files ``reportgen run`` wrote (manifest.json says which image has
which Content-ID), so what is sent is what was reviewed. SMTP settings come from arguments or
REPORTGEN_SMTP_* environment variables; the password is never logged, echoed or put in an
error message.
"""

from __future__ import annotations

import json
import logging
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from .errors import ConfigError, MailError

log = logging.getLogger(__name__)

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
ENV_PREFIX = "REPORTGEN_SMTP_"
TIMEOUT = 30.0
# An addr-spec as RFC 5322 writes it without quotes (dot-atom @ domain): anything else, a '"'
# or a '\\' in particular, could be read as a different address by a mail server.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_LABEL}(?:\.{_LABEL})*")
# What a run folder holds for the email: anything else named by manifest.json is refused.
IMAGE_TYPES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff",
               "image/gif": b"GIF8"}
_CID = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_PART_BYTES = 50_000_000  # a run's email and PDF are a few MB


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send. ``password`` is left out of repr() so it never lands in a log
    or a traceback."""

    host: str
    port: int
    security: str = "starttls"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = TIMEOUT


def smtp_settings(*, host: str | None = None, port: int | None = None,
                  user: str | None = None, password: str | None = None,
                  security: str | None = None,
                  env: Mapping[str, str] | None = None,
                  ask: Callable[[], str] | None = None) -> SmtpSettings:
    """SMTP settings from the arguments, falling back to REPORTGEN_SMTP_HOST, _PORT, _USER,
    _PASSWORD and _SECURITY (starttls, ssl or none). The port defaults to the security's
    usual one (587, 465, 25). A user without a password: ``ask`` for it (the CLI prompts when
    it runs in a terminal), else stop; logging in with an empty password would only get a
    confusing refusal from the server, or worse, an anonymous session."""
    env = os.environ if env is None else env

    def pick(value: Any, name: str) -> Any:
        return value if value not in (None, "") else (env.get(ENV_PREFIX + name) or None)

    host = pick(host, "HOST")
    if not host:
        raise ConfigError(f"no SMTP server: give --smtp-host or set {ENV_PREFIX}HOST")
    security = (pick(security, "SECURITY") or "starttls").lower()
    if security not in SECURITY:
        raise ConfigError(f"SMTP security {security!r}: choose from {', '.join(SECURITY)}")
    raw_port = pick(port, "PORT")
    try:
        port_number = int(raw_port) if raw_port is not None else DEFAULT_PORTS[security]
    except ValueError:
        raise ConfigError(f"SMTP port {raw_port!r} is not a number") from None
    if not 0 < port_number < 65536:
        raise ConfigError(f"SMTP port {port_number} is out of range")
    user = pick(user, "USER")
    password = pick(password, "PASSWORD")
    if password and not user:
        raise ConfigError(f"an SMTP password without a user: give --smtp-user or set "
                          f"{ENV_PREFIX}USER")
    if user and not password and ask is not None:
        password = ask() or None
    if user and not password:
        raise ConfigError(f"the SMTP user {user!r} has no password: set {ENV_PREFIX}PASSWORD "
                          "or use --ask-password")
    return SmtpSettings(host=host, port=port_number, security=security, user=user,
                        password=password)


def _addresses(values: Sequence[str], what: str) -> list[str]:
    out = []
    for value in values:
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            if not _ADDRESS.fullmatch(part):
                raise ConfigError(f"{what} {part!r} is not an email address")
            out.append(part)
    return out


def _email_settings(run_dir: Path) -> dict[str, Any]:
    """The [email] settings the run was made with (its manifest keeps its config)."""
    try:
        data = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    config = data.get("config") if isinstance(data, dict) else None
    email = config.get("email") if isinstance(config, dict) else None
    return email if isinstance(email, dict) else {}


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise MailError("not a run folder (no such directory)", file=str(run_dir),
                        hint="give the folder `reportgen run` printed")
    if not (run_dir / "manifest.json").exists():
        raise MailError("not a run folder (no manifest.json)", file=str(run_dir),
                        hint="give the folder `reportgen run` printed")
    manifest = _member(run_dir, "manifest.json", (".json",), "manifest")
    try:
        data = json.loads(_read(manifest).decode("utf-8"))
    except ValueError as exc:
        raise MailError(f"cannot read manifest.json ({exc})", file=str(run_dir)) from None
    email = data.get("email") if isinstance(data, dict) else None
    if not isinstance(email, dict) or not email.get("html"):
        raise MailError("this run has no email.html", file=str(run_dir),
                        hint="run again with --format including email")
    return email


def _member(run_dir: Path, name: Any, suffixes: tuple[str, ...], what: str) -> Path:
    """The file ``name`` of the run folder: a plain file name whose resolved path (links
    followed) is a regular file inside the folder, with one of ``suffixes``. manifest.json
    can be edited: '../../etc/passwd' or a link to /etc/hostname is refused, not mailed."""
    root = run_dir.resolve()
    if not isinstance(name, str) or not name or Path(name).name != name or \
            name in (".", "..") or not name.lower().endswith(suffixes):
        raise MailError(f"manifest.json names {name!r} as the {what}: not a "
                        f"{'/'.join(suffixes)} file of the run", file=str(run_dir),
                        hint="the run folder was changed; run `reportgen run` again")
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        raise MailError(f"the {what} {name!r} is not a file of the run folder",
                        file=str(run_dir),
                        hint="the run folder was changed; run `reportgen run` again")
    return path


def _read(path: Path, magic: tuple[bytes, ...] = ()) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PART_BYTES + 1)
    except OSError as exc:
        raise MailError(f"cannot read {path.name} ({exc.strerror})", file=str(path)) from None
    if len(data) > MAX_PART_BYTES:
        raise MailError(f"{path.name} is larger than {MAX_PART_BYTES:,} bytes", file=str(path))
    if magic and not data.startswith(magic):
        raise MailError(f"{path.name} is not the kind of file its name says", file=str(path),
                        hint="the run folder was changed; run `reportgen run` again")
    return data


def _text(path: Path) -> str:
    try:
        return _read(path).decode("utf-8")
    except UnicodeDecodeError:
        raise MailError(f"{path.name} is not UTF-8 text", file=str(path),
                        hint="the run folder was changed; run `reportgen run` again") from None


def _one_line(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise ConfigError(f"{what} must be one line without control characters, got {value!r}")
    return value


def build_message(run_dir: Path, to: Sequence[str], *, subject: str | None = None,
                  sender: str | None = None, attach_pdf: bool = True) -> EmailMessage:
    """The email summary of ``run_dir`` as a MIME message ready to send.

    Every ``cid:`` the HTML refers to must be an image of the run: a missing one is an error,
    not a broken picture in the director's inbox.
    """
    run_dir = Path(run_dir)
    email = _read_manifest(run_dir)
    # --to / --from, else the environment, else the [email] settings of the run's config.
    settings = _email_settings(run_dir)
    configured = settings.get("to")
    configured_to = [str(t) for t in configured] if isinstance(configured, list) else []
    recipients = _addresses(list(to) or configured_to, "recipient")
    if not recipients:
        raise ConfigError("no recipient: give --to at least once, or [email] to in the config")
    sender = sender or os.environ.get("REPORTGEN_MAIL_FROM") or \
        str(settings.get("sender") or "") or "reportgen@localhost"
    _addresses([sender], "sender")
    html = _text(_member(run_dir, email["html"], (".html",), "email HTML"))
    text = _text(_member(run_dir, email.get("text", "email.txt"), (".txt",), "email text"))
    if subject is not None:
        _one_line(subject, "--subject")
    stored = email.get("subject")
    if stored is not None and (not isinstance(stored, str) or _CONTROL.search(stored)):
        raise MailError("manifest.json holds a subject that is not one line of text",
                        file=str(run_dir), hint="give --subject, or run `reportgen run` again")

    msg = EmailMessage()
    msg["Subject"] = subject or stored or "Customer segmentation"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = next(p for p in msg.iter_parts() if p.get_content_type() == "text/html")
    assert isinstance(html_part, EmailMessage)

    listed = email.get("images", [])
    if not isinstance(listed, list) or not all(isinstance(i, dict) for i in listed):
        raise MailError("manifest.json lists its email images wrongly", file=str(run_dir),
                        hint="the run folder was changed; run `reportgen run` again")
    images = {str(i.get("cid")): i for i in listed}
    referenced = set(re.findall(r"""src=["']cid:([^"']+)["']""", html))
    missing = referenced - set(images)
    if missing:
        raise MailError(f"email.html refers to images the run does not have: "
                        f"{', '.join(sorted(missing))}", file=str(run_dir))
    for cid in sorted(referenced, key=lambda c: list(images).index(c)):
        image = images[cid]
        mime = str(image.get("mime", "image/png"))
        if mime not in IMAGE_TYPES or not _CID.fullmatch(cid):
            raise MailError(f"manifest.json lists an image of type {mime!r} as {cid!r}: only "
                            "PNG, JPEG and GIF images with a plain Content-ID are sent",
                            file=str(run_dir),
                            hint="the run folder was changed; run `reportgen run` again")
        path = _member(run_dir, image.get("file"), (".png", ".jpg", ".jpeg", ".gif"), "image")
        maintype, _, subtype = mime.partition("/")
        html_part.add_related(_read(path, (IMAGE_TYPES[mime],)), maintype=maintype,
                              subtype=subtype, cid=f"<{cid}>", filename=path.name,
                              disposition="inline")
    if attach_pdf:
        if not (run_dir / "report.pdf").is_file():
            raise MailError("this run has no report.pdf to attach", file=str(run_dir),
                            hint="use --no-attach-pdf, or run again with --format including pdf")
        pdf = _member(run_dir, "report.pdf", (".pdf",), "report")
        msg.add_attachment(_read(pdf, (b"%PDF-",)), maintype="application", subtype="pdf",
                           filename="report.pdf")
    return msg


def write_eml(message: EmailMessage, path: Path) -> Path:
    """The message as an .eml file (what --dry-run writes): open it in any mail client."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_bytes(message.as_bytes(policy=SMTP_POLICY))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MailError(f"cannot write the message ({exc.strerror})", file=str(path)) from None
    return path


def _scrub(text: str, secret: str | None) -> str:
    """Remove a secret (and its base64 forms, as AUTH sends it) from a message."""
    if not secret:
        return text
    import base64

    for form in {secret, base64.b64encode(secret.encode()).decode()}:
        text = text.replace(form, "***")
    return re.sub(r"AUTH\s+\S+\s+\S+", "AUTH ***", text)


def send(message: EmailMessage, settings: SmtpSettings) -> list[str]:
    """Send ``message`` to its To addresses; return the recipients the server accepted.

    Network and protocol failures become a one-line MailError naming the server, never the
    password."""
    where = f"{settings.host}:{settings.port}"
    recipients = [str(a.addr_spec) if isinstance(a, Address) else str(a)
                  for a in message["To"].addresses]
    try:
        if settings.security == "ssl":
            context = ssl.create_default_context()
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port,
                                                    timeout=settings.timeout, context=context)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            client.ehlo()
            if settings.security == "starttls":
                if not client.has_extn("starttls"):
                    raise MailError(f"the SMTP server {where} does not offer STARTTLS",
                                    hint="use --smtp-security ssl, or none for a local relay")
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if settings.user:
                client.login(settings.user, settings.password or "")
            refused = client.send_message(message, to_addrs=recipients)
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"the SMTP server {where} refused the login for {settings.user!r} "
                        f"({exc.smtp_code})", hint="check the user and password") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"the SMTP server {where} refused every recipient: "
                        f"{', '.join(exc.recipients)}") from None
    except smtplib.SMTPResponseException as exc:
        reply = _scrub(exc.smtp_error.decode("utf-8", "replace")
                       if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error),
                       settings.password)
        raise MailError(f"the SMTP server {where} answered {exc.smtp_code} "
                        f"{' '.join(reply.split())}") from None
    except (ConnectionRefusedError, socket.gaierror, TimeoutError, ssl.SSLError,
            smtplib.SMTPException, OSError) as exc:
        reason = _scrub(str(exc) or exc.__class__.__name__, settings.password)
        raise MailError(f"cannot send through the SMTP server {where}: "
                        f"{' '.join(reason.split())}") from None
    accepted = [r for r in recipients if r not in refused]
    for address, (code, _reply) in refused.items():
        log.warning("the SMTP server refused %s (%s)", address, code)
    return accepted
