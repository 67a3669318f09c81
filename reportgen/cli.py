"""The command line. Thin: options in, one library call, output and exit code out.

Exit codes: 0 success; 1 a bug in reportgen (traceback with --verbose); 2 bad input or config;
3 the report was written but a CI gate failed (--fail-under-silhouette, --min-segment-share,
--min-stability).
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from .config import ALGORITHMS, ENGINES, VALID_FORMATS, LimitsConfig, load_config
from .errors import ConfigError, ReportgenError, printable
from .limits import deadline

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("reportgen")

ENGINE_HELP = ("Where the work runs: default (this process) or spark (pyspark; SOURCE a "
               "Parquet/CSV path or spark:db.table; see [engine]).")


def _setup_logging(verbose: bool, quiet: bool) -> None:
    from . import progress

    handler = logging.StreamHandler(sys.stderr)
    live = progress.install(sys.stderr, quiet)
    handler.setFormatter(progress.ClearingFormatter("reportgen: %(message)s") if live
                         else logging.Formatter("reportgen: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def _errors_to_exit_codes(func: F) -> F:
    """ReportgenError → one line and exit 2; anything else is a bug → exit 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = bool(kwargs.get("verbose"))
        try:
            return func(*args, **kwargs)
        except ReportgenError as exc:
            if verbose:
                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)  # str(exc) is one printable line
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted; no report was written.", err=True)
            sys.exit(130)
        except Terminated:
            click.echo("Terminated; no report was written.", err=True)
            sys.exit(128 + signal.SIGTERM)
        except BrokenPipeError:
            # the reader of stdout is gone (`reportgen run | head -1`): nothing is wrong with
            # the run, so no message; 141 is what a shell shows for a writer stopped by
            # SIGPIPE. stdout goes to /dev/null so the exit's own flush cannot fail again.
            # (Before OSError: a broken pipe is one.)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(128 + signal.SIGPIPE)
        except OSError as exc:
            if exc.errno not in ENVIRONMENT_ERRNOS:
                raise _bug(exc, verbose) from None
            # the disk or the system refused (full, read-only, no permission): not a bug
            if verbose:
                traceback.print_exc()
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(printable(f"Error: {where}cannot write or read ({exc.strerror}) (free "
                                 "some space or fix the permissions, or choose another --out)"),
                       err=True)
            sys.exit(2)
        except MemoryError:
            if verbose:
                traceback.print_exc()
            click.echo("Error: not enough memory for this table (lower the limits under "
                       "[limits] in the config, or use a smaller table)", err=True)
            sys.exit(2)
        except Exception as exc:  # a bug: say so, keep the details for --verbose
            raise _bug(exc, verbose) from None

    return wrapper  # type: ignore[return-value]


# errno values that mean the disk or the system refused, whatever reportgen did right
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES,
                      errno.EPERM, errno.EMFILE, errno.ENFILE}


def _bug(exc: BaseException, verbose: bool) -> SystemExit:
    if verbose:
        traceback.print_exception(exc)
    click.echo(printable(
        f"Error: internal error ({exc.__class__.__name__}: {' '.join(str(exc).split())}); "
        "this is a bug in reportgen. Run again with --verbose for the traceback and report "
        "it."), err=True)
    return SystemExit(1)


def _formats(value: str | None) -> list[str] | None:
    if value is None:
        return None
    formats = [f.strip().lower() for f in value.split(",") if f.strip()]
    unknown = [f for f in formats if f not in VALID_FORMATS]
    if unknown or not formats:
        raise ConfigError(
            f"--format {value!r}: choose from {', '.join(VALID_FORMATS)} (comma-separated)"
        )
    return formats


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reportgen")
def main() -> None:
    """Turn a customer table into a customer-segmentation report."""


@main.command()
@click.argument("source", required=False)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="reportgen.toml with settings (CLI options override it).")
@click.option("--out", "out_root", default="output", show_default=True,
              type=click.Path(file_okay=False), help="Output root; the run goes in OUT/<run id>/.")
