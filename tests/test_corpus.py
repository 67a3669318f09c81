"""The bad-input corpus: every case ends in a documented repair or one clear line and exit 2.

The files are in tests/data/corpus/ (made by make_corpus.py there; README.md lists them).
Each case is run through the command line, as a user would, and its exact outcome checked:

- a repair: exit 0 and the exact step in the cleaning log (summary.json "cleaning");
- a refusal: exit 2, exactly one line on stderr naming the file (and column and row where
  known) and what to do, no traceback, and no output folder left behind.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.output import neutralise

from .runs import only_run, run_folders

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    """Settings that keep each run short: no stability refits, a small k range."""
    path = tmp_path_factory.mktemp("cfg") / "fast.toml"
    path.write_text("[segment]\nstability_runs = 0\nk_max = 5\n")
    return str(path)


def refused(args: list[str], out: Path) -> str:
    """The one line of a refusal; `run` writes nothing, `validate` stops with the same line."""
    extra = ["--out", str(out), "--format", "json"] if args[0] == "run" else []
    result = invoke(*args, *extra)
    assert result.exit_code == 2, (result.exit_code, result.output)
    # Progress lines ("reportgen: load done in 0.01 s") aside, one line says what is wrong.
    lines = [ln for ln in result.stderr.strip().splitlines()
             if not ln.startswith("reportgen: ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())  # nothing half-written
    return lines[0]


def repaired(name: str, out: Path, fast: str, *extra: str) -> dict:
    result = invoke("run", str(CORPUS / name), "--out", str(out), "--format", "json", "-q",
                    "--config", fast, *extra)
    assert result.exit_code == 0, result.output
    run_dir = only_run(out)
    return {"summary": json.loads((run_dir / "summary.json").read_text()), "dir": run_dir}


# Refusals: (file, message after "Error: <path>: ")
REFUSED = [
    ("empty.csv", "the file is empty"),
    ("whitespace_only.csv", "the file is empty"),
    ("header_only.csv", "the table has a header but no rows"),
    ("binary_garbage.csv", "the file is binary, not a delimited text table (export it as "
                           "CSV, or set [input] encoding if it is UTF-16/32)"),
    ("control_characters.csv", "the file is binary, not a delimited text table (export it "
                               "as CSV)"),
    ("png_named_csv.csv", "the file is binary, not a delimited text table (export it as CSV, "
                          "or set [input] encoding if it is UTF-16/32)"),
    ("pdf_named_csv.csv", "the file is a PDF document (export the table as CSV, Parquet or "
                          ".xlsx)"),
    ("zip_archive.csv", "the file is a zip archive, not an .xlsx workbook (export the table "
                        "as CSV, Parquet or .xlsx)"),
    ("old_excel.xls", "this is an old Excel .xls workbook (save it as .xlsx or CSV)"),
    ("truncated.xlsx", "not a readable .xlsx workbook (BadZipFile) (open it in Excel and save "
                       "it again as .xlsx)"),
    ("single_column.csv", "found a single column with delimiter ',' (the table needs an id or "
                          "several columns; if it has them, set [input] delimiter in the "
                          "config)"),
    ("ragged_row.csv", "row 5: 10 fields where the header has 8 (check quoting on that line, "
                       "or the delimiter (','))"),
    ("unclosed_quote.csv", "row 4: a quoted cell is never closed (check the double quotes on "
                           "that line)"),
    ("ambiguous_dates.csv", "column 'joined': dates are ambiguous: %d-%m-%Y or %m-%d-%Y both "
                            "fit every value (set [input] date_format in the config)"),
    ("one_row.csv", "only 1 usable row: 3 segments need at least 6 (use a larger table, or a "
                    "smaller --k / segment.k_min)"),
    ("fewer_rows_than_k.csv", "only 4 usable rows: 3 segments need at least 6 (use a larger "
                              "table, or a smaller --k / segment.k_min)"),
    ("all_features_constant.csv", "no column to measure customers by (3 of 4 columns are "
                                  "constant, empty or free text) (see the roles with "
                                  "`reportgen validate` and give numeric columns a role in "
                                  "[columns])"),
    ("only_text.csv", "no column to measure customers by (1 of 2 columns are constant, empty "
                      "or free text) (see the roles with `reportgen validate` and give "
                      "numeric columns a role in [columns])"),
    # issue 13: hostile inputs
    ("long_column_name.csv", "the name of column 4 is 100,000 characters long (more than "
                             "limits.header_chars = 1,000) (raise header_chars under [limits] "
                             "in the config if the input is right)"),
    ("note_first_sheet.xlsx", "the first sheet 'Read me' has a single column (the workbook has "
                              "other sheets: set [input] sheet to one of 'Customers')"),
]


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("name, message", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_input_is_one_line_exit_2(name, message, command, tmp_path):
    path = str(CORPUS / name)
    assert refused([command, path], tmp_path / "out") == f"Error: {path}: {message}"


def test_broken_parquet_is_refused(tmp_path):
    path = str(CORPUS / "broken.parquet")
    line = refused(["run", path], tmp_path / "out")
    assert line.startswith(f"Error: {path}: not a readable Parquet file (")
    assert line.endswith("(check that the file was copied whole)")


# Repairs: (file, [(column, action, rows, detail)] that must be in the cleaning log)
REPAIRED = [
    ("duplicated_ids.csv", [("customer_id", "excluded rows", 2,
                             "repeated ids, first at row 7")]),
    ("blank_ids.csv", [("customer_id", "excluded rows", 1, "blank key, first at row 4")]),
    ("all_blank_column.csv", [("notes", "ignored column", 0, "empty column")]),
    ("constant_column.csv", [("country", "ignored column", 0,
                              "constant: the same value in every row")]),
    ("text_in_numeric_column.csv", [
        ("income", "set missing", 2, "'unknown' is not a number, first at row 5"),
        ("income", "imputed", 2, "blank → median 72,500")]),
    ("thousands_separators.csv", [("income", "converted", 24,
                                   "'$69,000' → 69000, first at row 2")]),
    ("negative_amounts.csv", [("wine_spend", "set missing", 2,
                               "negative values, first at row 8"),
                              ("wine_spend", "imputed", 2, "blank → median 60")]),
    ("absurd_amounts.csv", [("meat_spend", "set missing", 1, "5e+15, first at row 12")]),
    ("inf_and_1e308.csv", [("wine_spend", "set missing", 2, "infinite value, first at row 3"),
                           ("meat_spend", "set missing", 1,
                            "negative infinite value, first at row 5")]),
    ("future_dates.csv", [("joined", "set missing", 1, "2099-01-01 (first at row 13)"),
                          ("joined", "imputed", 1, "blank → median date 2012-10-16")]),
    ("unreadable_dates.csv", [("joined", "set missing", 2,
                               "not a %d-%m-%Y date, first at row 6")]),
    ("impossible_ages.csv", [("age", "set missing", 1, "negative values, first at row 5"),
                             ("age", "set missing", 1, "ages outside 16-100"),
                             ("age", "imputed", 2, "blank → median 44")]),
    ("huge_cell.csv", [("comment", "ignored column", 0, "free text: 24 distinct values")]),
    ("invalid_utf8.csv", [("*", "decoded", 2, "not valid UTF-8 (first at line 2); read as "
                                              "Windows-1252 / Latin-1")]),
    ("latin1.csv", [("*", "decoded", 6, "not valid UTF-8 (first at line 2); read as "
                                        "Windows-1252 / Latin-1")]),
    ("gzip_text.csv.gz", [("*", "decompressed", 0, "gzip")]),
    ("duplicate_column_names.csv", [("*", "renamed columns", 0, "age → age.1")]),
    ("no_id_and_a_row_column.csv", [("row_number", "added key", 24,
                                     "row number in the file")]),
    ("yes_no_with_junk.csv", [("churned", "recoded", 23, "Yes → 1, No → 0, no → 0"),
                              ("churned", "set missing", 1,
                               "'maybe' is not yes/no, first at row 11"),
                              ("churned", "imputed", 1,
                               "blank → 0 (the most common answer)")]),
    # a frequency of 1.7 is capped at 1 (issue 12), not set missing and imputed
    ("rate_above_one.csv", [("purchase_frequency", "capped", 1,
                             "values up to 1.70 → 1, first at row 7")]),
    ("mixed_number_formats.csv", [("yearly_earnings", "converted", 20,
                                   "'$21,000' → 21000, first at row 3")]),
    ("birth_years_no_dates.csv", [("year_birth", "set missing", 1, "birth years 1893"),
                                  ("year_birth", "imputed", 1, "blank → median 1973")]),
    ("long_integer_ids.csv", [("customer_id", "kept as text", 0,
                               "integers of 16 or more digits"),
                              ("customer_id", "excluded rows", 1, "blank key, first at row 9")]),
    ("nested_columns.parquet", [
        ("tags", "ignored column", 0, "nested values (list<element: int64>)"),
        ("address", "ignored column", 0, "nested values (struct<city: string, zip: string>)"),
        ("scores", "ignored column", 0, "nested values (map<string, int64 ('scores')>)")]),
]


@pytest.mark.parametrize("name, steps", REPAIRED, ids=[c[0] for c in REPAIRED])
def test_repaired_input_is_in_the_cleaning_log(name, steps, tmp_path, fast):
    summary = repaired(name, tmp_path, fast)["summary"]
    log = [(s["column"], s["action"], s["rows"], s["detail"]) for s in summary["cleaning"]]
    for step in steps:
        assert step in log, (step, log)
    assert all(s["reason"] for s in summary["cleaning"])  # every step says why


# Read unchanged: the same customers as the plain file, whatever the dialect.
SAME_TABLE = ["semicolons.csv", "utf16_bom.csv", "utf8_bom_crlf.csv",
              "padded_header_blank_lines.csv", "gzip_text.csv.gz", "excel_sep_line.csv",
              "declared_dimensions.xlsx"]


@pytest.mark.parametrize("name", SAME_TABLE)
def test_dialects_read_the_same_customers(name, tmp_path, fast):
    summary = repaired(name, tmp_path, fast)["summary"]
    roles = {c["column"]: c["role"] for c in summary["columns"]}
    assert roles == {"customer_id": "id", "age": "age", "income": "income",
                     "wine_spend": "spend", "meat_spend": "spend", "web_visits": "visits",
                     "joined": "signup_date", "region": "categorical"}
    assert summary["headline"]["customers"] == 24
    assert [s for s in summary["cleaning"] if s["action"] not in ("decompressed",)] == []


def test_formula_cells_are_neutralised_in_segments_csv(tmp_path, fast):
    run_dir = repaired("formula_cells.csv", tmp_path, fast)["dir"]
    ids = pd.read_csv(run_dir / "segments.csv", dtype=str)["customer_id"].tolist()
    assert ids[:5] == ["'=HYPERLINK(\"http://x\",\"y\")", "'+1+1", "'-2+3", "'@SUM(A1)",
                       "'=1+1"]
    assert not any(i[0] in "=+-@" for i in ids)


@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("plain", "plain"), ("", ""), (5, 5), (-5, -5), (None, None),
])
def test_neutralise_prefixes_only_formula_text(value, expected):
    assert neutralise(value) == expected


def test_html_in_category_values_is_kept_as_data_and_escaped_in_html(tmp_path, fast):
    result = invoke("run", str(CORPUS / "html_in_categories.csv"), "--out", str(tmp_path),
                    "--format", "html", "-q", "--config", fast)
    assert result.exit_code == 0, result.output
    run_dir = only_run(tmp_path)
    summary = (run_dir / "summary.json").read_text()
    assert "<script>alert('x')</script>" in json.loads(summary)["features"][-1]["label"] or \
        "<script>" in summary  # the data keeps the value as it was
    html = (run_dir / "report.html").read_text()
    assert "<script>alert('x')</script>" not in html
    assert "<b>North</b>" not in html


# Options and configuration --------------------------------------------------------------

def _cfg(tmp_path: Path, text: str) -> str:
    path = tmp_path / "reportgen.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("toml, message", [
    ('[columns]\n"incom" = "income"\n',
     "configured column 'incom' is not in the table (did you mean 'income'?)"),
    ('[columns]\n"income" = "incme"\n',
     "unknown role 'incme' for column 'income' (did you mean 'income'?)"),
    ('[scale]\n"salary" = 1000\n',
     "configured column 'salary' is not in the table (check [scale] in the config)"),
    ('[columns]\nregion = "income"\n',
     "[columns] gives 'region' the role 'income', but its values are not numbers (e.g. "
     "'North', 'South', 'East') (give it a category role such as 'education' or "
     "'categorical', or remove the line)"),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_config_that_does_not_match_the_table(toml, message, command, tmp_path):
    path = str(CORPUS / "duplicated_ids.csv")
    cfg = _cfg(tmp_path, toml)
    line = refused([command, path, "--config", cfg], tmp_path / "out")
    assert line == f"Error: {path}: {message}"


@pytest.mark.parametrize("toml, message", [
    ("[segment]\nrandom_stat = 1\n", "unknown key 'segment.random_stat'; did you mean "
                                     "'random_state'?"),
    ('[segment]\nk = "four"\n', "'segment.k' must be an int, got 'four'"),
    ('[input]\nencoding = "utf-99"\n', "'input.encoding' names an unknown encoding 'utf-99' "
                                       "(e.g. utf-8, cp1252, latin-1)"),
    ('[input]\ndelimiter = ";;"\n', "'input.delimiter' must be one character, got ';;' "
                                    "(e.g. \";\" or \"\\t\")"),
    ('[scale]\nincome = "k"\n', "'scale' must be a table of name = number pairs"),
    ("[scale]\nincome = -3\n", "'scale.income' must be a positive factor such as 1000, got -3"),
    ('[input]\nsheet = 3\n', "'input.sheet' must be a str, got 3"),
    ("[segment\n", "not valid TOML"),
])
def test_config_unknown_key_or_wrong_type_names_the_key(toml, message, tmp_path):
    cfg = _cfg(tmp_path, toml)
    line = refused(["run", str(CORPUS / "duplicated_ids.csv"), "--config", cfg],
                   tmp_path / "out")
    assert line.startswith(f"Error: {cfg}: {message}"), line


def test_ambiguous_dates_run_once_the_format_is_configured(tmp_path, fast):
    cfg = _cfg(tmp_path, Path(fast).read_text() + '[input]\ndate_format = "%d-%m-%Y"\n')
    result = invoke("run", str(CORPUS / "ambiguous_dates.csv"), "--config", cfg, "--out",
                    str(tmp_path / "out"), "--format", "json", "-q")
    assert result.exit_code == 0, result.output


def test_wrong_delimiter_in_the_config(tmp_path):
    cfg = _cfg(tmp_path, '[input]\ndelimiter = ","\n')
    path = str(CORPUS / "semicolons.csv")
    line = refused(["run", path, "--config", cfg], tmp_path / "out")
    assert line == (f"Error: {path}: found a single column with delimiter ',' (the table "
                    "needs an id or several columns; if it has them, set [input] delimiter "
                    "in the config)")


def test_more_segments_than_rows(tmp_path):
    path = str(CORPUS / "duplicated_ids.csv")
    line = refused(["run", path, "--k", "12"], tmp_path / "out")
    assert line == (f"Error: {path}: only 22 usable rows (2 left out, see the cleaning log): "
                    "12 segments need at least 24 (use a larger table, or a smaller --k / "
                    "segment.k_min)")


# Paths ------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.csv")
    assert refused(["run", path], tmp_path / "out") == \
        f"Error: {path}: file not found (check the path)"


def test_broken_link(tmp_path):
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "gone.csv")
    assert refused(["run", str(link)], tmp_path / "out") == \
        f"Error: {link}: file not found (the link points nowhere)"


def test_a_directory_instead_of_a_file(tmp_path):
    assert refused(["run", str(tmp_path)], tmp_path / "out") == \
        f"Error: {tmp_path}: is a folder, not a file (give the table's path)"


def test_an_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "locked.csv"
    path.write_bytes((CORPUS / "duplicated_ids.csv").read_bytes())
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: make the read fail as it would for anyone else
        real = Path.open

        def deny(self: Path, *args, **kwargs):
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", deny)
    assert refused(["run", str(path)], tmp_path / "out") == \
        f"Error: {path}: cannot read the file (Permission denied) (check the file's permissions)"


def test_missing_config_file(tmp_path):
    cfg = str(tmp_path / "nope.toml")
    line = refused(["run", str(CORPUS / "duplicated_ids.csv"), "--config", cfg],
                   tmp_path / "out")
    assert line == f"Error: {cfg}: config file not found"


# Databases --------------------------------------------------------------------------------

def test_sql_table_that_does_not_exist(tmp_path):
    import sqlite3

    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE customers (id INTEGER, spend REAL)")
    line = refused(["run", f"sqlite:///{db}", "--table", "clients"], tmp_path / "out")
    assert line == (f"Error: sqlite:///{db} table clients: table 'clients' not found "
                    "(tables: customers)")


def test_refused_database_connection_masks_the_password(tmp_path):
    line = refused(["run", "postgresql://crm:hunter2@127.0.0.1:1/crm", "--table", "customers"],
                   tmp_path / "out")
    assert line.startswith("Error: postgresql://crm:***@127.0.0.1:1/crm: cannot connect to "
                           "the database: ")
    assert "hunter2" not in line and "Connection refused" in line


def test_unknown_database_type(tmp_path):
    line = refused(["run", "oracle2://u@h/db", "--table", "t"], tmp_path / "out")
    assert line == ("Error: oracle2://u@h/db: unknown database type 'oracle2' (use e.g. "
                    "postgresql://..., sqlite:///...)")


# A failure leaves nothing behind; the next run works ---------------------------------------

def test_a_failed_run_leaves_no_output_and_a_second_run_works(tmp_path, fast):
    out = tmp_path / "out"
    refused(["run", str(CORPUS / "ambiguous_dates.csv")], out)
    result = invoke("run", str(CORPUS / "duplicated_ids.csv"), "--out", str(out), "--format",
                    "json", "-q", "--config", fast)
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    assert len(run_folders(out)) == 1


def test_every_corpus_file_has_a_tested_outcome():
    made = {p.name for p in CORPUS.iterdir() if p.name not in ("make_corpus.py", "README.md")}
    assert len(made) >= 40  # besides the configs, paths and databases built in the tests
    named = {c[0] for c in REFUSED + REPAIRED} | set(SAME_TABLE) | {
        "broken.parquet", "formula_cells.csv", "html_in_categories.csv", "formula_header.csv",
        "terminal_escapes.csv", "gzip_bomb.csv.gz"}
    assert made == named  # every file has a tested outcome


# Issue 13: hostile inputs ------------------------------------------------------------------
# Each case of the outside attack, and others of the same families, with its exact outcome.

LIMIT_HINT = "if the input is right)"


def _limits(tmp_path: Path, text: str) -> str:
    return _cfg(tmp_path, "[segment]\nstability_runs = 0\nk_max = 5\n[limits]\n" + text)


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("name, limit, message", [
    ("gzip_bomb.csv.gz", "bytes = 1000000",
     "the file is too large once decompressed (more than limits.bytes = 1,000,000 bytes)"),
    ("duplicated_ids.csv", "bytes = 1000", "the file is too large (more than limits.bytes = "
                                           "1,000 bytes)"),
    ("duplicated_ids.csv", "rows = 10", "the table has too many rows (more than limits.rows = "
                                        "10)"),
    ("duplicated_ids.csv", "columns = 5", "the table has 8 columns (more than limits.columns "
                                          "= 5)"),
    ("duplicated_ids.csv", "header_chars = 10", "the name of column 1 is 11 characters long "
                                                "(more than limits.header_chars = 10)"),
    ("huge_cell.csv", "cell_chars = 1000", "column 'comment': a cell is 100,000 characters "
                                           "long (more than limits.cell_chars = 1,000)"),
    ("declared_dimensions.xlsx", "excel_cells = 100", "the sheet holds too many cells (more "
                                                      "than limits.excel_cells = 100)"),
    ("declared_dimensions.xlsx", "rows = 10", "the sheet has too many rows (more than "
                                              "limits.rows = 10)"),
    # (past rows, a Parquet table is streamed unless out_of_core = "never": test_outofcore)
    ("nested_columns.parquet", "rows = 10\nout_of_core = \"never\"",
     "the table has 24 rows (more than limits.rows = "
                                            "10)"),
    ("nested_columns.parquet", "columns = 5", "the table has 11 columns (more than "
                                              "limits.columns = 5)"),
])
def test_past_a_limit_one_line_names_the_limit(name, limit, message, command, tmp_path):
    path = str(CORPUS / name)
    cfg = _limits(tmp_path, limit + "\n")
    key = limit.split(" ")[0]
    line = refused([command, path, "--config", cfg], tmp_path / "out")
    assert line == f"Error: {path}: {message} (raise {key} under [limits] in the config " \
                   f"{LIMIT_HINT}"


def test_the_limits_have_documented_defaults():
    from reportgen.config import describe

    rows = {key: default for key, default, _ in describe()}
    assert {k: v for k, v in rows.items() if k.startswith("limits.")} == {
        "limits.bytes": "1000000000", "limits.rows": "10000000", "limits.columns": "1000",
        "limits.cell_chars": "1000000", "limits.header_chars": "1000",
        "limits.excel_cells": "20000000", "limits.seconds": "3600",
        "limits.out_of_core": '"auto"', "limits.stream_rows": "2000000",
        "limits.sample_rows": "500000"}
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "| `limits.bytes` | `1000000000` |" in readme


def test_a_declared_sheet_of_17_billion_cells_reads_the_cells_that_are_there(tmp_path):
    # 4 KB on disk, A1:XFD1048576 declared: read in well under limits.seconds
    cfg = _limits(tmp_path, "seconds = 60\n")
    result = invoke("validate", str(CORPUS / "declared_dimensions.xlsx"), "--config", cfg)
    assert result.exit_code == 0, result.output
    assert "24 rows × 8 columns (Excel workbook)" in result.output


def test_3000_columns_are_refused_at_the_default_limit(tmp_path):
    path = tmp_path / "wide.csv"
    header = ["customer_id"] + [f"x{i}" for i in range(2999)]
    path.write_text(",".join(header) + "\n" + "".join(
        f"C{r}," + ",".join(str((r * i) % 7) for i in range(2999)) + "\n" for r in range(30)))
    for command in ("run", "validate"):
        assert refused([command, str(path)], tmp_path / "out") == (
            f"Error: {path}: the table has 3,000 columns (more than limits.columns = 1,000) "
            f"(raise columns under [limits] in the config {LIMIT_HINT}")


def _patched_zip(data: bytes, member: str, size: int) -> bytes:
    """The zip archive with ``member``'s uncompressed size in the central directory set to
    ``size``: what a zip bomb declares."""
    import struct

    out = bytearray(data)
    start = 0
    while (i := out.find(b"PK\x01\x02", start)) >= 0:
        name_len = struct.unpack_from("<H", out, i + 28)[0]
        if out[i + 46:i + 46 + name_len].decode() == member:
            struct.pack_into("<I", out, i + 24, size)
        start = i + 4
    return bytes(out)


def test_an_xlsx_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(_patched_zip((CORPUS / "note_first_sheet.xlsx").read_bytes(),
                                  "xl/worksheets/sheet1.xml", 4_000_000_000))
    for command in ("run", "validate"):
        line = refused([command, str(path)], tmp_path / "out")
        assert line.startswith(f"Error: {path}: the workbook is 4,000,0")
        assert line.endswith("bytes uncompressed (more than limits.bytes = 1,000,000,000 "
                             f"bytes) (raise bytes under [limits] in the config {LIMIT_HINT}")


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_device_or_a_fifo_is_refused_not_read(command, tmp_path):
    assert refused([command, "/dev/zero"], tmp_path / "out") == (
        "Error: /dev/zero: is a device, not a file (save the table to a file and give its "
        "path)")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert refused([command, str(fifo)], tmp_path / "out") == (
        f"Error: {fifo}: is a named pipe (FIFO), not a file (save the table to a file and "
        "give its path)")


def test_a_link_to_a_device_is_refused_too(tmp_path):
    link = tmp_path / "customers.csv"
    link.symlink_to("/dev/zero")
    assert refused(["run", str(link)], tmp_path / "out") == (
        f"Error: {link}: is a device, not a file (save the table to a file and give its path)")


def test_a_fifo_as_config_is_refused(tmp_path):
    fifo = tmp_path / "reportgen.toml"
    os.mkfifo(fifo)
    line = refused(["run", str(CORPUS / "duplicated_ids.csv"), "--config", str(fifo)],
                   tmp_path / "out")
    assert line == f"Error: {fifo}: the config file is not a regular file (a device or a pipe)"


def test_a_run_past_limits_seconds_stops_and_writes_nothing(tmp_path):
    cfg = _cfg(tmp_path, "[segment]\nstability_runs = 100\nn_init = 100\n[limits]\n"
                         "seconds = 1\n")
    line = refused(["run", "--config", cfg], tmp_path / "out")
    assert line == ("Error: the run took longer than limits.seconds = 1 s (raise seconds "
                    "under [limits] in the config, or give a smaller table)")


# Every number has a range (an impossible setting never starts a run that cannot finish)
@pytest.mark.parametrize("toml, message", [
    ("[segment]\nn_init = 1000000000\n",
     "'segment.n_init' must be between 1 and 100, got 1,000,000,000"),
    ("[segment]\nstability_runs = 100000000\n",
     "'segment.stability_runs' must be between 0 and 100, got 100,000,000"),
    ("[segment]\nk_max = 1000000000\n",
     "'segment.k_max' must be between 2 and 30, got 1,000,000,000"),
    ("[segment]\nk_min = 1\n", "'segment.k_min' must be between 2 and 30, got 1"),
    ("[segment]\nrandom_state = -1\n",
     "'segment.random_state' must be between 0 and 4,294,967,295, got -1"),
    ("[segment]\nsilhouette_sample = 1000000\n",
     "'segment.silhouette_sample' must be between 100 and 10,000, got 1,000,000"),
    ("[segment]\nfit_sample = 10000000\n",
     "'segment.fit_sample' must be between 100 and 20,000, got 10,000,000"),
    ("[segment]\nstability_sample = 10\n",
     "'segment.stability_sample' must be between 100 and 1,000,000, got 10"),
    ("[segment]\nsearch_sample = 0\n",
     "'segment.search_sample' must be between 100 and 1,000,000, got 0"),
    ("[segment]\nlarge_table = -5\n",
     "'segment.large_table' must be between 1,000 and 1,000,000,000, got -5"),
    ("[segment]\nmin_segment_share = 0.9\n",
     "'segment.min_segment_share' must be between 0 and 0.5, got 0.9"),
    ("[gates]\nmin_stability = 7\n", "'gates.min_stability' must be between 0 and 1, got 7"),
    ("[report]\nas_of = 0001-01-01\n",
     "'report.as_of' must be between 1900-01-01 and 2199-12-31, got 0001-01-01"),
    ("[limits]\nrows = 0\n", "'limits.rows' must be between 10 and 1,000,000,000, got 0"),
    ("[limits]\nseconds = 0\n", "'limits.seconds' must be between 1 and 604,800, got 0"),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_every_numeric_setting_has_a_range(toml, message, command, tmp_path):
    cfg = _cfg(tmp_path, toml)
    line = refused([command, str(CORPUS / "duplicated_ids.csv"), "--config", cfg],
                   tmp_path / "out")
    assert line == f"Error: {cfg}: {message}"


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "'segment.random_state' must be between 0 and 4,294,967,295, got -1"),
    (["--seed", "4294967296"],
     "'segment.random_state' must be between 0 and 4,294,967,295, got 4,294,967,296"),
    (["--as-of", "9999-12-31"],
     "'report.as_of' must be between 1900-01-01 and 2199-12-31, got 9999-12-31"),
    (["--as-of", "0001-01-01"],
     "'report.as_of' must be between 1900-01-01 and 2199-12-31, got 0001-01-01"),
    (["--k", "1000000000"], "'segment.k' must be between 2 and 30, got 1,000,000,000"),
])
def test_command_line_numbers_have_the_same_ranges(args, message, tmp_path):
    line = refused(["run", str(CORPUS / "duplicated_ids.csv"), *args], tmp_path / "out")
    assert line == f"Error: {message}"


# Bad input, config or environment that used to exit 1 ("a bug")
@pytest.mark.parametrize("toml, message", [
    ('[input]\nencoding = "rot13"\n',
     "'input.encoding' names 'rot13', which is not a text encoding (e.g. utf-8, cp1252, "
     "latin-1)"),
    ('[input]\nencoding = "base64"\n',
     "'input.encoding' names 'base64', which is not a text encoding (e.g. utf-8, cp1252, "
     "latin-1)"),
    ('[input]\ndate_format = "%Q%"\n',
     "'input.date_format' '%Q%' is not a date format ('Q' is a bad directive in format "
     "'%Q%') (e.g. \"%d-%m-%Y\" or \"%Y-%m-%d\")"),
    ('[input]\ndate_format = "%d-%m"\n',
     "'input.date_format' '%d-%m' does not hold a whole date (day, month and year) (e.g. "
     "\"%d-%m-%Y\")"),
    ('[report]\ncompany = "ACME\\r\\nBcc: victim@example.com"\n',
     "'report.company' must be one line without control characters, got "
     "'ACME\\r\\nBcc: victim@example.com'"),
    ('[report]\ntitle = "Segments\\u001b[2J"\n',
     "'report.title' must be one line without control characters, got "
     "'Segments\\x1b[2J'"),
    ('[report]\nperiod = "' + "x" * 300 + '"\n', "'report.period' is 300 characters long "
                                                "(at most 200)"),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_config_values_that_used_to_crash(toml, message, command, tmp_path):
    cfg = _cfg(tmp_path, toml)
    line = refused([command, str(CORPUS / "duplicated_ids.csv"), "--config", cfg],
                   tmp_path / "out")
    assert line == f"Error: {cfg}: {message}"


def test_a_config_with_a_utf8_bom_is_read(tmp_path, fast):
    cfg = tmp_path / "bom.toml"
    cfg.write_bytes(b"\xef\xbb\xbf" + Path(fast).read_bytes() + b"[report]\ncompany = 'ACME'\n")
    summary = repaired("duplicated_ids.csv", tmp_path / "out", str(cfg))["summary"]
    assert summary["company"] == "ACME"


def test_a_full_disk_is_one_line_exit_2_and_leaves_nothing(tmp_path, fast):
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs",
                                            str(disk)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        result = invoke("run", str(CORPUS / "duplicated_ids.csv"), "--config", fast, "--out",
                        str(disk / "out"), "--format", "json", "-q")
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            "Error: cannot write or read (No space left on device) (free some space or fix "
            "the permissions, or choose another --out)"]
        assert [p.name for p in (disk / "out").iterdir()] == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


# Injections outside HTML
def test_an_income_in_mixed_number_formats_is_read_as_income(tmp_path, fast):
    mixed = repaired("mixed_number_formats.csv", tmp_path, fast)
    roles = {c["column"]: c["role"] for c in mixed["summary"]["columns"]}
    assert roles["yearly_earnings"] == "income"
    plain = repaired("semicolons.csv", tmp_path / "plain", fast)  # the same table, plainly
    incomes = [pd.read_csv(r["dir"] / "segments.csv")["income"].tolist() for r in (mixed, plain)]
    assert incomes[0] == incomes[1] and len(incomes[0]) == 24


def test_without_dates_only_implausible_birth_years_are_set_missing(tmp_path, fast):
    summary = repaired("birth_years_no_dates.csv", tmp_path, fast)["summary"]
    missing = [s for s in summary["cleaning"] if s["action"] == "set missing"]
    assert missing == [{"column": "year_birth", "action": "set missing", "rows": 1,
                        "detail": "birth years 1893", "reason": (
                            "more than 84 years before the youngest customers, or after them "
                            "(the table has no date to measure ages at)")}]


@pytest.mark.parametrize("values, numbers", [
    (["50000", "$67,000", "USD 67,000", "67k", "$ 67,000.50", "80 000", "1.2M", "€90,000"],
     [50000, 67000, 67000, 67000, 67000.5, 80000, 1_200_000, 90000]),
    (["28.000", "1.234,50", "12,5", "700"], [28000, 1234.5, 12.5, 700]),  # 1.234,5 style
    (["28.000", "$67,000"], [28, 67000]),  # 1,234.5 style: a dot is a decimal point
])
def test_number_formats_are_read_as_the_column_writes_them(values, numbers):
    from reportgen.schema import as_numbers

    assert as_numbers(pd.Series(values)).tolist() == numbers


def test_26_digit_ids_stay_the_keys_of_segments_csv(tmp_path, fast):
    run_dir = repaired("long_integer_ids.csv", tmp_path, fast)["dir"]
    ids = pd.read_csv(run_dir / "segments.csv", dtype=str)["customer_id"].tolist()
    assert ids[:2] == ["12345678901234567890123456", "12345678901234567890123463"]
    assert len(set(ids)) == len(ids) == 24 and "nan" not in ids


def test_26_digit_decimal_ids_from_parquet_are_kept_as_text(tmp_path):
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    from reportgen.config import InputConfig
    from reportgen.load import load

    ids = [decimal.Decimal(12345678901234567890123456 + i) for i in range(3)]
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"id": pa.array(ids, pa.decimal128(30, 0)),
                             "spend": [1.0, 2.0, 3.0]}), path)
    loaded = load(path, InputConfig())
    assert loaded.frame["id"].tolist() == ["12345678901234567890123456",
                                           "12345678901234567890123457",
                                           "12345678901234567890123458"]


def test_a_formula_header_is_neutralised_in_segments_csv(tmp_path, fast):
    name = '=HYPERLINK("http://x","y")'
    cfg = _cfg(tmp_path, Path(fast).read_text() + f"[columns]\n'{name}' = \"id\"\n")
    run_dir = repaired("formula_header.csv", tmp_path / "out", cfg)["dir"]
    header = (run_dir / "segments.csv").read_text().splitlines()[0]
    assert header.startswith("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",segment,persona,")


def test_terminal_escapes_in_column_names_are_shown_not_run(tmp_path, fast):
    path = str(CORPUS / "terminal_escapes.csv")
    result = invoke("validate", path)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "\\x1b[31mweb_visits\\x1b]0;owned\\x07" in result.output
    assert "\\u202eregion" in result.output
    cfg = _cfg(tmp_path, '[columns]\n"\\u001b[2Jgone" = "income"\n')
    line = refused(["validate", path, "--config", cfg], tmp_path / "out")
    assert line == (f"Error: {path}: configured column '\\x1b[2Jgone' is not in the table "
                    "(check [columns] in the config)")


def test_init_writes_valid_toml_for_a_file_name_with_newlines(tmp_path):
    import tomllib

    path = tmp_path / "we\nird\r\x1b.csv"
    path.write_bytes((CORPUS / "duplicated_ids.csv").read_bytes())
    out = tmp_path / "reportgen.toml"
    result = invoke("init", str(path), "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    tomllib.loads(text)  # still valid TOML
    assert "we\\nird\\r\\x1b.csv" in text.splitlines()[0]
    assert "\x1b" not in result.output


# Unclear lines made clear
@pytest.mark.parametrize("source, message", [
    ("http://example.com/customers.csv",
     "Error: http://example.com/customers.csv: a http:// address: reportgen reads local files "
     "and databases, and never downloads (download the file first, then give its path)"),
    ("https://u:secret@example.com/c.parquet",
     "Error: https://u:***@example.com/c.parquet: a https:// address: reportgen reads local "
     "files and databases, and never downloads (download the file first, then give its "
     "path)"),
    ("s3://bucket/customers.parquet",
     "Error: s3://bucket/customers.parquet: a s3:// address: reportgen reads local files and "
     "databases, and never downloads (download the file first, then give its path)"),
])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_web_address_is_never_fetched(source, message, command, tmp_path, no_network):
    assert refused([command, source], tmp_path / "out") == message


def test_the_note_sheet_case_runs_once_the_sheet_is_named(tmp_path, fast):
    cfg = _cfg(tmp_path, Path(fast).read_text() + '[input]\nsheet = "Customers"\n')
    summary = repaired("note_first_sheet.xlsx", tmp_path / "out", cfg)["summary"]
    assert summary["headline"]["customers"] == 24


def test_a_nested_parquet_column_is_shown_by_validate(tmp_path):
    result = invoke("validate", str(CORPUS / "nested_columns.parquet"))
    assert result.exit_code == 0, result.output
    assert "  tags: ignored column: nested values (list<element: int64>)" in result.output


# `reportgen email` trusts nothing in the run folder ----------------------------------------

@pytest.fixture(scope="module")
def email_run(tmp_path_factory, fast) -> Path:
    """A real run folder with the email summary (and a PDF stand-in to attach)."""
    out = tmp_path_factory.mktemp("email-run")
    result = invoke("run", str(CORPUS / "duplicated_ids.csv"), "--out", str(out), "--format",
                    "email", "-q", "--config", fast)
    assert result.exit_code == 0, result.output
    run_dir = only_run(out)
    (run_dir / "report.pdf").write_bytes(b"%PDF-1.7\n% a stand-in\n%%EOF\n")
    return run_dir


def _tampered(email_run: Path, tmp_path: Path, change) -> Path:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(email_run, run, symlinks=True)
    manifest = json.loads((run / "manifest.json").read_text())
    change(run, manifest["email"])
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def _first_image(email: dict) -> dict:
    return email["images"][0]


def _link(run: Path, name: str, target: str) -> None:
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(target)


UP = "../" * 16  # past the root, wherever the test folder is
TAMPERED = [
    ("html outside", lambda run, e: e.update(html=UP + "etc/passwd"),
     f"manifest.json names '{UP}etc/passwd' as the email HTML: not a .html file of the run"),
    ("text outside", lambda run, e: e.update(text="/etc/hostname"),
     "manifest.json names '/etc/hostname' as the email text: not a .txt file of the run"),
    ("image outside", lambda run, e: _first_image(e).update(file=UP + "etc/passwd"),
     f"manifest.json names '{UP}etc/passwd' as the image: not a .png/.jpg/.jpeg/.gif file "
     "of the run"),
    ("image link", lambda run, e: (_link(run, "evil.png", "/etc/passwd"),
                                   _first_image(e).update(file="evil.png")),
     "the image 'evil.png' is not a file of the run folder"),
    ("html link", lambda run, e: _link(run, "email.html", "/etc/passwd"),
     "the email HTML 'email.html' is not a file of the run folder"),
    ("image type", lambda run, e: _first_image(e).update(mime="text/plain"),
     "manifest.json lists an image of type 'text/plain' as "),
    ("image content", lambda run, e: (run / _first_image(e)["file"]).write_text("root:x:0:0"),
     " is not the kind of file its name says (the run folder was changed; run `reportgen "
     "run` again)"),
    ("pdf link", lambda run, e: _link(run, "report.pdf", "/etc/passwd"),
     "the report 'report.pdf' is not a file of the run folder"),
    ("pdf content", lambda run, e: (run / "report.pdf").write_text("root:x:0:0"),
     "report.pdf is not the kind of file its name says"),
    ("subject", lambda run, e: e.update(subject="Hi\r\nBcc: victim@example.com"),
     "manifest.json holds a subject that is not one line of text (give --subject, or run "
     "`reportgen run` again)"),
]


@pytest.mark.parametrize("case, change, message", TAMPERED, ids=[t[0] for t in TAMPERED])
def test_email_attaches_only_files_of_the_run_folder(case, change, message, email_run,
                                                     tmp_path):
    run = _tampered(email_run, tmp_path, change)
    result = invoke("email", str(run), "--to", "a@example.com", "--dry-run")
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {run}") and message in line, line
    assert not (run / "message.eml").exists()
    assert "root:" not in result.output


def test_a_manifest_linked_from_elsewhere_is_refused(email_run, tmp_path):
    run = _tampered(email_run, tmp_path, lambda run, e: None)
    elsewhere = tmp_path / "manifest.json"
    (run / "manifest.json").rename(elsewhere)
    (run / "manifest.json").symlink_to(elsewhere)
    result = invoke("email", str(run), "--to", "a@example.com", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"Error: {run}: the manifest 'manifest.json' is not a file of the run folder (the run "
        "folder was changed; run `reportgen run` again)")


def test_an_untampered_run_folder_is_sent_whole(email_run, tmp_path):
    from email import message_from_bytes
    from email.policy import default

    run = _tampered(email_run, tmp_path, lambda run, e: None)
    result = invoke("email", str(run), "--to", "a@example.com", "--dry-run")
    assert result.exit_code == 0, result.output
    message = message_from_bytes((run / "message.eml").read_bytes(), policy=default)
    manifest = json.loads((run / "manifest.json").read_text())["email"]
    names = sorted(p.get_filename() for p in message.walk() if p.get_filename())
    assert names == sorted([i["file"] for i in manifest["images"]] + ["report.pdf"])


@pytest.mark.parametrize("args, message", [
    (["--to", 'x"@evil.com'], "Error: recipient 'x\"@evil.com' is not an email address"),
    (["--to", "x@evil.com\r\nBcc: y@evil.com"],
     "Error: recipient 'x@evil.com\\r\\nBcc: y@evil.com' is not an email address"),
    (["--to", "a@example.com", "--from", "me@x.com\nBcc: y@evil.com"],
     "Error: sender 'me@x.com\\nBcc: y@evil.com' is not an email address"),
    (["--to", "a@example.com", "--subject", "Hi\r\nBcc: y@evil.com"],
     "Error: --subject must be one line without control characters, got "
     "'Hi\\r\\nBcc: y@evil.com'"),
])
def test_addresses_and_subject_cannot_smuggle_headers(args, message, email_run, tmp_path):
    run = _tampered(email_run, tmp_path, lambda run, e: None)
    result = invoke("email", str(run), *args, "--dry-run")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == message
    assert not (run / "message.eml").exists()


# SQL sources are read, never written -------------------------------------------------------

ONLY_READS = "(reportgen only reads: give one SELECT (or WITH ... SELECT) statement)"


@pytest.fixture()
def keepme(tmp_path):
    """An SQLite database with one table, and a way to prove it is unchanged."""
    import hashlib
    import sqlite3

    folder = tmp_path / "db"
    folder.mkdir()
    db = folder / "crm.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE keepme (id TEXT PRIMARY KEY, age INTEGER, income REAL, "
                    "spend REAL)")
        con.executemany("INSERT INTO keepme VALUES (?, ?, ?, ?)",
                        [(f"C{i}", 20 + i % 50, 20000 + 997 * i, (i * 37) % 900)
                         for i in range(40)])
    con.close()

    def state():
        return (sorted(p.name for p in folder.iterdir()),
                hashlib.sha256(db.read_bytes()).hexdigest())

    before = state()
    yield db
    assert state() == before, "the database or its folder changed"


def _sqlite_cases(folder: Path) -> list[tuple[str, str]]:
    return [
        ("DROP TABLE keepme", f"--query must be a SELECT, not DROP {ONLY_READS}"),
        ("CREATE TABLE copy AS SELECT * FROM keepme",
         f"--query must be a SELECT, not CREATE {ONLY_READS}"),
        ("PRAGMA user_version = 99", f"--query must be a SELECT, not PRAGMA {ONLY_READS}"),
        (f"ATTACH DATABASE '{folder}/evil.db' AS evil",
         f"--query must be a SELECT, not ATTACH {ONLY_READS}"),
        (f"VACUUM INTO '{folder}/copy.db'", f"--query must be a SELECT, not VACUUM {ONLY_READS}"),
        ("DELETE FROM keepme", f"--query must be a SELECT, not DELETE {ONLY_READS}"),
        ("INSERT INTO keepme VALUES ('X', 1, 2, 3)",
         f"--query must be a SELECT, not INSERT {ONLY_READS}"),
        ("REPLACE INTO keepme VALUES ('C1', 1, 2, 3)",
         f"--query must be a SELECT, not REPLACE {ONLY_READS}"),
        ("SELECT * FROM keepme; DROP TABLE keepme", f"--query holds 2 statements {ONLY_READS}"),
        ("SELECT * FROM keepme;\nPRAGMA user_version = 99;",
         f"--query holds 2 statements {ONLY_READS}"),
        ("WITH x AS (SELECT 1) DELETE FROM keepme",
         f"--query may only read, but uses DELETE {ONLY_READS}"),
        ("SELECT load_extension('/tmp/evil.so')",
         f"--query may only read, but uses LOAD_EXTENSION {ONLY_READS}"),
        ("  ;  ", f"--query is empty {ONLY_READS}"),
        ("SELECT * FROM keepme /* ; DROP TABLE keepme",
         "--query has a comment that is never closed"),
        ("SELECT 'x FROM keepme; DROP TABLE keepme", "--query has a quote that is never closed"),
    ]


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_query_that_writes_is_refused_and_the_database_is_unchanged(keepme, command,
                                                                     tmp_path):
    url = f"sqlite:///{keepme}"
    for query, message in _sqlite_cases(keepme.parent):
        line = refused([command, url, "--query", query], tmp_path / "out")
        assert line == f"Error: {url} query: {message}", query


def test_quotes_and_comments_hide_nothing_that_runs(keepme, tmp_path, fast):
    url = f"sqlite:///{keepme}"
    for query in ["SELECT * FROM keepme -- ; DROP TABLE keepme",
                  "SELECT *, 'DROP TABLE keepme; x' AS note FROM keepme;",
                  'SELECT id AS "delete", age, income, spend FROM keepme /* VACUUM */',
                  "WITH t AS (SELECT * FROM keepme) SELECT * FROM t ORDER BY id"]:
        result = invoke("run", url, "--query", query, "--out", str(tmp_path / "out"),
                        "--format", "json", "-q", "--config", fast)
        assert result.exit_code == 0, (query, result.output)


@pytest.mark.parametrize("make_url, message", [
    (lambda db: f"sqlite:///file:{db.parent}/new.db?mode=rwc&uri=true",
     "options in an SQLite URL are not accepted (mode, uri) (reportgen opens the file "
     "read-only itself; give sqlite:///path/to/file.db)"),
    (lambda db: f"sqlite:///{db}?mode=rwc",
     "options in an SQLite URL are not accepted (mode) (reportgen opens the file read-only "
     "itself; give sqlite:///path/to/file.db)"),
    (lambda db: f"sqlite:///file:{db}",
     "an SQLite URL must name a database file (e.g. sqlite:///customers.db (no file: URIs or "
     ":memory:))"),
    (lambda db: "sqlite://", "an SQLite URL must name a database file (e.g. "
                             "sqlite:///customers.db (no file: URIs or :memory:))"),
    (lambda db: "mysql://u@127.0.0.1:1/crm",
     "reportgen reads only PostgreSQL and SQLite databases, not mysql (it can guarantee "
     "read-only access only for those two; export the table to CSV or Parquet)"),
])
def test_a_database_url_cannot_create_files_or_pick_a_writable_mode(keepme, make_url, message,
                                                                     tmp_path):
    url = make_url(keepme)
    line = refused(["run", url, "--query", "SELECT * FROM keepme"], tmp_path / "out")
    assert line.endswith(f": {message}"), line


def test_a_table_name_is_a_name_not_sql(keepme, tmp_path):
    url = f"sqlite:///{keepme}"
    line = refused(["run", url, "--table", "keepme; DROP TABLE keepme"], tmp_path / "out")
    assert line == (f"Error: {url} table keepme; DROP TABLE keepme: table 'keepme; DROP TABLE "
                    "keepme' not found (tables: keepme)")


def test_a_missing_sqlite_file_is_not_created(keepme, tmp_path):
    missing = keepme.parent / "missing.db"
    line = refused(["run", f"sqlite:///{missing}", "--table", "keepme"], tmp_path / "out")
    assert line == f"Error: {missing}: database file not found"


def test_the_sqlite_connection_itself_refuses_to_write(keepme):
    """Below the statement check: the file is opened mode=ro and an authorizer allows only
    reading, so even a statement the check let through could not write."""
    import sqlite3

    from sqlalchemy.engine import make_url

    from reportgen.load import _sqlite_authorizer, _sqlite_creator

    con = _sqlite_creator(make_url(f"sqlite:///{keepme}"), "crm")()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        con.execute("INSERT INTO keepme VALUES ('X', 1, 2, 3)")
    con.rollback()
    con.set_authorizer(_sqlite_authorizer)
    for statement in ["DROP TABLE keepme", "PRAGMA user_version = 99",
                      f"VACUUM INTO '{keepme.parent}/copy.db'",
                      f"ATTACH DATABASE '{keepme.parent}/evil.db' AS evil",
                      "CREATE TEMP TABLE t AS SELECT 1", "SELECT load_extension('x')"]:
        with pytest.raises(sqlite3.DatabaseError, match="not authorized|authorization denied"):
            con.execute(statement)
    assert con.execute("SELECT count(*) FROM keepme").fetchone() == (40,)
    con.close()


# The same on a real PostgreSQL (tests/test_sources.py says how it is found)
from .pg import PG_PASSWORD, PG_URL  # noqa: E402  (the pg_table fixture: conftest.py)


def _pg_state(table: str) -> tuple:
    import sqlalchemy as sa

    from reportgen.load import _expand_env

    url, _ = _expand_env(PG_URL, "postgres")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sorted(r[0] for r in conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                "'public'"))
            digest = conn.exec_driver_sql(
                f'SELECT count(*), md5(string_agg(t::text, \',\' ORDER BY "CustomerID")) '
                f'FROM "{table}" t').fetchone()
            settings = conn.exec_driver_sql(
                "SELECT setting FROM pg_settings WHERE name = "
                "'default_transaction_read_only'").fetchone()
    finally:
        engine.dispose()
    return tables, tuple(digest), tuple(settings)


def test_postgresql_queries_that_write_are_refused_and_nothing_changes(pg_table, tmp_path):
    before = _pg_state(pg_table)
    t = f'"{pg_table}"'
    cases = [
        (f"DROP TABLE {t}", f"--query must be a SELECT, not DROP {ONLY_READS}"),
        (f"CREATE TABLE rg_copy AS SELECT * FROM {t}",
         f"--query must be a SELECT, not CREATE {ONLY_READS}"),
        (f"SELECT * INTO rg_copy FROM {t}", f"--query may only read, but uses INTO {ONLY_READS}"),
        (f"WITH d AS (DELETE FROM {t} RETURNING *) SELECT * FROM d",
         f"--query may only read, but uses DELETE {ONLY_READS}"),
        (f"SELECT * FROM {t}; DROP TABLE {t}", f"--query holds 2 statements {ONLY_READS}"),
        (f"COMMIT; SET default_transaction_read_only = off; DROP TABLE {t}",
         f"--query holds 3 statements {ONLY_READS}"),
        ("SELECT set_config('default_transaction_read_only', 'off', false)",
         f"--query may only read, but uses SET_CONFIG {ONLY_READS}"),
        (f"SELECT * FROM {t} FOR UPDATE", f"--query may only read, but uses UPDATE {ONLY_READS}"),
        (f"SELECT lo_export(1, '/tmp/x') FROM {t}",
         f"--query may only read, but uses LO_EXPORT {ONLY_READS}"),
        (f"COPY {t} TO '/tmp/x.csv'", f"--query must be a SELECT, not COPY {ONLY_READS}"),
        (f"SELECT $x$; DROP TABLE {t}", "--query has a $-quoted string that is never closed"),
    ]
    masked = PG_URL.replace("${REPORTGEN_TEST_PG_PASSWORD}", "***")
    for query, message in cases:
        line = refused(["validate", PG_URL, "--query", query], tmp_path / "out")
        assert line.endswith(f" query: {message}"), (query, line)
        assert line.startswith(f"Error: {masked} query: ") and PG_PASSWORD not in line
    assert _pg_state(pg_table) == before


def test_postgresql_session_is_read_only_below_the_statement_check(pg_table, tmp_path):
    """A function that writes passes the statement check (it is a plain SELECT); the
    read-only session stops it."""
    import sqlalchemy as sa

    from reportgen.load import _expand_env

    url, _ = _expand_env(PG_URL, "postgres")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS rg_side (x int)")
        conn.exec_driver_sql("CREATE OR REPLACE FUNCTION rg_writer() RETURNS int LANGUAGE sql "
                             "AS $$ INSERT INTO rg_side VALUES (1) RETURNING x $$")
    try:
        before = _pg_state(pg_table)
        query = f'SELECT rg_writer() AS w, * FROM "{pg_table}"'
        # the URL asking for a writable session changes nothing: reportgen's options win
        sneaky = PG_URL + ("&" if "?" in PG_URL else "?") + \
            "options=-c%20default_transaction_read_only%3Doff"
        for url in (PG_URL, sneaky):
            line = refused(["run", url, "--query", query], tmp_path / "out")
            assert line.endswith(" query: the query tried to change the database (cannot "
                                 "execute INSERT in a read-only transaction) (reportgen only "
                                 "reads: --query must be a SELECT)"), line
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM rg_side").scalar() == 0
        assert _pg_state(pg_table) == before
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS rg_writer()")
            conn.exec_driver_sql("DROP TABLE IF EXISTS rg_side")
        engine.dispose()


# An SVG logo is data, not a document ------------------------------------------------------

SVG = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ' \
      'width="120" height="40" viewBox="0 0 120 40">{}</svg>'
NEVER_FETCH = "reports never fetch or read anything outside the logo (embed the image in the " \
              "SVG (a data:image/png URI) or use a PNG)"
LOGOS = [
    ("encoded http href", SVG.format('<image href="&#104;ttp://127.0.0.1:9/x.png" '
                                     'width="10" height="10"/>'),
     f"'report.logo' refers to 'http://127.0.0.1:9/x.png'; {NEVER_FETCH}"),
    ("xlink file href", SVG.format('<image xlink:href="/etc/hostname" width="10" height="10"/>'),
     f"'report.logo' refers to '/etc/hostname'; {NEVER_FETCH}"),
    ("file url", SVG.format('<image href="file:///etc/passwd"/>'),
     f"'report.logo' refers to 'file:///etc/passwd'; {NEVER_FETCH}"),
    ("css url", SVG.format('<rect width="5" height="5" style="fill:url(http://x/p.svg#g)"/>'),
     f"'report.logo' refers to 'http://x/p.svg#g'; {NEVER_FETCH}"),
    ("css import", SVG.format("<style>@import url(http://x/a.css);</style>"),
     "'report.logo' imports a style sheet (@import); reports never fetch anything (export the "
     "logo as a plain SVG or a PNG)"),
    ("use elsewhere", SVG.format('<use href="other.svg#logo"/>'),
     f"'report.logo' refers to 'other.svg#logo'; {NEVER_FETCH}"),
    ("script", SVG.format("<script>alert(1)</script>"),
     "'report.logo' contains <script> (a logo may not run code, animate or embed other "
     "documents) (export the logo as a plain SVG or a PNG)"),
    ("event handler", SVG.format('<rect width="5" height="5" onload="alert(1)"/>'),
     "'report.logo' has an event handler (onload); a logo may not run code (export the logo "
     "as a plain SVG or a PNG)"),
    ("foreign object", SVG.format("<foreignObject><p>hi</p></foreignObject>"),
     "'report.logo' contains <foreignObject> (a logo may not run code, animate or embed other "
     "documents) (export the logo as a plain SVG or a PNG)"),
    ("animated href", SVG.format('<a href="#x"><set attributeName="href" to="http://x"/></a>'),
     "'report.logo' contains <set> (a logo may not run code, animate or embed other "
     "documents) (export the logo as a plain SVG or a PNG)"),
    ("huge canvas", '<svg xmlns="http://www.w3.org/2000/svg" width="60000" height="60000">'
                    '<rect width="10" height="10"/></svg>',
     "'report.logo' declares a canvas of 60,000×60,000 px (at most 10,000 px a side) (set "
     "width and height (or the viewBox) to the logo's size)"),
    ("huge viewBox", '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 60000 60000">'
                     '<rect width="10" height="10"/></svg>',
     "'report.logo' declares a canvas of 60,000×60,000 px (at most 10,000 px a side) (set "
     "width and height (or the viewBox) to the logo's size)"),
    ("external entity", '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM '
                        '"file:///etc/passwd">]>' + SVG.format("<text>&x;</text>"),
     "'report.logo' declares XML entities (an SVG logo needs none) (export the logo as a "
     "plain SVG or a PNG)"),
    ("billion laughs", '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
                       '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                       '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                       + SVG.format("<text>&c;&c;&c;&c;&c;</text>"),
     "'report.logo' declares XML entities (an SVG logo needs none) (export the logo as a "
     "plain SVG or a PNG)"),
    ("not well formed", '<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>',
     "'report.logo' is not a well-formed SVG (mismatched tag: line 1, column 48) (export the "
     "logo as a plain SVG or a PNG)"),
    ("html not svg", '<?xml version="1.0"?><html><svg/></html>',
     "'report.logo' is not an SVG image (its root element is not <svg>) (export the logo as "
     "a plain SVG or a PNG)"),
]


@pytest.mark.parametrize("case, svg, message", LOGOS, ids=[c[0] for c in LOGOS])
def test_a_hostile_svg_logo_is_one_line_naming_report_logo(case, svg, message, tmp_path,
                                                            no_network):
    logo = tmp_path / "logo.svg"
    logo.write_text(svg)
    cfg = _cfg(tmp_path, f'[report]\nlogo = "{logo}"\n')
    line = refused(["run", str(CORPUS / "duplicated_ids.csv"), "--config", cfg],
                   tmp_path / "out")
    assert line == f"Error: {logo}: {message}"


def test_an_editors_svg_logo_is_cleaned_and_drawn_offline(tmp_path, fast, no_network):
    import base64

    logo = tmp_path / "logo.svg"
    logo.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/'
        'namespaces/inkscape" xmlns:xlink="http://www.w3.org/1999/xlink" width="120" '
        'height="40"><!-- made by hand --><inkscape:grid/><defs><linearGradient id="g">'
        '<stop offset="0" stop-color="#0b5394"/></linearGradient></defs>'
        '<rect inkscape:label="band" width="120" height="40" fill="url(#g)"/>'
        '<use xlink:href="#g"/></svg>')
    cfg = _cfg(tmp_path, Path(fast).read_text() + f'[report]\nlogo = "{logo}"\n')
    result = invoke("run", str(CORPUS / "duplicated_ids.csv"), "--config", cfg, "--out",
                    str(tmp_path / "out"), "--format", "html,email", "-q")
    assert result.exit_code == 0, result.output
    run_dir = only_run(tmp_path / "out")
    html = (run_dir / "report.html").read_text()
    uri = re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html)
    assert uri, "the logo is inlined"
    inlined = base64.b64decode(uri.group(1)).decode()
    assert "inkscape" not in inlined and "DOCTYPE" not in inlined and "<!--" not in inlined
    assert 'fill="url(#g)"' in inlined and "linearGradient" in inlined
    assert (run_dir / "email-logo.png").read_bytes().startswith(b"\x89PNG")


# The environment is input too: a bad variable is one line, never a traceback
@pytest.mark.parametrize("env, message", [
    ({"REPORTGEN_SMTP_PORT": "five-eight-seven"},
     "Error: SMTP port 'five-eight-seven' is not a number"),
    ({"REPORTGEN_SMTP_PORT": "99999"}, "Error: SMTP port 99999 is out of range"),
    ({"REPORTGEN_SMTP_SECURITY": "tls1.0"},
     "Error: SMTP security 'tls1.0': choose from starttls, ssl, none"),
    ({"REPORTGEN_SMTP_HOST": ""}, "Error: no SMTP server: give --smtp-host or set "
                                  "REPORTGEN_SMTP_HOST"),
])
def test_a_bad_environment_variable_is_one_line(env, message, email_run, tmp_path):
    run = _tampered(email_run, tmp_path, lambda run, e: None)
    base = {"REPORTGEN_SMTP_HOST": "127.0.0.1", "REPORTGEN_SMTP_PASSWORD": ""}
    result = CliRunner().invoke(main, ["email", str(run), "--to", "a@example.com"],
                                env={**base, **env})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == message


def test_a_wide_table_within_the_limits_charts_its_strongest_columns(tmp_path, fast):
    """700 spend columns × 8 segments: 5,600 chart rows used to pass Altair's limit (exit 1)."""
    import numpy as np

    rng = np.random.default_rng(3)
    n = 240
    data = {"customer_id": [f"C{i}" for i in range(n)], "age": rng.integers(20, 70, n),
            "income": rng.integers(20_000, 90_000, n)}
    data.update({f"spend_{j}": rng.integers(0, 100, n) for j in range(700)})
    path = tmp_path / "wide.csv"
    pd.DataFrame(data).to_csv(path, index=False)
    run_dir = repaired(str(path), tmp_path / "out", fast, "--k", "8")["dir"]
    summary = json.loads((run_dir / "summary.json").read_text())

    def parts(chart: str, field: str) -> set[str]:
        spec = summary["charts"][chart]["spec"]
        return {r[field] for rows in spec.get("datasets", {}).values() for r in rows
                if isinstance(r, dict) and field in r}

    mix = parts("product_mix", "component")
    assert len(mix) == 12 and "Other" in mix
    assert len(parts("zscore_heatmap", "feature")) <= 40


