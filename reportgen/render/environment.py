"""The one Jinja2 environment, and what every template gets besides the Report.

Every template gets the same two things: ``report`` (the Report, the single source of truth)
and ``assets`` (an ``Assets``: what the code built for this output: the Vega JavaScript for
the HTML, chart images for the PDF and the email). Templates lay these out; they never compute.

A template from ``report.template_dir`` that fails is the user's to fix: a ConfigError naming
that setting, the file and the line (exit 2). One of the built-in templates failing is a bug
and is raised as it is (exit 1, the traceback with --verbose).
"""

from __future__ import annotations

import contextlib
import functools
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .. import __version__, fmt
from ..errors import ConfigError
from ..report import OVERLAP_BELOW, TENTATIVE_BELOW, Report
from ..resources import templates_dir
from . import branding

# vega-embed options: no actions menu (it links to the online Vega editor), and the mode is
# given because the specs carry no $schema URL.
EMBED_OPTIONS: dict[str, Any] = {"actions": False, "mode": "vega-lite", "renderer": "svg"}


@dataclass(frozen=True)
class ChartImage:
    """An image a template shows: its URI (data: in the PDF, cid: in the email) and its size
    in CSS pixels."""

    uri: str
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class RoleGroup:
    """The input columns that share a role, for the printed data dictionary."""

    role: str
    columns: list[str]
    missing: int  # blank cells over these columns
    notes: list[str]


@dataclass(frozen=True)
class Assets:
    """What a template gets besides the Report; all of it built by code, none of it user data.

    vega_js: the Vega + Vega-Lite + vega-embed bundle, inlined once (HTML only).
    embed_options: options passed to every vegaEmbed call (HTML only).
    images: chart name -> ChartImage (PDF: reportgen-chart: URLs its fetcher serves from
        memory, see render.pdf.in_memory; email: cid: URIs).
    column_roles: the data dictionary's columns grouped by role (PDF only: one table row per
        role instead of one per column keeps WeasyPrint's table time down, trap 5).
    generator: "reportgen <version>", for the colophon.
    logo: the logo by cid (email only: the reports use report.logo).
    """

    vega_js: Markup = Markup("")
    embed_options: dict[str, Any] = field(default_factory=lambda: dict(EMBED_OPTIONS))
    images: dict[str, ChartImage] = field(default_factory=dict)
    column_roles: list[RoleGroup] = field(default_factory=list)
    generator: str = f"reportgen {__version__}"
    logo: ChartImage | None = None


@jinja2.pass_context
def _money(ctx: jinja2.runtime.Context, value: float) -> str:
    report = ctx.get("report")
    return fmt.money(value, getattr(report, "currency", "$"))


@jinja2.pass_context
def _by_unit(ctx: jinja2.runtime.Context, value: float, unit: str) -> str:
    report = ctx.get("report")
    return fmt.by_unit(value, unit, getattr(report, "currency", "$"))


@jinja2.pass_context
def _value(ctx: jinja2.runtime.Context, value: float) -> str:
    """An amount of the report's value measure: money for spend, a plain number for a score."""
    report = ctx.get("report")
    return fmt.by_unit(value, getattr(report, "value_unit", "money"),
                       getattr(report, "currency", "$"))


def _num(value: float, digits: int = 0) -> str:
    return fmt.num(value, digits)


