"""Reports that fit the business: its type, its value measure, its outcomes and its actions.

Each kind of table is built in code (tests/business_tables.py, tests/customer_tables.py) and
run through the library; the assertions read the Report and the rendered text."""

from __future__ import annotations

import html
import re
import tomllib
from pathlib import Path

import pandas as pd
import pytest

import reportgen
from reportgen import fmt
from reportgen.business import BUSINESS_TYPES, infer_type
from reportgen.config import Config, load_config
from reportgen.errors import ConfigError
from reportgen.features import OUTCOMES
from reportgen.playbook import load_playbook
from reportgen.report import Report
from reportgen.resources import templates_dir
from reportgen.schema import infer_schema

from . import business_tables, customer_tables, tables

FORMATS = ["html", "email"]


def _write(frame: pd.DataFrame, path: Path, sep: str = ",") -> Path:
    frame.drop(columns=["kind"], errors="ignore").to_csv(path, sep=sep, index=False)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, reportgen.RunResult]:
    """One report per kind of table (the bank table as the UCI export writes it: semicolons)."""
    root = tmp_path_factory.mktemp("business")
    sources = {
        "bank": _write(business_tables.bank_marketing_table(), root / "bank.csv", ";"),
        "telecom": _write(customer_tables.telecom_table(), root / "telecom.csv"),
        "shop": _write(business_tables.ecommerce_table(), root / "shop.csv"),
        "sample": None,
    }
    cfg = Config().with_overrides(report__formats=FORMATS)
    return {name: reportgen.run(source, cfg, out=root / "out" / name)
            for name, source in sources.items()}


def _texts(result: reportgen.RunResult) -> dict[str, str]:
    """Every text a reader sees: the HTML report without its markup and scripts, the email
    in both forms and summary.json."""
    out = {}
    for name in ("report.html", "email.html", "email.txt", "summary.json"):
        text = (result.run_dir / name).read_text(encoding="utf-8")
        if name.endswith(".html"):
            text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", text, flags=re.S)
            text = html.unescape(re.sub(r"<[^>]+>", " ", text))
        out[name] = re.sub(r"\s+", " ", text)
    return out


def _rules() -> dict[str, dict]:
    data = tomllib.loads((templates_dir() / "playbook.toml").read_text(encoding="utf-8"))
    return {r["id"]: r for r in data["rule"]}


# the business type and its value measure --------------------------------------------------

@pytest.mark.parametrize(("make", "kind"), [
    (business_tables.bank_marketing_table, "deposits"),
    (customer_tables.telecom_table, "telecom"),
    (business_tables.ecommerce_table, "shop"),
    (customer_tables.credit_card_table, "cards"),
    (customer_tables.wholesale_table, "wholesale"),
    (tables.marketing_table, "grocery"),
    (customer_tables.mall_table, "generic"),
])
def test_business_type_is_inferred_from_the_roles_of_the_columns(make, kind) -> None:
    frame = make().drop(columns=["kind"], errors="ignore")
    assert infer_type(infer_schema(frame, {}))[0] == kind


def test_report_names_the_business_and_the_value_measure(runs) -> None:
    expected = {"bank": ("deposits", ""), "telecom": ("telecom", "total charges"),
                "shop": ("shop", "spend"), "sample": ("grocery", "spend")}
    for name, (kind, value) in expected.items():
        report = runs[name].report
        assert (report.business, report.value_label) == (kind, value), name
        label = BUSINESS_TYPES[kind]
        assert report.method.business.startswith(f"{label[0].upper()}{label[1:]} (inferred")
        html = _texts(runs[name])["report.html"]
        assert f"Business type {report.method.business}" in html
        if value:
            assert f"value is measured by {value}" in report.method.business
            assert f"Total {value}" in html


def test_business_setting_overrides_the_inferred_type(tmp_path) -> None:
    source = _write(business_tables.ecommerce_table(n=300), tmp_path / "shop.csv")
    cfg = Config().with_overrides(report__formats=["json"], report__business="generic")
    report = reportgen.run(source, cfg, out=tmp_path / "out").report
    assert report.business == "generic"
    assert "(set in the config)" in report.method.business
    fired = {a.rule for s in report.segments for a in s.actions}
    rules = _rules()
    assert all("generic" in rules[r]["business"] for r in fired)