# A user's template folder runs in Jinja's sandbox ------------------------------------------

@pytest.mark.parametrize("template", [
    "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ joiner.__init__.__globals__.os.system('touch MARKER') }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ report.__class__.__init__.__globals__ }}",
])
def test_a_user_template_cannot_run_code(template, tmp_path):
    from reportgen.errors import ConfigError
    from reportgen.render.html import render_html

    from .factories import make_report

    marker = tmp_path / "MARKER"
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "report.html.j2").write_text(template.replace("MARKER", str(marker)))
    with pytest.raises(ConfigError, match="a template of 'report.template_dir' failed: .*unsafe"):
        render_html(make_report(), template_dir=folder)
    assert not marker.exists()


def test_the_sandbox_still_renders_a_user_template(tmp_path):
    from reportgen.render.html import render_html

    from .factories import make_report

    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "report.html.j2").write_text(
        "<h1>{{ report.title }}</h1>{% for s in report.segments %}<p>{{ s.name }} "
        "{{ s.share | pct }}</p>{% endfor %}")
    report = make_report()
    html = render_html(report, template_dir=folder)
    assert f"<h1>{report.title}</h1>" in html
    assert html.count("<p>") == len(report.segments)


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + \
        struct.pack(">I", zlib.crc32(chunk)) + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _jpeg_header(width: int, height: int) -> bytes:
    import struct

    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