def _autoescape(name: str | None) -> bool:
    # everything is HTML except the plain-text email, where "&amp;" would be shown as such
    return not (name or "").endswith(".txt.j2")


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """The built-in templates compiled once per Jinja and template version, kept in the cache
    folder beside the Vega bundle (compiling them took ~0.5 s of every run). A cache that
    cannot be written only costs that compiling."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """The cache of the built-in templates' code: in vega.cache_folder() (one only the user
    can write), None when there is none or it cannot be made."""
    from .vega import cache_folder

    try:
        folder = cache_folder()
        if folder is None:
            return None
        folder = folder / "jinja"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except (ConfigError, OSError):
        return None  # a bad REPORTGEN_CACHE_DIR was refused before the run, if it had to be
    return _BytecodeCache(str(folder), "reportgen-%s.cache")


class _FolderLoader(jinja2.FileSystemLoader):
    """The user's template folder, read only inside: a template that is a link to a file
    elsewhere (``report.html.j2 -> ~/.ssh/id_rsa``) would be printed into the report, so it
    is refused before it is opened. Jinja already refuses ``..`` in a template name."""

    def get_source(self, environment: jinja2.Environment, template: str
                   ) -> tuple[str, str, Any]:
        pieces = template.split("/")
        root = Path(self.searchpath[0])  # the user's folder; the built-in ones come after
        candidate = Path(root, *pieces)
        # ".." in a name: Jinja refuses it itself (TemplateNotFound)
        if ".." not in pieces and candidate.is_file() and \
                not candidate.resolve().is_relative_to(root.resolve()):
            raise ConfigError(f"a template of 'report.template_dir' is a link to "
                              f"{str(candidate.resolve())!r}, outside the folder",
                              file=str(candidate), hint="copy the file into the template folder")
        return super().get_source(environment, template)


@functools.lru_cache(maxsize=8)
def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """The one Jinja environment: a user template dir (if any) is searched before the
    built-in templates; autoescape on; a missing variable is an error, not a blank."""
    search = [str(template_dir)] if template_dir is not None else []
    search.append(str(templates_dir()))
    loader = jinja2.FileSystemLoader(search) if template_dir is None else _FolderLoader(search)
    # A template folder of the user's is code reportgen did not write: it runs in Jinja's
    # sandbox (no attribute starting with _, no unsafe callables, bounded range()), so
    # {{ cycler.__init__.__globals__.os.popen('id').read() }} fails instead of running a
    # shell. The built-in templates alone keep the plain environment (and its speed).
    kind = jinja2.Environment if template_dir is None else SandboxedEnvironment
    env = kind(
        loader=loader,
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # the user's templates are compiled each run: no code of theirs is kept on disk
        bytecode_cache=_bytecode_cache() if template_dir is None else None,
    )
    # formatting only: templates never compute
    env.filters.update(
        pct=fmt.pct,
        share=fmt.share,
        money=_money,
        value=_value,
        num=_num,
        signed=fmt.signed,
        points=_points,
        unit=_by_unit,
        ink_on=branding.ink_on,
        text_on_white=branding.text_on_white,
    )
    # the thresholds the templates name
    env.globals.update(tentative_below=TENTATIVE_BELOW, overlap_below=OVERLAP_BELOW)
    return env


def _points(delta: float) -> str:
    """A change of share in percentage points: 0.031 -> '+3.1 pts', 0 -> '±0 pts'."""
    points = delta * 100
    if abs(points) < 0.05:
        return "±0 pts"
    return f"{points:+.1f} pts"


def render_template(name: str, report: Report, assets: Assets,
                    template_dir: Path | None = None) -> str:
    """Template ``name`` rendered from the Report and the assets.

    A failure inside a template of ``template_dir`` (syntax, a missing variable, a missing
    include) is a ConfigError naming ``report.template_dir``, the file and the line."""
    try:
        return environment(template_dir).get_template(name).render(report=report,
                                                                   assets=assets)
    except ConfigError:
        raise  # already names the setting and the file (a link out of the folder)
    except Exception as exc:
        where = user_template_at_fault(exc, template_dir)
        if where is None:
            raise  # the built-in templates failing is a bug in reportgen
        path, line = where
        if isinstance(exc, jinja2.TemplateNotFound):  # its message is the bare name
            detail = f"no template {exc.name!r} in the folder or among the built-in ones"
        else:
            detail = exc.message if isinstance(exc, jinja2.TemplateError) and exc.message \
                else f"{type(exc).__name__}: {exc}"
        raise ConfigError(f"a template of 'report.template_dir' failed: {detail}",
                          file=f"{path}" + (f", line {line}" if line else "")) from None


def user_template_at_fault(exc: BaseException, template_dir: Path | None
                           ) -> tuple[Path, int | None] | None:
    """(file, line) in ``template_dir`` where ``exc`` arose, or None if it did not arise in a
    user template (Jinja puts each template's file and line in the traceback)."""
    if template_dir is None:
        return None
    root = Path(template_dir).resolve()

    def inside(filename: str | None) -> bool:
        return bool(filename) and Path(str(filename)).resolve().is_relative_to(root)

    if isinstance(exc, jinja2.TemplateSyntaxError) and inside(exc.filename):
        return Path(str(exc.filename)), exc.lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if inside(frame.filename):
            return Path(frame.filename), frame.lineno
    return None
