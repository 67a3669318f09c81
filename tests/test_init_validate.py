"""`reportgen init` and `reportgen validate`: what was inferred, written down and checked."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from reportgen.check import check, config_text
from reportgen.cli import main
from reportgen.config import Config, load_config

from .customer_tables import mall_table
from .runs import only_run

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def mall_csv(tmp_path: Path) -> Path:
    path = tmp_path / "Mall_Customers.csv"
    mall_table().to_csv(path, index=False)
    return path


def test_validate_prints_roles_cleaning_and_ok(tmp_path):
    path = mall_csv(tmp_path)
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Source: {path}: 200 rows × 5 columns (delimited text, ',' delimiter, utf-8)" in out
    assert "  Annual Income (k$)      income         name matches income; amounts in " \
           "thousands" in out
    assert "  Annual Income (k$): rescaled (200 rows): × 1,000" in out
    assert "*income" in out and "*score" in out
    assert out.rstrip().endswith("OK: ready for `reportgen run`.")


def test_validate_shows_the_roles_then_the_problem_and_exits_2():
    path = str(CORPUS / "ambiguous_dates.csv")
    result = invoke("validate", path)
    assert result.exit_code == 2
    assert "  joined" in result.stdout and "signup_date" in result.stdout
    assert "Problem: " in result.stdout
    assert result.stderr.strip() == (
        f"Error: {path}: column 'joined': dates are ambiguous: %d-%m-%Y or %m-%d-%Y both fit "
        "every value (set [input] date_format in the config)")


def test_validate_with_a_config_that_misnames_a_column(tmp_path):
    cfg = tmp_path / "r.toml"
    cfg.write_text('[columns]\n"Annual Income" = "income"\n')
    path = mall_csv(tmp_path)
    result = invoke("validate", str(path), "--config", str(cfg))
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: {path}: configured column 'Annual Income' is not "
                                     "in the table (did you mean 'Annual Income (k$)'?)")


def test_validate_does_not_import_the_clustering_or_database_libraries(tmp_path):
    path = mall_csv(tmp_path)
    code = ("import sys; from click.testing import CliRunner; from reportgen.cli import main; "
            f"r = CliRunner().invoke(main, ['validate', {str(path)!r}]); "
            "print(r.exit_code, sorted(m for m in ('sklearn', 'sqlalchemy', 'openpyxl', "
            "'weasyprint', 'altair') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "0 []"


def test_init_writes_a_config_that_round_trips(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = mall_csv(tmp_path)
    result = invoke("init", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ("Wrote reportgen.toml: 5 of 5 columns have a role, "
                                     "3 model features")
    text = (tmp_path / "reportgen.toml").read_text()
    data = tomllib.loads(text)
    assert data["columns"] == {"CustomerID": "id", "Genre": "gender", "Age": "age",
                               "Annual Income (k$)": "income",
                               "Spending Score (1-100)": "score"}
    assert data["scale"] == {"Annual Income (k$)": 1000.0}
    assert data["segment"] == {"k_min": 3, "k_max": 10, "random_state": 42}
    assert data["report"]["company"] == "" and data["input"]["delimiter"] == ","
    assert "# as_of = ..." in text and "# k = ..." in text  # documented, left to inference
    cfg = load_config(tmp_path / "reportgen.toml")
    assert cfg.features.model == ["income", "age", "score"]
    inferred, pinned = check(path, Config()), check(path, cfg)
    assert inferred.schema.roles == pinned.schema.roles
    assert inferred.features.model == pinned.features.model
    assert pinned.problem is None
    # A run with the written config gives the same segments as a zero-config run.
    fast = "[segment]\nstability_runs = 0\n"
    (tmp_path / "fast.toml").write_text(fast)
    (tmp_path / "pinned.toml").write_text(text.replace("[segment]\n", fast))
    summaries = []
    for name, cfg_file in (("zero", "fast.toml"), ("pinned", "pinned.toml")):
        result = invoke("run", str(path), "--config", cfg_file, "--out", name, "--format",
                        "json", "-q")
        assert result.exit_code == 0, result.output
        run_dir = only_run(tmp_path / name)
        summaries.append(json.loads((run_dir / "summary.json").read_text()))
    assert [s["name"] for s in summaries[0]["segments"]] == \
        [s["name"] for s in summaries[1]["segments"]]


def test_init_refuses_to_overwrite_without_force(tmp_path):
    path = mall_csv(tmp_path)
    out = tmp_path / "reportgen.toml"
    out.write_text("# mine\n")
    result = invoke("init", str(path), "--out", str(out))
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: {out}: already exists (use --force to overwrite "
                                     "it, or --out another path)")
    assert out.read_text() == "# mine\n"
    assert invoke("init", str(path), "--out", str(out), "--force").exit_code == 0
    assert "[columns]" in out.read_text()


def test_init_on_ambiguous_dates_writes_the_config_and_says_what_to_fix(tmp_path):
    out = tmp_path / "reportgen.toml"
    source = str(CORPUS / "ambiguous_dates.csv")
    result = invoke("init", source, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Warning: " in result.stderr and "date_format" in result.stderr
    text = out.read_text()
    assert "# PROBLEM: " in text and "# date_format = ..." in text
    fixed = text.replace("# date_format = ...", 'date_format = "%d-%m-%Y"  #', 1)
    out.write_text(fixed)
    assert invoke("validate", source, "--config", str(out)).exit_code == 0


def test_init_quotes_awkward_column_names_as_valid_toml(tmp_path):
    frame = mall_table(40).rename(columns={
        "Genre": 'Gen"re \\ =cmd', "Age": "Âge ünicode", "CustomerID": "id\ttab"})
    frame["notes\u007f"] = "x"
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    text = config_text(check(path, Config()))
    data = tomllib.loads(text)
    # Names as reportgen reads them: runs of white space in a header become one space.
    assert set(data["columns"]) == {" ".join(c.split()) for c in pd.read_csv(path).columns}
    assert 'Gen"re \\ =cmd' in data["columns"] and "notes\u007f" in data["columns"]
    out = tmp_path / "r.toml"
    out.write_text(text)
    assert invoke("validate", str(path), "--config", str(out)).exit_code == 0


def test_init_for_a_database_pins_the_table_and_no_password(tmp_path, monkeypatch):
    import sqlite3

    db = tmp_path / "crm.db"
    with sqlite3.connect(db) as con:
        mall_table().to_sql("customers", con, index=False)
    out = tmp_path / "reportgen.toml"
    result = invoke("init", f"sqlite:///{db}", "--table", "customers", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert tomllib.loads(text)["input"]["table"] == "customers"
    assert f"#   reportgen validate sqlite:///{db} --config reportgen.toml" in text
    result = invoke("validate", f"sqlite:///{db}", "--config", str(out))
    assert result.exit_code == 0, result.output