@pytest.mark.parametrize("name, data, message", [
    ("logo.png", _png_header(60000, 60000),
     "'report.logo' is 60,000×60,000 pixels (at most 10,000 a side) (export the logo at the "
     "size it is shown, a few hundred pixels)"),
    ("logo.jpg", _jpeg_header(40000, 300),
     "'report.logo' is 40,000×300 pixels (at most 10,000 a side) (export the logo at the size "
     "it is shown, a few hundred pixels)"),
    ("logo.png", b"\x89PNG\r\n\x1a\n\x00", "'report.logo' is not a readable PNG image"),
])
def test_a_bitmap_logo_declaring_huge_dimensions_is_refused_unread(name, data, message,
                                                                  tmp_path):
    logo = tmp_path / name
    logo.write_bytes(data)
    cfg = _cfg(tmp_path, f'[report]\nlogo = "{logo}"\n')
    line = refused(["run", str(CORPUS / "duplicated_ids.csv"), "--config", cfg],
                   tmp_path / "out")
    assert line == f"Error: {logo}: {message}"


# User templates, through the command line: every failure is the user's to fix (exit 2, one
# line naming report.template_dir, the file and the line), nothing runs, nothing is written,
# and nothing outside the template folder is read.

def _template_case(folder: Path, secret: Path, case: str) -> tuple[str, str]:
    """Write the case into folder; (--format, expected line after 'Error: ')."""
    failed = "a template of 'report.template_dir' failed"
    page = folder / "report.html.j2"
    if case == "syntax error":
        page.write_text("{% if %}\n")
        return "html", f"{page}, line 1: {failed}: Expected an expression, got 'end of " \
                       "statement block'"
    if case == "undefined name":
        page.write_text("<p>\n{{ nope }}\n")
        return "html", f"{page}, line 2: {failed}: 'nope' is undefined"
    if case == "include outside":
        page.write_text('{% include "../../../../etc/passwd" %}')
        return "html", f"{page}, line 1: {failed}: no template '../../../../etc/passwd' in " \
                       "the folder or among the built-in ones"
    if case == "runs a command":
        page.write_text("{{ cycler.__init__.__globals__.os.popen('touch %s').read() }}"
                        % (secret.parent / "MARKER"))
        return "html", f"{page}, line 1: {failed}: access to attribute '__init__' of 'type' " \
                       "object is unsafe."
    if case == "link out":
        page.symlink_to(secret)
        return "html", f"{page}: a template of 'report.template_dir' is a link to " \
                       f"'{secret}', outside the folder (copy the file into the template folder)"
    if case == "folder link out":
        (folder / "parts").symlink_to(secret.parent)
        page.write_text('{% include "parts/secret.txt" %}')
        return "html", f"{folder / 'parts' / 'secret.txt'}: a template of " \
                       f"'report.template_dir' is a link to '{secret}', outside the folder " \
                       "(copy the file into the template folder)"
    assert case == "email text"
    (folder / "email.txt.j2").write_text("{{ report.title }}\n{{ report.nope }}\n")
    return "email", f"{folder / 'email.txt.j2'}, line 2: {failed}: " \
                    "'reportgen.report.Report object' has no attribute 'nope'"


