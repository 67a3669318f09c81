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
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.output import neutralise

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
    result = invoke(*args, "--out", str(out), "--format", "json")
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
    (run_dir,) = [p for p in out.iterdir() if not p.name.startswith(".")]
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
]


@pytest.mark.parametrize("name, message", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_input_is_one_line_exit_2(name, message, tmp_path):
    path = str(CORPUS / name)
    assert refused(["run", path], tmp_path / "out") == f"Error: {path}: {message}"


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
    ("rate_above_one.csv", [("purchase_frequency", "set missing", 1,
                             "values above 1, first at row 7")]),
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
              "padded_header_blank_lines.csv", "gzip_text.csv.gz"]


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
    (run_dir,) = tmp_path.iterdir()
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
])
def test_config_that_does_not_match_the_table(toml, message, tmp_path):
    path = str(CORPUS / "duplicated_ids.csv")
    cfg = _cfg(tmp_path, toml)
    line = refused(["run", path, "--config", cfg], tmp_path / "out")
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
    assert [p.name.startswith(".") for p in out.iterdir()] == [False]


def test_every_corpus_file_has_a_tested_outcome():
    made = {p.name for p in CORPUS.iterdir() if p.name not in ("make_corpus.py", "README.md")}
    assert len(made) >= 40  # besides the configs, paths and databases built in the tests
    named = {c[0] for c in REFUSED + REPAIRED} | set(SAME_TABLE) | {
        "broken.parquet", "formula_cells.csv", "html_in_categories.csv"}
    assert made == named  # every file has a tested outcome
