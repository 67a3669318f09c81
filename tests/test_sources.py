"""Sources: delimited text in its many dialects, Parquet, Excel, SQLite and a real PostgreSQL.

PostgreSQL tests need a server (tests/pg.py): REPORTGEN_TEST_PG_URL (default
postgresql://reportgen:${REPORTGEN_TEST_PG_PASSWORD}@127.0.0.1:5432/reportgen_test, the
password from the environment, default "rg-Secret-42"; .ci/run creates that role and
database). They are skipped when no server answers,
except in CI (CI=true), where they must run.
"""

from __future__ import annotations

import gzip
import json
import sqlite3

import pandas as pd
import pytest
from click.testing import CliRunner

from reportgen.cli import main
from reportgen.config import Config, InputConfig
from reportgen.errors import ConfigError, InputError
from reportgen.load import load, mask_url

from .customer_tables import mall_table
from .pg import PG_PASSWORD, PG_URL
from .runs import only_run

MALL_COLUMNS = ["CustomerID", "Genre", "Age", "Annual Income (k$)", "Spending Score (1-100)"]


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "fast.toml"
    path.write_text("[segment]\nstability_runs = 0\n")
    return str(path)


# delimited text ----------------------------------------------------------------------------

ROWS = [["id", "name", "income", "spend"], ["1", "Zoë", "51000", "120.5"],
        ["2", "Jürgen", "42000", "80"], ["3", "Ana, María", "39000", "15"]]


def _text(delimiter: str, newline: str = "\n") -> str:
    out = []
    for row in ROWS:
        cells = [f'"{c}"' if delimiter in c or "," in c else c for c in row]
        out.append(delimiter.join(cells))
    return newline.join(out) + newline


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_delimited_text_in_every_dialect_reads_the_same_table(tmp_path, delimiter, encoding,
                                                               newline):
    path = tmp_path / "t.csv"
    path.write_bytes(_text(delimiter, newline).encode(encoding))
    loaded = load(path, InputConfig())
    assert loaded.delimiter == delimiter
    assert list(loaded.frame.columns) == ROWS[0]
    assert loaded.frame["name"].tolist() == ["Zoë", "Jürgen", "Ana, María"]
    assert loaded.frame["income"].tolist() == [51000, 42000, 39000]
    decoded = [n.action for n in loaded.notes if n.action == "decoded"]
    assert decoded == (["decoded"] if encoding in ("cp1252", "latin-1") else [])


def test_gzip_compressed_text_is_read_and_logged(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(_text(",").encode()))
    loaded = load(path, InputConfig())
    assert loaded.frame.shape == (3, 4)
    assert [n.action for n in loaded.notes] == ["decompressed"]