@click.option("--format", "formats", metavar="LIST",
              help="Outputs to render, comma-separated: html,pdf,email (default: all three); "
                   "json = the data files only.")
@click.option("--template-dir", "template_dir", type=click.Path(file_okay=False),
              help="Folder of templates that replace the built-in ones of the same name.")
@click.option("--k", type=int, help="Force the number of segments (skips the k search).")
@click.option("--seed", type=int, help="Random seed for every random choice (default 42).")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD",
              help="Date for ages and tenures (default: latest date in the data).")
@click.option("--table", help="Table (or schema.table) to read when SOURCE is a database URL.")
@click.option("--query", help="SQL query to read when SOURCE is a database URL.")
@click.option("--algorithm", type=click.Choice(ALGORITHMS),
              help="Clustering algorithm (default kmeans; see segment.algorithm).")
@click.option("--fail-under-silhouette", "fail_under_silhouette", type=float, metavar="X",
              help="CI gate: exit 3 if the silhouette is below X (the report is still written).")
@click.option("--min-segment-share", "gate_min_share", type=float, metavar="Y",
              help="CI gate: exit 3 if the smallest segment holds less than Y (0-1) of customers.")
@click.option("--min-stability", "min_stability", type=float, metavar="Z",
              help="CI gate: exit 3 if any segment's stability (0-1) is below Z.")
@click.option("--series", "series_name", metavar="NAME",
              help="The series this run belongs to: runs go in OUT/NAME/ and are compared with "
                   "its previous run (default: the output root's own series).")
@click.option("--previous", "previous", metavar="RUN_ID",
              help="Compare with this run of the series (default: the latest earlier one).")
@click.option("--no-previous", "fresh", is_flag=True,
              help="Start the series afresh: fit new segments, compare with nothing.")
@click.option("--refit", is_flag=True,
              help="Fit new segments and match them to the previous run's, instead of keeping "
                   "its model (series.policy).")
@click.option("--fail-on-drift", "fail_on_drift", is_flag=True, default=None,
              help="CI gate: exit 3 if the model features drifted past the thresholds.")
@click.option("--history", "history_url", metavar="URL",
              help="History database URL (e.g. postgresql://user@host/db) instead of "
                   "OUT/history.sqlite.")
@click.option("--engine", type=click.Choice(ENGINES), help=ENGINE_HELP)
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object on stdout (run id, run folder, files, segments, "
                   "gates, changes) and nothing else.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on stdout; no progress on "
                                                   "stderr.")
@_errors_to_exit_codes
def run(source: str | None, config_path: str | None, out_root: str, formats: str | None,
        template_dir: str | None, k: int | None, seed: int | None, as_of: str | None,
        table: str | None,
        query: str | None, algorithm: str | None,
        fail_under_silhouette: float | None, gate_min_share: float | None,
        min_stability: float | None, series_name: str | None, previous: str | None,
        fresh: bool, refit: bool, fail_on_drift: bool | None, history_url: str | None,
        engine: str | None, as_json: bool, verbose: bool, quiet: bool) -> None:
    """Segment SOURCE and write the report.

    SOURCE: a CSV/TSV/delimited text, Parquet or .xlsx file, or a database URL
    (postgresql://user@host/db, sqlite:///file.db) with --table or --query; passwords come
    from the environment (PGPASSWORD, or ${VAR} in the URL). Default: the bundled sample.
    A folder or glob of Parquet files, or a Parquet file past limits.rows, is streamed
    in batches (fitted on a sample of limits.sample_rows customers, everyone assigned).
    """
    _setup_logging(verbose, quiet)
    if verbose and quiet:
        raise ConfigError("--verbose and --quiet cannot be used together")
    if table and query:
        raise ConfigError("--table and --query cannot be used together")
    if previous and fresh:
        raise ConfigError("--previous and --no-previous cannot be used together")
    if as_json and quiet:
        raise ConfigError("--json and --quiet cannot be used together")
    as_of_date = None
    if as_of is not None:
        try:
            as_of_date = dt.date.fromisoformat(as_of)
        except ValueError:
            raise ConfigError(f"--as-of {as_of!r} is not a date like 2014-06-30") from None
    cfg = load_config(config_path).with_overrides(
        segment__k=k, segment__random_state=seed, report__as_of=as_of_date,
        report__formats=_formats(formats), segment__algorithm=algorithm,
        input__table=table, input__query=query, report__template_dir=template_dir,
        gates__fail_under_silhouette=fail_under_silhouette,
        gates__min_segment_share=gate_min_share, gates__min_stability=min_stability,
        series__name=series_name, series__policy="refit" if refit else None,
        series__fail_on_drift=fail_on_drift, history__url=history_url, engine__name=engine,
    )
    from . import run as run_report

    with deadline(cfg.limits.seconds):
        result = run_report(source, cfg, Path(out_root), previous=previous, fresh=fresh)
    from .gates import EXIT_GATE_FAILED

    if as_json:
        import json

        click.echo(json.dumps(_run_json(result), indent=2, sort_keys=True, ensure_ascii=False))
    elif not quiet:
        _echo_run(result)
    if result.failed_gates:
        for gate in result.failed_gates:
            click.echo(f"Gate failed: {gate.name}: {gate.reason}", err=True)
        sys.exit(EXIT_GATE_FAILED)