@pytest.mark.parametrize("case", ["syntax error", "undefined name", "include outside",
                                  "runs a command", "link out", "folder link out",
                                  "email text"])
def test_a_failing_user_template_is_one_line_exit_2(case, tmp_path, fast, no_network):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("s3cret\n")
    folder = tmp_path / "templates"
    folder.mkdir()
    formats, message = _template_case(folder, secret, case)
    out = tmp_path / "out"
    result = invoke("run", str(CORPUS / "duplicated_ids.csv"), "--config", fast, "--out",
                    str(out), "--format", formats, "-q", "--template-dir", str(folder))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]
    assert not out.exists() or not any(out.iterdir())  # nothing written
    assert not (outside / "MARKER").exists()  # nothing ran
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_a_link_inside_the_template_folder_is_followed(tmp_path, fast):
    """Refused are links out of the folder, not links: one to a file beside it works."""
    folder = tmp_path / "templates"
    (folder / "parts").mkdir(parents=True)
    (folder / "parts" / "title.j2").write_text("<h1>Ours: {{ report.title }}</h1>")
    (folder / "title.j2").symlink_to(folder / "parts" / "title.j2")
    (folder / "report.html.j2").write_text('{% include "title.j2" %}')
    out = tmp_path / "out"
    result = invoke("run", str(CORPUS / "duplicated_ids.csv"), "--config", fast, "--out",
                    str(out), "--format", "html", "-q", "--template-dir", str(folder))
    assert result.exit_code == 0, result.output
    run_dir = only_run(out)
    assert (run_dir / "report.html").read_text() == "<h1>Ours: Customer segmentation</h1>"