def test_configured_delimiter_and_encoding_win(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(_text(";").encode("utf-16"))
    loaded = load(path, InputConfig(delimiter=";", encoding="utf-16"))
    assert loaded.frame["name"].tolist() == ["Zoë", "Jürgen", "Ana, María"]


def test_quoted_cells_with_delimiters_and_newlines(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,note,spend\n1,"a, b; c | d",10\n2,"two\nlines",20\n3,"say ""hi""",30\n')
    frame = load(path, InputConfig()).frame
    assert frame["note"].tolist() == ["a, b; c | d", "two\nlines", 'say "hi"']


# Parquet and Excel -------------------------------------------------------------------------

def test_parquet_keeps_types_and_turns_categories_into_plain_values(tmp_path):
    frame = mall_table(20)
    frame["Genre"] = frame["Genre"].astype("category")
    frame["Joined"] = pd.date_range("2020-01-01", periods=20, freq="7D", tz="Europe/Paris")
    frame["Member"] = frame["Age"] > 30
    path = tmp_path / "m.parquet"
    frame.set_index("CustomerID").to_parquet(path)
    loaded = load(path, InputConfig())
    assert loaded.kind == "parquet"
    out = loaded.frame
    assert list(out.columns)[:5] == MALL_COLUMNS  # the stored index is a column again
    assert out["CustomerID"].tolist() == frame["CustomerID"].tolist()
    assert not isinstance(out["Genre"].dtype, pd.CategoricalDtype)
    assert out["Joined"].dt.tz is None and out["Member"].isin([0, 1]).all()


def test_xlsx_workbook_first_sheet_or_the_named_one(tmp_path):
    path = tmp_path / "m.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"note": ["not this one"], "x": [1]}).to_excel(
            writer, sheet_name="Readme", index=False)
        mall_table(30).to_excel(writer, sheet_name="Customers", index=False)
    first = load(path, InputConfig())
    assert first.kind == "excel" and list(first.frame.columns) == ["note", "x"]
    loaded = load(path, InputConfig(sheet="Customers"))
    assert list(loaded.frame.columns) == MALL_COLUMNS and len(loaded.frame) == 30
    assert loaded.frame["Age"].dtype.kind == "i"
    with pytest.raises(ConfigError, match="no sheet 'Custmers' .sheets: Readme, Customers."):
        load(path, InputConfig(sheet="Custmers"))


def test_xlsx_through_the_cli_gives_the_same_personas_as_csv(tmp_path, fast_config):
    frame = mall_table()
    frame.to_csv(tmp_path / "m.csv", index=False)
    frame.to_excel(tmp_path / "m.xlsx", index=False)
    names = []
    for f in ("m.csv", "m.xlsx"):
        result = invoke("run", str(tmp_path / f), "--out", str(tmp_path / f"o_{f}"), "--format",
                        "json", "-q", "--config", fast_config)
        assert result.exit_code == 0, result.output
        run_dir = only_run(tmp_path / f"o_{f}")
        summary = json.loads((run_dir / "summary.json").read_text())
        names.append([s["name"] for s in summary["segments"]])
    assert names[0] == names[1]


# SQLite --------------------------------------------------------------------------------------

@pytest.fixture()
def sqlite_db(tmp_path):
    path = tmp_path / "crm.db"
    with sqlite3.connect(path) as con:
        frame = mall_table()
        frame["joined"] = pd.date_range("2019-01-01", periods=len(frame), freq="D").strftime(
            "%Y-%m-%d")
        frame.to_sql("customers", con, index=False)
    return path


def test_sqlite_table_and_query(sqlite_db):
    url = f"sqlite:///{sqlite_db}"
    table = load(url, InputConfig(table="customers"))
    assert table.kind == "sql" and len(table.frame) == 200 and table.name == "customers"
    assert table.where == f"{url} table customers"
    query = load(url, InputConfig(query='SELECT * FROM customers WHERE "Age" > 40'))
    assert 0 < len(query.frame) < 200 and (query.frame["Age"] > 40).all()
    # same table, same content hash: reproducible run ids
    assert load(url, InputConfig(table="customers")).sha256 == table.sha256


def test_sqlite_run_through_the_cli(sqlite_db, tmp_path, fast_config):
    result = invoke("run", f"sqlite:///{sqlite_db}", "--table", "customers", "--out",
                    str(tmp_path / "out"), "--format", "json", "--config", fast_config)
    assert result.exit_code == 0, result.output
    assert "200 customers" in result.stdout
    run_dir = only_run(tmp_path / "out")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["input"]["path"] == f"sqlite:///{sqlite_db} table customers"


@pytest.mark.parametrize("args, message", [
    (["--table", "custmers"], "table 'custmers' not found (did you mean 'customers'?)"),
    (["--query", "SELECT * FROM nope"], "the query failed: no such table: nope"),
    (["--query", "DELETE FROM customers"], "--query must be a SELECT, not DELETE (reportgen "
                                           "only reads"),
    ([], "a database source needs a table or a query"),
    (["--table", "customers", "--query", "SELECT 1"], "--table and --query cannot be used "
                                                      "together"),
])
def test_sqlite_mistakes_are_one_line_exit_2(sqlite_db, tmp_path, args, message):
    result = invoke("run", f"sqlite:///{sqlite_db}", *args, "--out", str(tmp_path / "o"),
                    "--format", "json")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    with sqlite3.connect(sqlite_db) as con:  # a --query that writes changes nothing
        assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == 200


def test_passwords_are_masked_in_messages():
    assert mask_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    with pytest.raises(InputError) as exc:
        load("postgresql://u:s3cret@127.0.0.1:1/db", InputConfig(table="t"))
    assert "s3cret" not in str(exc.value) and "postgresql://u:***@127.0.0.1:1/db" in str(
        exc.value)
    assert "Connection refused" in str(exc.value) or "connect" in str(exc.value)


def test_unset_environment_variable_in_the_url_is_named(monkeypatch):
    monkeypatch.delenv("RG_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match=r"uses \$\{RG_NOT_SET\}, which is not set"):
        load("postgresql://u:${RG_NOT_SET}@127.0.0.1:1/db", InputConfig(table="t"))


# PostgreSQL ------------------------------------------------------------------------------------

# the server, PG_URL and the pg_table fixture: tests/pg.py


def test_postgresql_table_is_read_in_primary_key_order(pg_table):
    loaded = load(PG_URL, InputConfig(table=pg_table))
    assert loaded.kind == "sql" and len(loaded.frame) == 200
    assert loaded.frame["CustomerID"].tolist() == list(range(1, 201))
    assert PG_PASSWORD not in loaded.where and "***" in loaded.where


def test_postgresql_run_through_the_cli_never_prints_the_password(pg_table, tmp_path,
                                                                   fast_config):
    result = invoke("run", PG_URL, "--table", pg_table, "--out", str(tmp_path), "--format",
                    "json", "--config", fast_config)
    assert result.exit_code == 0, result.output
    assert "200 customers" in result.stdout
    run_dir = only_run(tmp_path)
    written = " ".join(p.read_text(errors="replace") for p in run_dir.iterdir()
                       if p.suffix in (".json", ".csv"))
    for text in (result.stdout, result.stderr, written):
        assert PG_PASSWORD not in text
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["input"]["path"].endswith(f"table {pg_table}")
    assert ":***@" in manifest["input"]["path"]


def test_postgresql_query_and_missing_table(pg_table, tmp_path):
    loaded = load(PG_URL, InputConfig(query=f'SELECT * FROM "{pg_table}" WHERE "Age" < 30'))
    assert (loaded.frame["Age"] < 30).all()
    result = invoke("validate", PG_URL, "--table", "no_such_table")
    assert result.exit_code == 2
    assert "table 'no_such_table' not found" in result.stderr


def test_postgresql_read_only_even_for_a_writing_query(pg_table):
    with pytest.raises(ConfigError, match="--query must be a SELECT, not DROP"):
        load(PG_URL, InputConfig(query=f'DROP TABLE "{pg_table}"'))
    assert len(load(PG_URL, InputConfig(table=pg_table)).frame) == 200


def test_postgresql_wrong_password_is_a_clear_error_without_the_password(pg_table,
                                                                          monkeypatch):
    monkeypatch.setenv("REPORTGEN_TEST_PG_PASSWORD", "Wr0ng-Pa55")
    url = PG_URL if "${REPORTGEN_TEST_PG_PASSWORD}" in PG_URL else \
        "postgresql://reportgen:${REPORTGEN_TEST_PG_PASSWORD}@127.0.0.1:5432/reportgen_test"
    with pytest.raises(InputError) as exc:
        load(url, InputConfig(table=pg_table))
    assert "password authentication failed" in str(exc.value)
    assert "Wr0ng-Pa55" not in str(exc.value)


def test_config_file_can_name_the_table(pg_table, tmp_path):
    cfg = tmp_path / "r.toml"
    cfg.write_text(f'[input]\ntable = "{pg_table}"\n')
    result = invoke("validate", PG_URL, "--config", str(cfg))
    assert result.exit_code == 0, result.output
    assert "200 rows × 6 columns (database)" in result.stdout


def test_config_defaults_are_unchanged_by_sources():
    assert Config().input.table is None and Config().input.query is None
