"""Each stage on small tables built in code, and on the bundled sample where it has the warts."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from reportgen.clean import CATEGORY_ORDER, CleaningDecisions, clean, infer_date_format
from reportgen.config import Config, SegmentConfig
from reportgen.errors import ConfigError, InputError, ModelError, SegmentationError
from reportgen.features import FeatureDecisions, build_features
from reportgen.load import load, sniff_delimiter
from reportgen.personas import load_vocabulary, name_personas
from reportgen.playbook import load_playbook, recommend
from reportgen.profile import profile
from reportgen.schema import CATEGORY_ROLES, infer_schema, normalise
from reportgen.segment import _knee, segment

from .tables import marketing_table, write_tsv


def stages(frame: pd.DataFrame, cfg: Config | None = None):
    cfg = cfg or Config()
    schema = infer_schema(frame, cfg.columns)
    cleaned = clean(frame, schema, cfg)
    ff = build_features(cleaned, schema, cfg)
    return cfg, schema, cleaned, ff


@pytest.fixture(scope="module")
def sample():
    loaded = load(None, Config().input)
    return loaded, *stages(loaded.frame)


# load ------------------------------------------------------------------------------------

def test_load_reads_the_bundled_sample_as_tab_separated(sample):
    loaded = sample[0]
    assert loaded.frame.shape == (2240, 29)
    assert loaded.delimiter == "\t"
    assert len(loaded.sha256) == 64


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_sniff_delimiter_finds_each_supported_delimiter(delimiter):
    text = "\n".join(delimiter.join(row) for row in
                     [["id", "income", "city"], ["1", "50000", "Lyon"], ["2", "42000", "Nice"]])
    assert sniff_delimiter(text) == delimiter


def test_load_refuses_an_empty_file_naming_it(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError, match="empty.csv: the file is empty"):
        load(path, Config().input)


def test_load_refuses_a_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load(tmp_path / "nope.csv", Config().input)


def test_load_reads_semicolons_crlf_and_a_bom(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffID;Income;Genre\r\n1;100;Male\r\n2;200;Female\r\n".encode())
    loaded = load(path, Config().input)
    assert list(loaded.frame.columns) == ["ID", "Income", "Genre"]
    assert loaded.frame["Income"].tolist() == [100, 200]


# schema ----------------------------------------------------------------------------------

def test_schema_gives_the_sample_columns_their_roles(sample):
    schema = sample[2]
    assert schema.roles["ID"] == "id"
    assert schema.roles["Year_Birth"] == "birth_year"
    assert schema.roles["Dt_Customer"] == "signup_date"
    assert schema.cols("spend") == ["MntWines", "MntFruits", "MntMeatProducts",
                                    "MntFishProducts", "MntSweetProducts", "MntGoldProds"]
    assert schema.tags["NumWebPurchases"] == "web"
    assert schema.roles["Z_CostContact"] == schema.roles["Z_Revenue"] == "ignore"
    assert len(schema.cols("campaign")) == 6


def test_normalise_splits_camel_case_and_punctuation():
    assert normalise("MntWines") == "mnt_wines"
    assert normalise("Annual Income (k$)") == "annual_income_k"


def test_config_role_override_wins_and_a_missing_column_is_named():
    frame = marketing_table(5)
    schema = infer_schema(frame, {"Recency": "ignore"})
    assert schema.roles["Recency"] == "ignore"
    with pytest.raises(ConfigError, match="'Incom' is not in the table.*did you mean 'Income'"):
        infer_schema(frame, {"Incom": "income"})
    with pytest.raises(ConfigError, match="unknown role 'incme'.*did you mean 'income'"):
        infer_schema(frame, {"Income": "incme"})


# clean -----------------------------------------------------------------------------------

def _step(cleaned, column, action):
    return [s for s in cleaned.log if s.column == column and s.action == action]


def test_clean_fixes_the_known_warts_of_the_sample_and_logs_each(sample):
    cleaned = sample[3]
    assert len(cleaned.frame) == 2240  # nothing dropped: every customer is reported back
    assert cleaned.as_of == dt.date(2014, 6, 29)  # latest enrolment, never "today"
    (years,) = _step(cleaned, "Year_Birth", "set missing")
    assert years.rows == 3 and "1893, 1899, 1900" in years.detail
    (wild,) = _step(cleaned, "Income", "set missing")
    assert wild.rows == 1 and "666,666" in wild.detail
    (income,) = _step(cleaned, "Income", "imputed")
    assert income.rows == 25  # 24 blanks + the 666,666
    recoded = " ".join(s.detail for s in _step(cleaned, "Marital_Status", "recoded"))
    assert "Alone → Single" in recoded and "Absurd, YOLO → Other" in recoded
    ignored = {s.column for s in cleaned.log if s.action == "ignored column"}
    assert ignored == {"Z_CostContact", "Z_Revenue"}
    assert cleaned.frame["Income"].notna().all()
    assert cleaned.frame["Dt_Customer"].dtype.kind == "M"
    assert cleaned.key == "ID"


def test_clean_excludes_duplicate_ids_with_the_reason():
    frame = marketing_table(5)
    frame.loc[3, "ID"] = frame.loc[2, "ID"]
    _, _, cleaned, _ = stages(frame)
    assert len(cleaned.frame) == len(frame) - 1
    assert cleaned.excluded.to_dict() == {3: f"duplicate ID {int(frame.loc[2, 'ID'])} "
                                              "(first occurrence kept)"}
    assert "np." not in cleaned.excluded[3]  # the id as a reader writes it
    (step,) = _step(cleaned, "ID", "excluded rows")
    assert step.rows == 1 and "row 5" in step.detail  # header is row 1, data row 3 is row 5


def test_date_format_is_decided_by_the_values():
    assert infer_date_format(pd.Series(["13-01-2014", "02-03-2014"]), "d", None) == "%d-%m-%Y"
    assert infer_date_format(pd.Series(["01-13-2014", "02-03-2014"]), "d", None) == "%m-%d-%Y"
    with pytest.raises(InputError, match="ambiguous"):
        infer_date_format(pd.Series(["01-02-2014", "02-03-2014"]), "d", None)


def test_as_of_from_the_config_drives_ages():
    frame = marketing_table(5)
    cfg = Config().with_overrides(report__as_of=dt.date(2020, 1, 1))
    _, _, cleaned, ff = stages(frame, cfg)
    born = frame["Year_Birth"].iloc[0]
    assert ff.frame["age"].iloc[0] == 2020 - born


def _training_tables():
    from .customer_tables import credit_card_table, mall_table, telecom_table, wholesale_table

    return {"sample": load(None, Config().input).frame, "marketing": marketing_table(),
            "credit_card": credit_card_table(), "wholesale": wholesale_table(),
            "telecom": telecom_table(), "mall": mall_table()}


@pytest.mark.parametrize("name", ["sample", "marketing", "credit_card", "wholesale", "telecom",
                                  "mall"])
def test_applying_the_learned_decisions_to_their_own_table_cleans_it_exactly_the_same(name):
    frame = _training_tables()[name].drop(columns=["kind"], errors="ignore")
    cfg, schema, learned, ff = stages(frame)
    # Through JSON, as the model file and a series' history keep them.
    text = json.dumps(learned.decisions.to_dict(), allow_nan=False)  # strict JSON
    decisions = CleaningDecisions.from_dict(json.loads(text))
    assert decisions == learned.decisions
    applied = clean(frame, schema, cfg, decisions=decisions)
    pd.testing.assert_frame_equal(applied.frame, learned.frame)
    pd.testing.assert_series_equal(applied.excluded, learned.excluded)
    assert applied.log == learned.log
    assert applied.decisions == learned.decisions and applied.as_of == learned.as_of
    featured = FeatureDecisions.from_dict(
        json.loads(json.dumps(ff.decisions().to_dict(), allow_nan=False)))
    again = build_features(applied, schema, cfg, decisions=featured)
    pd.testing.assert_frame_equal(again.frame, ff.frame)
    assert again.decisions() == ff.decisions()


def test_clean_with_decisions_learns_nothing_from_a_small_batch(sample):
    loaded, cfg, schema, learned, _ = sample
    d = learned.decisions
    batch = loaded.frame.head(5).copy()
    batch.loc[0, "Income"] = None
    batch.loc[1, "Income"] = 200_000  # under the sample's fence (267,836): a real income
    batch.loc[2, "Income"] = 300_000  # above it: a typing error, whatever this batch says
    batch.loc[3, "Year_Birth"] = 1890
    batch.loc[4, "Dt_Customer"] = None
    on_its_own = clean(batch, schema, cfg)
    applied = clean(batch, schema, cfg, decisions=d)
    assert on_its_own.decisions.numbers["Income"].fill != d.numbers["Income"].fill
    income = applied.frame["Income"]
    assert income.tolist()[:3] == [51373.0, 200_000.0, 51373.0] == \
        [d.numbers["Income"].fill, 200_000.0, d.numbers["Income"].fill]
    assert applied.frame.loc[3, "Year_Birth"] == d.numbers["Year_Birth"].fill == 1970.0
    assert applied.frame.loc[4, "Dt_Customer"] == pd.Timestamp("2013-07-09")
    assert applied.as_of == dt.date(2014, 6, 29)  # the run's, not the batch's latest date
    assert clean(batch, schema, cfg, decisions=d, as_of="data").as_of == \
        batch["Dt_Customer"].dropna().map(lambda v: dt.datetime.strptime(v, "%d-%m-%Y").date()
                                          ).max()


def test_the_decisions_say_how_the_key_was_found():
    frame = marketing_table(5).drop(columns=["ID"])
    _, schema, cleaned, _ = stages(frame)
    assert (cleaned.decisions.key, cleaned.decisions.key_from) == ("row", "row number")
    applied = clean(frame.head(3), schema, Config(), decisions=cleaned.decisions)
    assert applied.key == "row" and applied.frame["row"].tolist() == [2, 3, 4]


def test_decisions_for_other_columns_are_refused_naming_the_column():
    frame = marketing_table(5)
    _, schema, cleaned, _ = stages(frame.drop(columns=["Recency"]))
    with pytest.raises(ModelError, match="no number rule for column 'Recency'"):
        clean(frame, infer_schema(frame, {}), Config(), decisions=cleaned.decisions)


def test_applying_decisions_to_a_table_without_their_key_column_says_which():
    frame = marketing_table(5)
    _, schema, cleaned, _ = stages(frame)
    rest = frame.drop(columns=["ID"])
    with pytest.raises(ModelError, match="no customer key: the decisions were learned with 'ID'"):
        clean(rest, schema.for_columns(rest.columns), Config(), decisions=cleaned.decisions)

def test_feature_decisions_keep_the_level_features_on_a_batch_with_one_level():
    from .customer_tables import mall_table

    frame = mall_table()
    cfg, schema, cleaned, ff = stages(frame)
    assert ff.levels == {"Genre": ("Female",)}
    women = frame[frame["Genre"] == "Female"].head(3)
    batch = clean(women, schema, cfg, decisions=cleaned.decisions)
    own = build_features(batch, schema, cfg)
    assert "gender_female" not in own.frame  # one level: nothing to share on its own
    kept = build_features(batch, schema, cfg, decisions=ff.decisions())
    assert list(kept.frame.columns) == list(ff.frame.columns)
    assert kept.frame["gender_female"].tolist() == [1.0, 1.0, 1.0]
    assert kept.model == ff.model and kept.value == ff.value


def test_clean_logs_category_levels_in_the_order_of_the_schemas_category_roles():
    assert set(CATEGORY_ORDER) == set(CATEGORY_ROLES)


# features --------------------------------------------------------------------------------

def test_features_derive_spend_shares_channels_and_household(sample):
    ff = sample[4]
    raw = sample[0].frame
    first = raw.iloc[0]
    spend = first[[c for c in raw.columns if c.startswith("Mnt")]].sum()
    row = ff.frame.iloc[0]
    assert row["total_spend"] == spend
    assert row["share_wines"] == pytest.approx(first["MntWines"] / spend)
    purchases = first["NumWebPurchases"] + first["NumCatalogPurchases"] + \
        first["NumStorePurchases"]
    assert row["purchases_total"] == purchases
    assert row["share_web"] + row["share_catalog"] + row["share_store"] == pytest.approx(1)
    assert row["deal_share"] == pytest.approx(first["NumDealsPurchases"] / purchases)
    assert row["age"] == 2014 - first["Year_Birth"]
    assert row["children"] == first["Kidhome"] + first["Teenhome"]
    campaigns = [c for c in raw.columns if c.startswith("AcceptedCmp")] + ["Response"]
    assert row["campaigns_accepted"] == first[campaigns].sum()
    assert "recency" not in ff.model and "ID" not in ff.frame
    assert {"income", "total_spend", "children", "share_web"} <= set(ff.model)


def test_features_config_names_an_unknown_feature():
    cfg = Config().with_overrides()
    cfg = Config(features=type(cfg.features)(model=["income", "totl_spend"]))
    with pytest.raises(ConfigError, match="'totl_spend'.*did you mean 'total_spend'"):
        stages(marketing_table(5), cfg)


# segment ---------------------------------------------------------------------------------

def _same_partition(a, b) -> bool:
    return adjusted_rand_score(a, b) == 1.0


def test_kmeans_recovers_three_well_separated_kinds():
    frame = marketing_table(60)
    _, _, _, ff = stages(frame)
    seg = segment(ff, SegmentConfig())
    assert seg.k == 3
    assert _same_partition(seg.labels, frame["kind"])
    chosen = [r for r in seg.k_table if r.chosen]
    assert [r.k for r in chosen] == [3] and chosen[0].silhouette > 0.5


def test_same_seed_gives_identical_labels_and_other_seed_same_partition():
    frame = marketing_table(40)
    _, _, _, ff = stages(frame)
    a = segment(ff, SegmentConfig(random_state=7))
    b = segment(ff, SegmentConfig(random_state=7))
    c = segment(ff, SegmentConfig(random_state=123))
    assert np.array_equal(a.labels, b.labels)
    assert _same_partition(a.labels, c.labels)


def test_forced_k_is_used_and_said():
    _, _, _, ff = stages(marketing_table(30))
    seg = segment(ff, SegmentConfig(k=4))
    assert seg.k == 4 and seg.k_forced
    assert len(np.unique(seg.labels)) == 4
    assert "set by the user" in seg.k_reason


def test_segment_ids_follow_value_share():
    _, _, _, ff = stages(marketing_table(30))
    seg = segment(ff, SegmentConfig())
    value = pd.Series(ff.frame["total_spend"].to_numpy()).groupby(seg.labels).sum()
    assert list(value.index) == [1, 2, 3]
    assert value.is_monotonic_decreasing


def test_too_few_customers_for_k_is_a_clear_error():
    _, _, _, ff = stages(marketing_table(1))  # 3 customers
    with pytest.raises(SegmentationError, match="too few for 5 segments"):
        segment(ff, SegmentConfig(k=5))


def test_knee_is_the_point_furthest_below_the_chord():
    distances = _knee([100, 40, 30, 25, 22])
    assert int(np.argmax(distances)) == 1
    assert distances[0] == distances[-1] == 0


def test_sample_k_search_picks_an_actionable_k_and_explains_why(sample):
    _, cfg, _, _, ff = sample
    seg = segment(ff, cfg.segment)
    assert 4 <= seg.k <= 6
    table = {r.k: r for r in seg.k_table}
    assert set(table) == set(range(2, 11))
    assert not table[2].eligible  # k=2 is a value split, not a segmentation
    assert "knee" in seg.k_reason and "continuum" in seg.k_reason
    assert "Silhouette alone would pick k = 2" in seg.k_disagreement
    assert len(seg.points) <= 5000


# profile, personas, playbook ---------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_profiles(sample):
    _, cfg, _, _, ff = sample
    seg = segment(ff, cfg.segment)
    return ff, seg, profile(ff, seg)


def test_profile_sizes_and_shares_add_up(sample_profiles):
    ff, seg, profiles = sample_profiles
    assert sum(s.size for s in profiles.segments) == len(ff.frame)
    assert sum(s.share for s in profiles.segments) == pytest.approx(1)
    assert sum(s.value_share for s in profiles.segments) == pytest.approx(1)
    s1 = profiles.segments[0]
    members = ff.frame[seg.labels == 1]
    assert s1.means["income"] == pytest.approx(members["income"].mean())
    expected_z = (members["income"].mean() - ff.frame["income"].mean()) / \
        ff.frame["income"].std(ddof=0)
    assert s1.zscores["income"] == pytest.approx(expected_z)


def test_personas_have_distinct_names_and_traits_with_numbers(sample_profiles):
    ff, _, profiles = sample_profiles
    personas = name_personas(profiles, ff, "$", "spend", load_vocabulary())
    names = [p.name for p in personas]
    assert len(set(names)) == len(names)
    assert not any("segment" in n.lower() for n in names)
    for p in personas:
        assert 3 <= len(p.traits) <= 5
        for t in p.traits:
            assert " vs " in t.text and "overall" in t.text
            assert any(ch.isdigit() for ch in t.text)
    # The most valuable segment of the sample is affluent and spends big.
    top = personas[0]
    assert top.name.startswith("Affluent")
    assert {t.feature for t in top.traits} >= {"total_spend", "income"}


def test_kept_names_stay_and_new_ones_avoid_every_name_the_series_used(sample_profiles):
    ff, _, profiles = sample_profiles
    vocab = load_vocabulary()
    free = {p.segment_id: p.name for p in name_personas(profiles, ff, "$", "spend", vocab)}
    first, *others = sorted(free)
    fixed = {first: "Our oldest friends"}
    gone = free[others[0]]  # a name the previous run used for a segment now gone
    personas = name_personas(profiles, ff, "$", "spend", vocab, fixed=fixed, reserved=[gone])
    names = {p.segment_id: p.name for p in personas}
    assert names[first] == "Our oldest friends"
    assert gone not in names.values()
    assert len(set(names.values())) == len(names)
    assert all(names[i] == free[i] for i in others[1:] if free[i] != gone)


def test_persona_names_follow_the_profile_not_the_cluster_number():
    frame = marketing_table(40)
    _, _, _, ff = stages(frame)
    names_by_kind = []
    for seed in (1, 2):
        seg = segment(ff, SegmentConfig(random_state=seed))
        personas = name_personas(profile(ff, seg), ff, "$", "spend", load_vocabulary())
        by_id = {p.segment_id: p.name for p in personas}
        kind_of = pd.Series(frame["kind"].to_numpy()).groupby(seg.labels).first()
        names_by_kind.append({kind_of[i]: by_id[i] for i in by_id})
    assert names_by_kind[0] == names_by_kind[1]
    assert "families" in names_by_kind[0]["family"].lower()


def test_every_persona_gets_three_to_five_actions_each_with_evidence(sample_profiles):
    ff, _, profiles = sample_profiles
    rules = load_playbook()
    for sp in profiles.segments:
        actions = recommend(sp, rules, ff, profiles, "$", "spend")
        assert 3 <= len(actions) <= 5
        assert len({a.rule for a in actions}) == len(actions)
        for a in actions:
            assert a.title and a.channel and a.kpi
            assert any(ch.isdigit() for ch in a.evidence)


def _one_rule(tmp_path, condition: str) -> list:
    """A playbook of one grocery rule, "x", with this one condition."""
    path = tmp_path / "playbook.toml"
    path.write_text('[[rule]]\nid = "x"\ntitle = "T"\nchannel = "C"\nkpi = "K"\n'
                    f'business = ["grocery"]\nwhen = [{condition}]\n')
    return load_playbook(path)


def test_playbook_rule_fires_only_when_its_condition_holds(tmp_path, sample_profiles):
    ff, _, profiles = sample_profiles
    rules = _one_rule(tmp_path, '{ feature = "income", z_above = 0.5 }')
    fired = [sp.id for sp in profiles.segments if recommend(sp, rules, ff, profiles, "$", "s")]
    expected = [sp.id for sp in profiles.segments if sp.zscores["income"] > 0.5]
    assert fired == expected and fired
    (action,) = recommend(profiles.segments[fired[0] - 1], rules, ff, profiles, "$", "s")
    assert action.evidence.startswith("income $") and "overall" in action.evidence


def test_moved_down_evidence_names_where_the_movers_are_listed(tmp_path, sample_profiles):
    from reportgen.playbook import SegmentDelta, recommend_all

    ff, _, profiles = sample_profiles
    rules = _one_rule(tmp_path, '{ change = "moved_down", above = 0.02 }')
    sp = profiles.segments[0]
    deltas = {sp.id: SegmentDelta(share_delta=0.0, share=0.2, previous_share=0.2,
                                  previous_customers=400, moved_down=30, lost=0)}
    for where in ("movers.csv", "s3a://lake/customers.movers.parquet"):
        kwargs = {} if where == "movers.csv" else {"movers_file": where}
        actions = recommend_all([sp], rules, ff, profiles, "$", "s", None, deltas, **kwargs)
        (action,) = actions[sp.id]
        assert action.evidence == ("30 of last period's 400 customers (7.5%) moved to a less "
                                   f"valuable segment ({where})")


def test_playbook_refuses_a_malformed_rule(tmp_path):
    path = tmp_path / "playbook.toml"
    path.write_text('[[rule]]\nid = "x"\ntitle = "T"\nchannel = "C"\n'
                    'when = [{ feature = "income" }]\n')
    with pytest.raises(ConfigError, match="rule 'x' lacks kpi"):
        load_playbook(path)


def test_features_on_write_tsv_round_trip(tmp_path):
    frame = marketing_table(5)
    path = write_tsv(frame, tmp_path / "t.tsv")
    loaded = load(path, Config().input)
    assert loaded.delimiter == "\t" and len(loaded.frame) == len(frame)


def test_combinations_of_segments_are_not_quadratic_in_points():
    # the 2-D view is capped whatever the table size
    frame = pd.concat([marketing_table(40, seed=s) for s in range(3)], ignore_index=True)
    frame["ID"] = range(len(frame))
    _, _, _, ff = stages(frame)
    seg = segment(ff, SegmentConfig(k=3))
    assert len(seg.points) == len(frame)
    assert list(itertools.islice(seg.points.columns, 2)) == ["x", "y"]