# The Vega script cached in REPORTGEN_CACHE_DIR is inlined into every HTML report: a folder
# named there must be a folder only the user can write, checked before the table is read.

@pytest.mark.parametrize("case, message", [
    ("a file", "is not a folder"),
    ("writable by others", "can be written by other users (the Vega script cached there is "
                           "inlined into every report)"),
    ("cannot be created", "cannot be created (No such file or directory)"),
])
def test_an_unusable_cache_dir_is_one_line_exit_2(case, message, tmp_path, fast):
    chosen = tmp_path / "cache"
    if case == "a file":
        chosen.write_text("not a folder")
    elif case == "writable by others":
        chosen.mkdir()
        chosen.chmod(0o777)
    else:
        chosen = Path("/proc/no-such-process/cache")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(CORPUS / "duplicated_ids.csv"), "--config",
                                       fast, "--out", str(out), "--format", "html,json"],
                                env={"REPORTGEN_CACHE_DIR": str(chosen)})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: REPORTGEN_CACHE_DIR '{chosen}' {message} (set it to a folder only you can "
        'write, or to "off" for no cache)']
    assert not out.exists()  # stopped before the table was read
    if case == "writable by others":
        assert list(chosen.iterdir()) == []


def test_a_fifo_in_the_cache_dir_is_not_read(tmp_path, fast):
    from importlib import metadata

    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    bundle = cache / f"vega-bundle-vlc{metadata.version('vl-convert-python')}.js"
    os.mkfifo(bundle)  # reading it would block forever: limits.seconds would end the test
    cfg = _cfg(tmp_path, Path(fast).read_text() + "[limits]\nseconds = 120\n")
    result = CliRunner().invoke(main, ["run", str(CORPUS / "duplicated_ids.csv"), "--config",
                                       cfg, "--out", str(tmp_path / "out"), "--format", "html",
                                       "-q"], env={"REPORTGEN_CACHE_DIR": str(cache)})
    assert result.exit_code == 0, result.output
    assert bundle.is_file() and "vegaEmbed" in bundle.read_text()  # built and cached again


