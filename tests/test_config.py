"""The config file: defaults, types, unknown keys, overrides."""

from __future__ import annotations

import datetime as dt

import pytest

from reportgen.config import Config, describe, load_config
from reportgen.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "reportgen.toml"
    path.write_text(text)
    return path


def test_no_file_gives_the_defaults():
    cfg = load_config(None)
    assert cfg.segment.random_state == 42
    assert cfg.segment.k is None and (cfg.segment.k_min, cfg.segment.k_max) == (3, 10)
    assert cfg.report.formats == ["html", "pdf", "email"]


def test_a_full_file_is_read_into_typed_settings(tmp_path):
    cfg = load_config(write(tmp_path, """
[segment]
k = 4
random_state = 7
min_segment_share = 0.1
[report]
title = "Monthly segments"
as_of = 2014-06-30
formats = ["pdf"]
[columns]
"Annual Income (k$)" = "income"
[features]
model = ["income", "total_spend"]
"""))
    assert cfg.segment.k == 4 and cfg.segment.random_state == 7
    assert cfg.segment.min_segment_share == 0.1
    assert cfg.report.as_of == dt.date(2014, 6, 30)
    assert cfg.columns == {"Annual Income (k$)": "income"}
    assert cfg.features.model == ["income", "total_spend"]


def test_unknown_key_is_named_with_the_nearest_valid_one(tmp_path):
    path = write(tmp_path, "[segment]\nrandom_stat = 1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "unknown key 'segment.random_stat'; did you mean 'random_state'?" in str(exc.value)
    assert str(path) in str(exc.value)


def test_unknown_section_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'segmnt'; did you mean 'segment'"):
        load_config(write(tmp_path, "[segmnt]\nk = 3\n"))


@pytest.mark.parametrize("text, message", [
    ('[segment]\nk = "four"\n', "'segment.k' must be an int, got 'four'"),
    ("[segment]\nmin_segment_share = true\n", "'segment.min_segment_share' must be a float"),
    ('[report]\nas_of = "yesterday"\n', "'report.as_of' must be a date like 2014-06-30"),
    ('[report]\nformats = "pdf"\n', "'report.formats' must be a list of strings"),
    ("[segment]\nk_min = 6\nk_max = 4\n", "'segment.k_max' (4) must not be below"),
    ('[report]\nformats = ["pfd"]\n', "unknown format 'pfd'; did you mean 'pdf'?"),
    ("[segment\n", "not valid TOML"),
    ('[report]\nprimary_color = "navy"\n', "'report.primary_color' must be a hex colour"),
    ('[report]\nprimary_color = "#12345"\n', "'report.primary_color' must be a hex colour"),
    ('[report]\nlogo = "missing.png"\n', "'report.logo' file not found"),
    ('[report]\nlogo = "logo.gif"\n', "'report.logo' must be a PNG, JPEG or SVG file"),
    ('[report]\ntemplate_dir = "nowhere"\n', "'report.template_dir' is not a folder"),
])
def test_wrong_values_are_refused_with_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_branding_files_are_found_next_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "brand").mkdir()
    (tmp_path / "brand" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "brand" / "templates").mkdir()
    monkeypatch.chdir("/")
    cfg = load_config(write(tmp_path, '[report]\nlogo = "brand/logo.svg"\n'
                                      'template_dir = "brand/templates"\n'
                                      'primary_color = "#0B5394"\n'))
    assert cfg.report.logo == str(tmp_path / "brand" / "logo.svg")
    assert cfg.report.template_dir == str(tmp_path / "brand" / "templates")
    assert cfg.report.primary_color == "#0B5394"


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_overrides_apply_and_are_validated():
    cfg = Config().with_overrides(segment__k=5, segment__random_state=None)
    assert cfg.segment.k == 5 and cfg.segment.random_state == 42
    with pytest.raises(ConfigError, match="'segment.k' must be between 2 and 30, got 1"):
        Config().with_overrides(segment__k=1)


def test_transactions_settings_at_their_defaults_leave_the_run_id_as_it_was():
    import hashlib
    import json

    from reportgen.pipeline import run_id_for

    before = Config().to_dict()
    # the config as it was before order tables, series, business types and engines existed
    for section in ("transactions", "series", "history", "email", "engine"):
        before.pop(section)
    before["input"].pop("source")
    before["report"].pop("business")
    digest = hashlib.sha256(("abc" + json.dumps(before, sort_keys=True)).encode()).hexdigest()
    assert run_id_for("2014-06", "abc", Config()) == f"2014-06-{digest[:8]}"
    pinned = Config().with_overrides(transactions__customer="Customer ID")
    assert pinned.run_key()["transactions"] == {"customer": "Customer ID"}
    assert run_id_for("2014-06", "abc", pinned) != run_id_for("2014-06", "abc", Config())


def test_business_setting_left_at_auto_keeps_the_run_id_and_a_type_changes_it():
    from reportgen.pipeline import run_id_for

    assert "business" not in Config().run_key()["report"]
    typed = Config().with_overrides(report__business="telecom")
    assert typed.run_key()["report"]["business"] == "telecom"
    assert run_id_for("2014-06", "abc", typed) != run_id_for("2014-06", "abc", Config())


def test_every_setting_has_help():
    rows = describe()
    defaults = {key: default for key, default, _ in rows}
    assert defaults["segment.random_state"] == "42"
    assert defaults["segment.k"] == "(not set)"
    assert defaults["report.formats"] == '["html", "pdf", "email"]'
    assert defaults["report.title"] == '"Customer segmentation"'
    assert all(help_text for _, _, help_text in rows)


def test_readme_config_table_and_cli_help_are_generated_from_the_code():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "scripts/docs.py", "--check"], cwd=root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