def _run_json(result: Any) -> dict[str, Any]:
    """What `reportgen run --json` prints: enough for a pipeline's next step."""
    import dataclasses

    report = result.report
    return {
        "run_id": report.run_id, "run_dir": str(result.run_dir), "series": report.series,
        "period": report.period, "as_of": report.as_of,
        "files": [str(p) for p in result.files],
        "customers": report.headline.customers,
        "segments": [{"id": s.id, "name": s.name, "customers": s.size, "share": s.share,
                      "value_share": s.value_share} for s in report.segments],
        "gates": [dataclasses.asdict(g) for g in report.gates],
        "changes": dataclasses.asdict(report.changes) if report.changes else None,
        "streamed": result.streamed,
    }


def _echo_run(result: Any) -> None:
    report = result.report
    period = f"{report.period}, " if report.period else ""
    click.echo(f"{report.title}: {period}{report.headline.customers:,} customers, "
               f"{report.headline.k} segments (run {report.run_id})")
    width = max(len(s.name) for s in report.segments)
    for s in report.segments:
        stable = "" if s.stability is None else \
            f"  {'tentative' if s.tentative else 'stable'} {s.stability:.2f}"
        value = f"  {s.value_share:>4.0%} of {report.value_label}" \
            if s.value_share is not None else ""
        click.echo(f"  {s.id}  {s.name:<{width}}  {s.share:>4.0%} of customers{value}{stable}")
    if result.streamed is not None:
        counts = result.streamed["customers"]
        click.echo(f"Streamed: {result.streamed['rows']:,} customers in segments.csv and "
                   f"segments.parquet, the figures above measured on a sample of "
                   f"{result.streamed['sample_rows']:,}: " + ", ".join(
                       f"{name} {count:,}" for name, count in counts.items()
                       if name != "left out" or count))
    changes = report.changes
    if changes is not None:
        line = f"Compared with {changes.previous_period} (run {changes.previous_run_id}, " \
               f"policy {changes.policy})"
        if changes.new_customers is not None:
            line += (f": {changes.new_customers:,} new, {changes.lost_customers:,} lost, "
                     f"{changes.returning_customers:,} returning customers")
        click.echo(line)
        for flow in changes.largest_flows:
            click.echo(f"  {flow}")
        if changes.drift is not None and changes.drift.exceeded:
            click.echo(f"  Drift: {'; '.join(changes.drift.reasons)}: refit recommended "
                       "(--refit)")
    click.echo("Wrote:")
    for path in result.files:
        click.echo(f"  {path}")