# Memory: pandas parses a text table from UTF-8 bytes, the file's own when it is UTF-8 (a
# StringIO of the decoded text held 4 bytes a character); scripts/bench_load.py measures it.

def test_a_utf8_table_is_parsed_from_the_files_own_bytes():
    from reportgen.load import _utf8_body

    raw = "customer_id,city\n1,Zürich\n".encode()
    assert _utf8_body(raw, raw.decode(), "utf-8", 0) is raw  # no copy


@pytest.mark.parametrize("raw, encoding, skip", [
    (b"\xef\xbb\xbfid,city\n1,Z\xc3\xbcrich\n", "utf-8-sig", 0),
    (b"sep=;\r\nid;city\r\n1;Z\xc3\xbcrich\r\n", "utf-8", 7),
    (b"\xef\xbb\xbfsep=;\nid;city\n1;Z\xc3\xbcrich\n", "utf-8", 6),
    ("id,city\n1,Zürich\n".encode("cp1252"), "cp1252", 0),
    ("id\tcity\n1\tZürich\n".encode("utf-16"), "utf-16", 0),
])
def test_the_bytes_pandas_parses_are_the_table_as_text(raw, encoding, skip):
    from reportgen.load import _utf8_body

    text = raw.decode(encoding)
    text = text[1:] if text.startswith("\ufeff") else text
    assert _utf8_body(raw, text, encoding, skip).decode("utf-8") == text[skip:]
    assert _utf8_body(raw, text, encoding, skip).decode("utf-8").startswith("id")