def test_an_unknown_business_setting_names_the_nearest_type(tmp_path) -> None:
    path = tmp_path / "rg.toml"
    path.write_text('[report]\nbusiness = "telco"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "'report.business' is 'telco'; did you mean 'telecom'?" in str(exc.value)


def test_a_table_without_a_value_measure_shows_no_value_anywhere(runs) -> None:
    result = runs["bank"]
    report = result.report
    assert report.headline.total_value is None and report.headline.value_per_customer is None
    assert all(s.value_share is None and s.value_per_customer is None
               for s in report.segments)
    assert "size_value" not in report.charts  # a chart of customers against customers
    assert any("no column that measures value" in line for line in report.attention)
    for name, text in _texts(result).items():
        lowered = text.lower()
        for wrong in ("per customer 1", "customers per customer", "of customers bringing",
                      "% of customers % of customers", "of value from"):
            assert wrong not in lowered, (name, wrong)
    for s in report.segments:
        assert s.story.startswith(f"{fmt.pct(s.share)} of customers: ")
        assert all("its share" not in a.evidence for a in s.actions)


# outcomes ---------------------------------------------------------------------------------

def test_churn_is_profiled_never_modelled_and_its_segment_comes_first(runs) -> None:
    report = runs["telecom"].report
    assert "churned" not in report.method.features
    churned = next(f for f in report.features if f.name == "churned")
    assert churned.group == "outcome" and not churned.in_model
    worst = max(report.segments, key=lambda s: s.means["churned"])
    overall = churned.overall_mean
    assert worst.means["churned"] >= 1.5 * overall
    everyone = sum(s.means["churned"] * s.size for s in report.segments)
    held = worst.means["churned"] * worst.size / everyone
    first = report.attention[0]
    assert first.startswith(f"{worst.name}: {fmt.pct(worst.means['churned'])} churned, "
                            f"against {fmt.pct(overall)} of all customers")
    assert f"they are {fmt.pct(held)} of all churners" in first
    assert worst.actions[0].rule == "churn-rescue"  # retention first
    assert "retention" in worst.actions[0].title
    assert worst.traits[0].feature == "churned"
    assert worst.story.startswith(f"{fmt.pct(worst.share)} of customers bringing "
                                  f"{fmt.pct(worst.value_share)} of total charges: churned ")
    assert ("churn-rescue", worst.id) in {(t.action.rule, t.segment_id)
                                          for t in report.top_actions}


def test_bank_marketing_uses_its_loans_and_profiles_the_deposit_answer(runs) -> None:
    report = runs["bank"].report
    assert "loans_held" in report.method.features
    assert not {"subscribed", "defaulted"} & set(report.method.features)
    groups = {f.name: f.group for f in report.features}
    assert groups["subscribed"] == groups["defaulted"] == "outcome"
    assert {"loan_housing", "loan_loan"} <= set(groups)
    best = max(report.segments, key=lambda s: s.means["subscribed"])
    assert report.attention[0].startswith(f"{best.name}: ")
    assert "of all subscribers" in report.attention[0]
    assert best.actions[0].rule == "deposit-look-alikes"
    assert best.traits[0].feature == "subscribed"
    assert ("deposit-look-alikes", best.id) in {(t.action.rule, t.segment_id)
                                                for t in report.top_actions}


def test_an_outcome_named_as_a_model_feature_is_refused(tmp_path) -> None:
    source = _write(customer_tables.telecom_table(n=200), tmp_path / "t.csv")
    cfg = Config().with_overrides(report__formats=["json"],
                                  features__model=["monthly_spend", "churned"])
    with pytest.raises(ConfigError, match="'churned', an outcome"):
        reportgen.run(source, cfg, out=tmp_path / "out")


# the playbook by business -----------------------------------------------------------------

def test_every_playbook_rule_states_the_business_types_it_fits() -> None:
    for rule_id, rule in _rules().items():
        kinds = rule.get("business")
        assert kinds, f"rule {rule_id} states no business type"
        assert set(kinds) <= set(BUSINESS_TYPES), rule_id
    rules = _rules()
    # the shop actions the issue found in bank and telecom reports
    assert set(rules["vip-retention"]["business"]).isdisjoint({"cards", "deposits", "telecom"})
    assert set(rules["grow-wallet"]["business"]) <= {"shop", "grocery"}
    assert set(rules["frequent-rewards"]["business"]) <= {"shop", "grocery"}
    assert rules["balance-nudge"]["business"] == ["cards"]


def test_a_rule_without_business_types_is_refused(tmp_path) -> None:
    path = tmp_path / "playbook.toml"
    path.write_text('[[rule]]\nid = "x"\ntitle = "t"\nchannel = "c"\nkpi = "k"\n'
                    'when = [{ feature = "age", z_above = 0.5 }]\n')
    with pytest.raises(ConfigError, match="rule 'x' lacks business"):
        load_playbook(path)
    path.write_text(path.read_text() + 'business = ["telcom"]\n')
    with pytest.raises(ConfigError) as exc:
        load_playbook(path)
    assert "unknown business type 'telcom'" in str(exc.value)
    assert "did you mean 'telecom'?" in str(exc.value)


def test_fired_actions_fit_the_business_and_each_goes_to_one_segment(runs) -> None:
    rules = {r.id: r for r in load_playbook()}
    for name, result in runs.items():
        report = result.report
        owners: dict[str, list[int]] = {}
        for s in report.segments:
            assert s.actions, (name, s.name)
            for a in s.actions:
                assert report.business in rules[a.rule].business, (name, a.rule)
                owners.setdefault(a.rule, []).append(s.id)
        shared = {r: ids for r, ids in owners.items() if len(ids) > 1 and not rules[r].first}
        assert not shared, (name, shared)
        titles = " ".join(a.title for s in report.segments for a in s.actions)
        if report.business in ("deposits", "telecom"):
            for shop_words in ("early access to new ranges", "in-store", "items they rebuy",
                               "pay down"):
                assert shop_words not in titles, (name, shop_words)
        surveys = sum(a.rule == "ask-them" for s in report.segments for a in s.actions)
        assert surveys <= 1, name


# consistency -----------------------------------------------------------------------------

def test_names_are_unique_and_no_ratio_rounds_to_zero(runs) -> None:
    for name, result in runs.items():
        names = [s.name for s in result.report.segments]
        assert len({n.lower() for n in names}) == len(names), (name, names)
        assert not any(re.search(r"\(\d+\)$", n) for n in names), names
        for text in _texts(result).values():
            assert "0.0×" not in text, name


def test_the_largest_value_segment_is_named_for_its_value(runs) -> None:
    for name in ("sample", "telecom"):
        report = runs[name].report
        top = max(report.segments, key=lambda s: s.value_share or 0.0)
        assert top.value_share is not None and top.value_share / top.share >= 1.5
        words = ("big spenders", "high-spending", "high-value", "big-basket")
        assert any(w in top.name.lower() for w in words), (name, top.name)
        for s in report.segments:
            if s.value_share is not None and s.value_share < s.share:
                assert not any(w in s.name.lower() for w in words), (name, s.name)


def test_the_overall_basis_is_stated_beside_the_figures(runs) -> None:
    for result in runs.values():
        basis = result.report.overall_basis
        assert f"all {result.report.headline.customers:,} segmented customers" in basis
        texts = _texts(result)
        assert basis in texts["report.html"] and basis in texts["email.txt"]


def test_ratio_never_prints_zero_times() -> None:
    assert fmt.ratio(2.345) == "2.3×"
    assert fmt.ratio(0.1) == "0.1×"
    assert fmt.ratio(0.04) == "under 0.1×"


def test_top_actions_prefer_firm_segments_and_flag_a_tentative_one() -> None:
    from dataclasses import replace

    from reportgen.assemble import top_actions

    from .factories import make_report

    report: Report = make_report()
    segments = [replace(s, tentative=(i == 0)) for i, s in enumerate(report.segments)]
    picked = top_actions(segments)
    assert segments[0].id not in {t.segment_id for t in picked}
    assert not any(t.tentative for t in picked)
    only_tentative = [replace(s, tentative=True) for s in report.segments]
    assert all(t.tentative for t in top_actions(only_tentative))


def test_outcome_words_cover_every_named_outcome() -> None:
    from reportgen.assemble import _OUTCOME_WORDS

    assert set(OUTCOMES) == set(_OUTCOME_WORDS)


def test_plain_text_email_keeps_one_line_per_figure(runs) -> None:
    for name in ("sample", "bank"):
        report = runs[name].report
        lines = (runs[name].run_dir / "email.txt").read_text(encoding="utf-8").splitlines()
        for s in report.segments:
            head = f"   {fmt.pct(s.share)} of customers ({s.size:,})"
            (line,) = [x for x in lines if x.startswith(head)]
            assert line.endswith("per customer") if report.value_label else line == head
        whys = [i for i, x in enumerate(lines) if x.startswith("   Why: ")]
        assert len(whys) == len(report.top_actions)
        for i in whys[:-1]:
            assert lines[i + 1] in ("", "   Tentative segment: test this on a small group first.")
        assert report.overall_basis in lines


def test_persona_words_by_business_replace_the_general_ones() -> None:
    from reportgen.personas import for_business, load_vocabulary

    vocab = load_vocabulary()

    def high(business: str | None, feature: str) -> dict[str, str]:
        (words,) = [w for w in for_business(vocab, business) if w.feature == feature]
        return words.high

    assert high("grocery", "total_spend")["adjective"] == "High-spending"
    assert high("telecom", "total_spend") == {"adjective": "High-value"}
    assert high("wholesale", "total_spend")["noun"] == "key accounts"
    assert high("deposits", "age")["noun"] == "older savers"
    assert high("shop", "age")["noun"] == "seniors"