def _month(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(f"{value}-01")
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a month like 2011-06") from None


@main.command()
@click.argument("source")
@click.option("--from", "start", metavar="YYYY-MM",
              help="First month (default: the first month of the data).")
@click.option("--to", "end", metavar="YYYY-MM",
              help="Last month (default: the last month of the data).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="reportgen.toml with settings (CLI options override it).")
@click.option("--out", "out_root", default="output", show_default=True,
              type=click.Path(file_okay=False), help="Output root: every month's run goes in it.")
@click.option("--format", "formats", metavar="LIST",
              help="Outputs to render, comma-separated (default: html,pdf,email).")
@click.option("--table", help="Table (or schema.table) to read when SOURCE is a database URL.")
@click.option("--query", help="SQL query to read when SOURCE is a database URL.")
@click.option("--engine", type=click.Choice(ENGINES), help=ENGINE_HELP)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@_errors_to_exit_codes
def backfill(source: str, start: str | None, end: str | None, config_path: str | None,
             out_root: str, formats: str | None, table: str | None, query: str | None,
             engine: str | None, verbose: bool, quiet: bool) -> None:
    """One run per month end of the order lines in SOURCE, into one series in OUT.

    Each run is a snapshot as of the last day of its month (the last month's ends at the last
    day in the data): a year of monthly reports from one export.
    """
    _setup_logging(verbose, quiet)
    if verbose and quiet:
        raise ConfigError("--verbose and --quiet cannot be used together")
    cfg = load_config(config_path).with_overrides(
        report__formats=_formats(formats), input__table=table, input__query=query,
        engine__name=engine)
    from .pipeline import backfill as backfill_series

    # One limit for the whole backfill, not each month: the months finished before it stay
    # (each run folder is moved into place complete), the one in progress leaves nothing.
    with deadline(cfg.limits.seconds, "the backfill"):
        results = backfill_series(source, cfg, Path(out_root), _month(start, "--from"),
                                  _month(end, "--to"))
    for result in results:
        report = result.report
        names = ", ".join(s.name for s in report.segments)
        click.echo(f"{report.as_of}  {report.run_id}  {report.headline.customers:>9,} customers"
                   f"  {report.headline.k} segments: {names}")
    click.echo(f"{len(results)} monthly runs in {out_root}")


@main.command()
@click.argument("new_customers")
@click.option("--model", "model_dir", required=True, type=click.Path(),
              help="Folder of a `reportgen run` (it holds model.skops).")
@click.option("--out", "out_dir", default="output/scores", show_default=True,
              type=click.Path(file_okay=False), help="Folder for segments.csv and score.json.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@_errors_to_exit_codes
def score(new_customers: str, model_dir: str, out_dir: str, verbose: bool, quiet: bool) -> None:
    """Assign the customers of NEW_CUSTOMERS to the segments of a previous run."""
    _setup_logging(verbose, quiet)
    if verbose and quiet:
        raise ConfigError("--verbose and --quiet cannot be used together")
    from .pipeline import score as score_pipeline

    with deadline(LimitsConfig().seconds):
        result = score_pipeline(new_customers, Path(model_dir), Path(out_dir))
    s = result.summary
    click.echo(f"Scored {s['customers']:,} of {s['customers_in']:,} customers with the "
               f"segments of run {s['model_run']}")
    for seg in s["segments"]:
        click.echo(f"  {seg['id']}  {seg['name']}  {seg['customers']:,} ({seg['share']:.0%})")
    click.echo("Wrote:")
    for path in result.files:
        click.echo(f"  {path}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--to", "to", multiple=True, metavar="ADDRESS",
              help="Recipient; repeat for several (a@x.com,b@y.com also works); default: "
                   "[email] to of the run's config.")
@click.option("--subject", help="Subject (default: company, title and period of the report).")
@click.option("--from", "sender", metavar="ADDRESS",
              help="Sender (default: $REPORTGEN_MAIL_FROM, else [email] sender of the run's "
                   "config, else reportgen@localhost).")
@click.option("--attach-pdf/--no-attach-pdf", default=True, show_default=True,
              help="Attach the run's report.pdf.")
@click.option("--dry-run", is_flag=True,
              help="Write the message to message.eml in RUN_DIR (or --out) instead of sending.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Where --dry-run writes the message (default RUN_DIR/message.eml).")
@click.option("--smtp-host", help="SMTP server (default $REPORTGEN_SMTP_HOST).")
@click.option("--smtp-port", type=int,
              help="SMTP port (default $REPORTGEN_SMTP_PORT, else 587; 465 with ssl, 25 with "
                   "none).")
@click.option("--smtp-user", help="SMTP login (default $REPORTGEN_SMTP_USER).")
@click.option("--smtp-security", type=click.Choice(["starttls", "ssl", "none"]),
              help="Encryption (default $REPORTGEN_SMTP_SECURITY, else starttls).")
@click.option("--ask-password", is_flag=True,
              help="Prompt for the SMTP password (default $REPORTGEN_SMTP_PASSWORD).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging; tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
@_errors_to_exit_codes
def email(run_dir: str, to: tuple[str, ...], subject: str | None, sender: str | None,
          attach_pdf: bool, dry_run: bool, out_path: str | None, smtp_host: str | None,
          smtp_port: int | None, smtp_user: str | None, smtp_security: str | None,
          ask_password: bool, verbose: bool, quiet: bool) -> None:
    """Send the email summary of RUN_DIR (a folder written by `reportgen run`).

    The message holds the HTML summary with its charts inline, a plain-text alternative and
    report.pdf. The password is read from $REPORTGEN_SMTP_PASSWORD or a prompt, never from the
    command line, and is never printed.
    """
    _setup_logging(verbose, quiet)
    if verbose and quiet:
        raise ConfigError("--verbose and --quiet cannot be used together")
    if out_path and not dry_run:
        raise ConfigError("--out only applies with --dry-run")
    from . import mail

    message = mail.build_message(Path(run_dir), to, subject=subject, sender=sender,
                                 attach_pdf=attach_pdf)
    if dry_run:
        path = mail.write_eml(message, Path(out_path) if out_path else
                              Path(run_dir) / "message.eml")
        if not quiet:
            click.echo(f"Wrote {path} (not sent): {message['Subject']}")
        return
    def ask() -> str:
        return str(click.prompt("SMTP password", hide_input=True, err=True))

    password = ask() if ask_password else None
    # A login without a password: prompt in a terminal; in cron or CI, stop with one line.
    settings = mail.smtp_settings(host=smtp_host, port=smtp_port, user=smtp_user,
                                  password=password, security=smtp_security,
                                  ask=ask if sys.stdin.isatty() else None)
    accepted = mail.send(message, settings)
    if not quiet:
        click.echo(f"Sent {message['Subject']!r} to {', '.join(accepted)} via "
                   f"{settings.host}:{settings.port}")


@main.command()
@click.option("--out", "out_root", default="output", show_default=True,
              type=click.Path(file_okay=False), help="Output root whose series to list.")
@click.option("--series", help="Only this series (default: every series of the root).")
@click.option("--history", "history_url", metavar="URL",
              help="History database URL (e.g. postgresql://user@host/db) instead of "
                   "OUT/history.sqlite; passwords come from the environment.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of runs on stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@_errors_to_exit_codes
def history(out_root: str, series: str | None, history_url: str | None, as_json: bool,
            verbose: bool) -> None:
    """List the runs of each series in OUT: period, run id, customers, k, personas, gates."""
    from . import history as history_

    runs = history_.listing(Path(out_root), history_url, series)
    if as_json:
        import json

        click.echo(json.dumps([r.to_dict() for r in runs], indent=2, ensure_ascii=False))
        return
    click.echo(history_.describe(runs, history_.history_location(Path(out_root),
                                                                 history_url)))


def _source_config(config_path: str | None, table: str | None, query: str | None) -> Any:
    if table and query:
        raise ConfigError("--table and --query cannot be used together")
    return load_config(config_path).with_overrides(input__table=table, input__query=query)


@main.command()
@click.argument("source", required=False)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="reportgen.toml to check along with the table.")
@click.option("--table", help="Table (or schema.table) to read when SOURCE is a database URL.")
@click.option("--query", help="SQL query to read when SOURCE is a database URL.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@_errors_to_exit_codes
def validate(source: str | None, config_path: str | None, table: str | None,
             query: str | None, verbose: bool) -> None:
    """Show the roles, the cleaning and any problem for SOURCE, without clustering.

    Exit code 0 when `reportgen run` would go ahead, 2 when it would stop (the reason is the
    last line).
    """
    from .check import check, describe

    cfg = _source_config(config_path, table, query)
    with deadline(cfg.limits.seconds, "validate"):
        result = check(source, cfg)
    click.echo(printable(describe(result)))  # column names are data: no terminal escapes
    if result.problem is not None:
        raise result.problem


@main.command()
@click.argument("source", required=False)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Settings to start from (e.g. column roles you already know).")
@click.option("--out", "out_path", default="reportgen.toml", show_default=True,
              type=click.Path(dir_okay=False), help="Where to write the config.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.option("--table", help="Table (or schema.table) to read when SOURCE is a database URL.")
@click.option("--query", help="SQL query to read when SOURCE is a database URL.")
@click.option("-v", "--verbose", is_flag=True, help="Tracebacks on errors.")
@_errors_to_exit_codes
def init(source: str | None, config_path: str | None, out_path: str, force: bool,
         table: str | None, query: str | None, verbose: bool) -> None:
    """Write a commented reportgen.toml with what reportgen infers from SOURCE.

    It holds the column roles, the features, the k range, the seed, the inferred as_of and
    date format, and branding placeholders, ready to edit.
    """
    from .check import check, config_text

    out = Path(out_path)
    if out.exists() and not force:
        raise ConfigError("already exists", file=str(out),
                          hint="use --force to overwrite it, or --out another path")
    cfg = _source_config(config_path, table, query)
    with deadline(cfg.limits.seconds, "init"):
        result = check(source, cfg)
    text = config_text(result)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the config ({exc.strerror})", file=str(out)) from None
    roles = sum(1 for r in result.schema.roles.values() if r != "ignore")
    click.echo(printable(f"Wrote {out}: {roles} of {len(result.schema.roles)} columns have a "
                         "role" + (f", {len(result.features.model)} model features"
                                   if result.features else "")))
    if result.problem is not None:
        click.echo(printable(f"Warning: {result.problem}; edit {out} before running"), err=True)


# Python collects the young generation every 700 allocations; a run allocates millions of
# short-lived objects (pandas, Altair, the PDF layout): collecting far less often was measured
# at -12% on the PDF layout.
GC_THRESHOLDS = (50_000, 20, 100)


class Terminated(BaseException):
    """SIGTERM arrived (docker stop, systemd, a CI time-out). A BaseException, like
    KeyboardInterrupt, so no ``except Exception`` swallows it and every ``finally`` (the
    output stage's removal of its partial folder among them) runs on the way out."""


def _terminate(signum: int, frame: object) -> None:
    # a second SIGTERM must not interrupt the clean-up the first one started
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


def entry() -> None:
    """The ``reportgen`` command: SIGTERM becomes ``Terminated`` (exit 143 once the run has
    cleaned up), then the CLI runs and the interpreter exits normally (atexit handlers,
    coverage among them, run; exit codes are click's)."""
    import gc

    from .render import worker

    gc.set_threshold(*GC_THRESHOLDS)
    signal.signal(signal.SIGTERM, _terminate)
    worker.allow()  # the PDF and the email made in a second process (render.worker)
    try:
        main()
    finally:
        # The interpreter's exit collects every generation more than once while it tears the
        # modules down: ~350,000 objects after a 1 M-customer run (2,600 modules), 0.6-1.0 s
        # of the process's CPU for memory the OS takes back anyway. Frozen, they are left to
        # reference counting (freed as before) and the exit's collections look only at what
        # is made after this point: 0.85-1.1 s → 0.15 s from here to the process's end. A
        # cycle of them is not collected: no file, lock or connection waits for that here
        # (every one is closed where it is used; atexit handlers and weakref.finalize run).
        gc.freeze()
        # `reportgen run | head -1`: head may be gone when the summary is flushed. Flush now
        # and point stdout at /dev/null if so, the recipe of Python's signal docs, so the
        # exit is not an "Exception ignored ... BrokenPipeError" (and exit code 120).
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