@pytest.mark.parametrize("values, dtype, longest", [
    (["ab", None, "abcd"], object, 4),
    (["ab", 3, "abcdef", b"x" * 50], object, 6),  # only text counts, not bytes or numbers
    (["x" * 5, 2.5], object, 5),
    ([pd.NA, "abc"], object, 3),
    (["\ud800abc", "x"], object, 4),  # a lone surrogate: counted without pyarrow
    (["é" * 7, "x"], None, 7),  # characters, not bytes
    ([None, float("nan")], object, 0),
    ([1, 2], None, 0),
])
def test_the_longest_text_cell_is_measured_in_characters(values, dtype, longest):
    from reportgen.load import _longest_text

    assert _longest_text(pd.Series(values, dtype=dtype)) == longest


def test_a_long_cell_in_a_mixed_excel_column_is_refused(tmp_path):
    """openpyxl gives Python objects: a column of text and numbers stays object dtype."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["customer_id", "income", "note"])
    for i in range(24):
        sheet.append([f"C{i}", 1000 + i, "y" * 5000 if i == 7 else i])
    path = tmp_path / "mixed.xlsx"
    book.save(path)
    cfg = _limits(tmp_path, "cell_chars = 1000\n")
    assert refused(["validate", str(path), "--config", cfg], tmp_path / "out") == (
        f"Error: {path}: column 'note': a cell is 5,000 characters long (more than "
        "limits.cell_chars = 1,000) (raise cell_chars under [limits] in the config if the "
        "input is right)")


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_parquet_repeating_one_long_value_is_measured_decoded(command, tmp_path):
    """A Parquet file of a few hundred KB can repeat one 5,000-character value 20,000 times:
    100 MB of text once decoded, while its footer declares well under a megabyte. The decoded
    size is counted from the dictionary, before anything is decoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 20_000
    note = pa.DictionaryArray.from_arrays(pa.array([0] * n, type=pa.int32()),
                                          pa.array(["y" * 5_000]))
    path = tmp_path / "repeated.parquet"
    pq.write_table(pa.table({"customer_id": [f"C{i}" for i in range(n)],
                             "income": list(range(n)), "note": note}), path)
    meta = pq.ParquetFile(path).metadata
    assert sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) \
        < 10_000_000  # what the footer says passes the limit
    cfg = _limits(tmp_path, "bytes = 10000000\n")
    line = refused([command, str(path), "--config", cfg], tmp_path / "out")
    m = re.fullmatch(rf"Error: {re.escape(str(path))}: the table is ([\d,]+) bytes once "
                     r"decoded \(more than limits.bytes = 10,000,000 bytes\) \(raise bytes "
                     r"under \[limits\] in the config if the input is right\)", line)
    assert m and int(m.group(1).replace(",", "")) > n * 5_000


def test_a_sender_from_the_environment_cannot_smuggle_headers(email_run, tmp_path):
    run = _tampered(email_run, tmp_path, lambda run, e: None)
    result = CliRunner().invoke(main, ["email", str(run), "--to", "a@example.com",
                                       "--dry-run"],
                                env={"REPORTGEN_MAIL_FROM": "me@x.com\r\nBcc: y@evil.com"})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == \
        "Error: sender 'me@x.com\\r\\nBcc: y@evil.com' is not an email address"
    assert not (run / "message.eml").exists()


# Issue 13 for the series: hostile series names, history URLs and tampered output roots ------
# Each refused at once with one line (exit 2), or a logged recovery; nothing is read or written
# outside the output root.

SERIES_HINT = ("(use letters, digits, '.', '-' and '_' (at most 64), starting with a letter "
               "or digit)")
HOSTILE_SERIES = ["../outside", "a/b", "/etc", "..", ".", "-rf", "x" * 65, "a\nb",
                  "a\x1b[2Jb", "a\rBcc: x", " leading-space", "ünïcode"]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder with its bytes (links as their target): to show it unchanged."""
    return {str(p.relative_to(folder)): (os.readlink(p).encode() if p.is_symlink() else
                                         p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("name", HOSTILE_SERIES)
def test_a_hostile_series_name_is_refused(name, tmp_path):
    line = refused(["run", str(CORPUS / "duplicated_ids.csv"), "--series", name],
                   tmp_path / "out")
    assert line == f"Error: 'series.name': series name {name!r} is not allowed {SERIES_HINT}"
    result = invoke("history", "--out", str(tmp_path / "out"), "--series", name)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: series name {name!r} is not allowed {SERIES_HINT}"
    assert _tree(tmp_path) == {}


@pytest.mark.parametrize("name", ["a\x00b", "../../x", "a/b"])
def test_a_hostile_series_name_in_the_config_is_refused(name, tmp_path):
    cfg = _cfg(tmp_path, "[series]\nname = " + json.dumps(name) + "\n")
    line = refused(["run", str(CORPUS / "duplicated_ids.csv"), "--config", cfg],
                   tmp_path / "out")
    assert line == f"Error: {cfg}: 'series.name': series name {name!r} is not allowed " \
                   + SERIES_HINT
    assert sorted(_tree(tmp_path)) == ["reportgen.toml"]


SQLITE_HINT = "(e.g. postgresql://reportgen@db/crm or sqlite:///path/to/history.db)"
PG_OPTIONS = ("(accepted: application_name, connect_timeout, sslcert, sslcrl, sslkey, sslmode, "
              "sslrootcert, target_session_attrs; options only as -c search_path=SCHEMA)")


@pytest.mark.parametrize("url, shown, message", [
    # sqlite3 URI options: a file: URI can open or create any database the URI names
    ("sqlite:///file:{tmp}/made.db?mode=rwc&uri=true", "sqlite:///file%3A{tmp}/made.db?mode"
     "=rwc&uri=true", "[history] url must name an SQLite file by its path " + SQLITE_HINT),
    ("sqlite:///{tmp}/made.db?mode=rwc", None,
     "[history] url: SQLite options are not accepted (mode) (name the file only: "
     "sqlite:///path/to/history.db)"),
    ("sqlite:///{tmp}/made.db?uri=true&vfs=unix-dotfile", None,
     "[history] url: SQLite options are not accepted (uri, vfs) (name the file only: "
     "sqlite:///path/to/history.db)"),
    ("sqlite://", None, "[history] url must name an SQLite file by its path " + SQLITE_HINT),
    ("sqlite:///:memory:", "sqlite:///%3Amemory%3A",
     "[history] url must name an SQLite file by its path " + SQLITE_HINT),
    # other places and kinds of database
    ("mysql://evil.example/x", None, "[history] url: 'mysql' is not a history database (the "
     "history is kept in PostgreSQL or SQLite: e.g. postgresql://reportgen@db/crm or "
     "sqlite:///path/to/history.db)"),
    ("file:///etc/passwd", None, "[history] url: 'file' is not a history database (the "
     "history is kept in PostgreSQL or SQLite: e.g. postgresql://reportgen@db/crm or "
     "sqlite:///path/to/history.db)"),
    ("http://127.0.0.1:9/x", None, "[history] url: 'http' is not a history database (the "
     "history is kept in PostgreSQL or SQLite: e.g. postgresql://reportgen@db/crm or "
     "sqlite:///path/to/history.db)"),
    ("not a url", None, "[history] url is not a valid database URL " + SQLITE_HINT),
    # libpq options that read files or name other servers
    ("postgresql://u@evil.example/x?service=other", None,
     "[history] url: option 'service' is not accepted " + PG_OPTIONS),
    ("postgresql://u@db/x?passfile=/etc/passwd", "postgresql://u@db/x?passfile=%2Fetc%2Fpasswd",
     "[history] url: option 'passfile' is not accepted " + PG_OPTIONS),
    ("postgresql://u@db/x?options=-c%20default_transaction_read_only%3Doff",
     "postgresql://u@db/x?options=-c+default_transaction_read_only%3Doff",
     "[history] url: option 'options' is not accepted " + PG_OPTIONS),
    ("postgresql://u@db/x?options=-csearch_path%3Dh%20-cssl_library%3Dx",
     "postgresql://u@db/x?options=-csearch_path%3Dh+-cssl_library%3Dx",
     "[history] url: option 'options' is not accepted " + PG_OPTIONS),
])
def test_a_history_url_that_would_create_files_or_reach_out_is_refused(url, shown, message,
                                                                        tmp_path):
    url = url.format(tmp=tmp_path)
    shown = (shown or url).format(tmp=tmp_path)
    line = refused(["run", str(CORPUS / "duplicated_ids.csv"), "--history", url],
                   tmp_path / "out")
    assert line == f"Error: {shown}: {message}"
    result = invoke("history", "--out", str(tmp_path / "out"), "--history", url)
    assert (result.exit_code, result.stderr.strip()) == (2, f"Error: {shown}: {message}")
    cfg = _cfg(tmp_path, "[history]\nurl = " + json.dumps(url) + "\n")
    line = refused(["validate", str(CORPUS / "duplicated_ids.csv"), "--config", cfg],
                   tmp_path / "out")
    assert line == f"Error: {shown}: {message}"
    assert sorted(_tree(tmp_path)) == ["reportgen.toml"]  # no database file made


@pytest.fixture(scope="module")
def june_root(tmp_path_factory, fast):
    """An output root after June's run of a small series, and July's table."""
    from .series_tables import group_months

    folder = tmp_path_factory.mktemp("series")
    june, july = group_months()[:2]
    paths = []
    for month in (june, july):
        path = folder / f"{month.period}.tsv"
        month.frame.drop(columns=["kind"]).to_csv(path, sep="\t", index=False)
        paths.append(path)
    root = folder / "out"
    result = invoke("run", str(paths[0]), "--out", str(root), "--format", "json", "-q",
                    "--config", fast)
    assert result.exit_code == 0, result.output
    return {"root": root, "july": paths[1], "june_id": only_run(root).name,
            "customers": len(june.frame)}


def _copy_root(june_root, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of June's output root, and a folder outside it holding a copy of June's run (a
    real run folder: were it followed, July would compare with its customers)."""
    import shutil

    root = tmp_path / "out"
    shutil.copytree(june_root["root"], root)
    outside = tmp_path / "outside"
    shutil.copytree(root / june_root["june_id"], outside / june_root["june_id"])
    return root, outside


def _july(june_root, root: Path, fast: str, *extra: str):
    return invoke("run", str(june_root["july"]), "--out", str(root), "--format", "json",
                  "--json", "--config", fast, *extra)


def _set_run_dir(root: Path, run_dir: str) -> None:
    import sqlite3

    with sqlite3.connect(root / "history.sqlite") as db:
        assert db.execute("UPDATE reportgen_runs SET run_dir = ?", (run_dir,)).rowcount == 1


@pytest.mark.parametrize("where", ["relative", "absolute", "series.json"])
def test_a_previous_run_folder_outside_the_root_is_never_followed(june_root, tmp_path, fast,
                                                                   where, caplog):
    root, outside = _copy_root(june_root, tmp_path)
    june = june_root["june_id"]
    target = f"../outside/{june}" if where != "absolute" else str(outside / june)
    if where == "series.json":
        # the database damaged, the run folder's record edited: the history is rebuilt from it
        record = root / june / "series.json"
        record.write_text(record.read_text().replace(f'"run_dir": "{june}"',
                                                     f'"run_dir": "{target}"'))
        (root / "history.sqlite").write_bytes(b"not a database" * 100)
    else:
        _set_run_dir(root, target)
    before = _tree(outside)
    result = _july(june_root, root, fast)
    assert result.exit_code == 0, result.output
    changes = json.loads(result.stdout)["changes"]
    assert changes["previous_run_id"] == june
    # the customers could not be followed: nothing of the folder outside was read
    assert changes["new_customers"] is None and changes["returning_customers"] is None
    assert f"run {june!r} names a folder outside the output root ({target!r})" in result.stderr
    assert _tree(outside) == before


def test_a_previous_run_outside_the_root_asked_for_by_id_is_one_line(june_root, tmp_path, fast):
    root, outside = _copy_root(june_root, tmp_path)
    june = june_root["june_id"]
    _set_run_dir(root, f"../outside/{june}")
    before = _tree(root)
    result = _july(june_root, root, fast, "--previous", june)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: run {june!r} cannot be compared with: {root}: run {june!r} names a folder "
        f"outside the output root ('../outside/{june}') (the history or a series.json was "
        "edited; --no-previous starts afresh) (--no-previous starts afresh)")
    assert _tree(root) == before


@pytest.mark.parametrize("previous", ["../../etc/passwd", "/etc", "..", "x\x00y"])
def test_a_previous_run_id_that_names_a_path_is_one_line(june_root, tmp_path, fast, previous):
    root, _ = _copy_root(june_root, tmp_path)
    before = _tree(root)
    result = _july(june_root, root, fast, "--previous", previous)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {root / 'history.sqlite'}: series 'default' has no run {previous!r} "
        "(`reportgen history` lists its runs)")
    assert _tree(root) == before


def test_a_series_folder_linked_out_of_the_root_is_refused(june_root, tmp_path, fast):
    root, outside = _copy_root(june_root, tmp_path)
    (root / "shop").symlink_to(outside, target_is_directory=True)
    before = _tree(outside)
    result = _july(june_root, root, fast, "--series", "shop")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {root / 'shop'}: the series folder is a link out of the output root (remove "
        "the link: a series' runs are kept inside the output root)")
    assert _tree(outside) == before


def test_a_history_database_linked_out_of_the_root_is_refused(june_root, tmp_path, fast):
    root, outside = _copy_root(june_root, tmp_path)
    (root / "history.sqlite").rename(outside / "history.sqlite")
    (root / "history.sqlite").symlink_to(outside / "history.sqlite")
    before = _tree(outside)
    result = _july(june_root, root, fast)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: {root / 'history.sqlite'}: is a link, not the history database (a history "
        "kept elsewhere is named with --history sqlite:///PATH ([history] url))")
    assert _tree(outside) == before
    assert run_folders(root) == [root / june_root["june_id"]]


@pytest.mark.parametrize("pointer", ["link", "folder"])
def test_a_tampered_latest_pointer_is_not_followed(june_root, tmp_path, fast, pointer):
    root, outside = _copy_root(june_root, tmp_path)
    secret = outside / "secret.json"
    secret.write_text('{"period": "9999-12"}\n')  # were it read, July would not be latest
    (root / "latest").unlink()
    if pointer == "link":
        (root / "latest").symlink_to(secret)
    else:
        (root / "latest").mkdir()
    before = _tree(outside)
    result = _july(june_root, root, fast)
    assert result.exit_code == 0, result.output
    july = json.loads(result.stdout)["run_id"]
    assert _tree(outside) == before
    if pointer == "link":
        assert not (root / "latest").is_symlink()
        assert json.loads((root / "latest").read_text())["run_id"] == july
    else:
        assert (root / "latest").is_dir() and not any((root / "latest").iterdir())
        assert f"{root / 'latest'} is a folder, not the pointer to the newest run: left " \
               "alone" in result.stderr


def test_a_gzip_bomb_is_refused_holding_one_chunk_not_limits_bytes():
    """A gzip file that inflates to 120 MB under limits.bytes = 50 MB: refused with the one
    line, having held about one GZIP_CHUNK of it (the old read held all 50 MB)."""
    import gzip
    import io
    import tracemalloc

    from reportgen.config import InputConfig, LimitsConfig
    from reportgen.errors import LimitError
    from reportgen.load import GZIP_CHUNK, load

    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:
        f.write(b"customer_id,income\n")
        row = b"C1,50000\n" * 100_000
        for _ in range(120_000_000 // len(row)):
            f.write(row)
    limit = 50_000_000
    assert len(buffer.getvalue()) * 1032 > limit  # could inflate past it: counted first
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bomb-{os.getpid()}.csv.gz"
    path.write_bytes(buffer.getvalue())
    try:
        tracemalloc.start()
        with pytest.raises(LimitError) as caught:
            load(str(path), InputConfig(), LimitsConfig(bytes=limit))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        path.unlink()
    assert str(caught.value.message) == ("the file is too large once decompressed (more than "
                                         "limits.bytes = 50,000,000 bytes)")
    assert peak < len(buffer.getvalue()) * 3 + 4 * GZIP_CHUNK < 10_000_000


def test_a_gzip_file_that_could_be_a_bomb_but_is_not_is_read(tmp_path):
    """Small enough once inflated, but its compressed size would allow more than the limit:
    counted, then read as usual."""
    import gzip

    from reportgen.config import InputConfig, LimitsConfig
    from reportgen.load import load

    rows = "".join(f"C{i},{40 + i % 30},{30_000 + 97 * i},{i % 500}\n" for i in range(3000))
    text = "customer_id,age,income,wine_spend\n" + rows
    path = tmp_path / "customers.csv.gz"
    path.write_bytes(gzip.compress(text.encode(), mtime=0))
    limit = len(text) + 10
    assert path.stat().st_size * 1032 > limit
    loaded = load(str(path), InputConfig(), LimitsConfig(bytes=limit))
    assert loaded.frame.shape == (3000, 4)
    assert loaded.frame["income"].iloc[-1] == 30_000 + 97 * 2999
