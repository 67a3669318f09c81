"""compare.py: customers followed by key, the migration matrix, MONIC transitions of a refit,
drift, the trend and the words a director reads. Tables are built in code with known answers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans

from reportgen import compare as c
from reportgen.scaling import fit_scaling

# Three months of 100 customers in three known groups (values are 10 × the key, so every sum
# can be checked by hand).
#   June:  1-40 in 1, 41-70 in 2, 71-100 in 3.
#   July:  91-100 gone (lost, all from 3); 101-120 new (101-105 -> 1, 106-120 -> 3);
#          1-5 moved 1 -> 2, 41-43 moved 2 -> 3.
#   August: 1-10 gone (1-5 from 2, 6-10 from 1); 121-130 new -> 2; 106-110 moved 3 -> 1.


def _month(segments: dict[int, int]) -> c.Assignments:
    keys = np.array(sorted(segments))
    return c.Assignments(keys=pd.Index(keys), segments=np.array([segments[k] for k in keys]),
                         values=keys * 10.0)


JUNE = {k: 1 if k <= 40 else 2 if k <= 70 else 3 for k in range(1, 101)}
JULY = {k: v for k, v in JUNE.items() if k <= 90}
JULY.update({k: 1 for k in range(101, 106)})
JULY.update({k: 3 for k in range(106, 121)})
JULY.update({k: 2 for k in range(1, 6)})
JULY.update({k: 3 for k in range(41, 44)})
AUGUST = {k: v for k, v in JULY.items() if k > 10}
AUGUST.update({k: 2 for k in range(121, 131)})
AUGUST.update({k: 1 for k in range(106, 111)})


def _cells(f: c.Flows) -> dict[tuple[object, object], tuple[int, float]]:
    return {(x.source, x.target): (x.customers, x.value) for x in f.migration}


def test_new_lost_and_returning_customers_and_the_migration_matrix_over_three_months():
    june, july, august = _month(JUNE), _month(JULY), _month(AUGUST)
    first = c.flows(june, july)
    assert (first.new_customers, first.lost_customers, first.returning_customers) == (20, 10, 90)
    ten = lambda keys: 10.0 * sum(keys)  # noqa: E731
    assert _cells(first) == {
        (1, 1): (35, ten(range(6, 41))),
        (1, 2): (5, ten(range(1, 6))),
        (2, 2): (27, ten(range(44, 71))),
        (2, 3): (3, ten(range(41, 44))),
        (3, 3): (20, ten(range(71, 91))),
        (3, "lost"): (10, ten(range(91, 101))),  # the value they had last month
        ("new", 1): (5, ten(range(101, 106))),
        ("new", 3): (15, ten(range(106, 121))),
    }
    # Rows add up to last month's segments, columns to this month's.
    assert first.customers[1:].sum(axis=1).tolist() == [40, 30, 30]
    assert first.customers[:, :-1].sum(axis=0).tolist() == [40, 32, 38]
    second = c.flows(july, august)
    assert (second.new_customers, second.lost_customers, second.returning_customers) == \
        (10, 10, 100)
    cells = _cells(second)
    assert cells[(1, "lost")] == (5, ten(range(6, 11)))
    assert cells[(2, "lost")] == (5, ten(range(1, 6)))
    assert cells[(3, 1)] == (5, ten(range(106, 111)))
    assert cells[("new", 2)] == (10, ten(range(121, 131)))
    assert cells[(1, 1)] == (35 - 5 + 5, ten(range(11, 41)) + ten(range(101, 106)))
    # Per current customer: where it was last month (-1 = new).
    prev = pd.Series(second.previous_segment, index=august.keys)
    assert prev[106] == 3 and prev[121] == -1 and prev[44] == 2 and prev[41] == 3


def test_migration_lists_segments_in_id_order_then_new_and_serialises_with_from_and_to():
    f = c.flows(_month(JUNE), _month(JULY))
    order = [(x.source, x.target) for x in f.migration]
    assert order == [(1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (3, "lost"), ("new", 1),
                     ("new", 3)]
    assert f.migration[5].to_dict() == {"from": 3, "to": "lost", "customers": 10,
                                        "value": 9550.0}


def test_a_segment_with_no_customers_still_has_its_row_and_column():
    f = c.flows(_month(JUNE), _month(JULY), previous_ids=[1, 2, 3, 4], current_ids=[1, 2, 3, 7])
    assert f.customers.shape == (5, 5)
    assert f.customers[4].sum() == 0 and f.customers[:, 3].sum() == 0
    with pytest.raises(ValueError, match=r"\[3\] are not among \[1, 2\]"):
        c.flows(_month(JUNE), _month(JULY), current_ids=[1, 2])


def test_keys_read_as_numbers_one_month_and_text_the_next_are_still_followed():
    june = _month(JUNE)
    july = _month(JULY)
    as_text = c.Assignments(keys=july.keys.astype(str).astype("string"),
                            segments=july.segments, values=july.values)
    assert c.flows(june, as_text).returning_customers == 90


def test_duplicate_keys_are_refused():
    dup = c.Assignments(keys=pd.Index([1, 1, 2]), segments=np.array([1, 1, 2]),
                        values=np.ones(3))
    with pytest.raises(ValueError, match="unique"):
        c.flows(dup, _month(JUNE))


# segment identity: MONIC on constructed refits ---------------------------------------------

def _blob(rng: np.random.Generator, center: tuple[float, float], n: int) -> np.ndarray:
    return rng.normal(center, 0.3, size=(n, 2))


def _refit_scenario():
    """June: four groups A-D. July: A splits in two, B and C merge, D's customers are gone and
    a new group E of new customers appears. Each month is clustered by k-means, which numbers
    its clusters as it likes."""
    rng = np.random.default_rng(7)
    n = 120
    centers = {"A": (0, 0), "B": (8, 0), "C": (8, 4), "D": (0, 8)}
    x1 = np.vstack([_blob(rng, centers[g], n) for g in "ABCD"])
    group1 = np.repeat(list("ABCD"), n)
    keys1 = np.arange(4 * n)
    rows, keys2 = [], []
    for key, g in zip(keys1, group1, strict=True):
        if g == "A":
            rows.append(rng.normal((-1.5, 0) if key % 2 else (1.5, 0), 0.3))
        elif g in "BC":
            rows.append(rng.normal((8, 2), 0.3))
        else:
            continue  # D: lost
        keys2.append(key)
    for j in range(n):
        rows.append(rng.normal((-8, -8), 0.3))
        keys2.append(10_000 + j)
    x2 = np.array(rows)
    km1 = KMeans(4, n_init=4, random_state=0).fit(x1)
    km2 = KMeans(4, n_init=4, random_state=0).fit(x2)
    june = c.Assignments(pd.Index(keys1), km1.labels_ + 1, np.ones(len(keys1)))
    july = c.Assignments(pd.Index(np.array(keys2)), km2.labels_ + 1, np.ones(len(keys2)))
    names = {}
    for label in range(1, 5):
        members = group1[km1.labels_ + 1 == label]
        names[label] = pd.Series(members).mode()[0]
    previous = [c.SegmentRef(id=i, name=names[i], color=f"#00000{i}") for i in range(1, 5)]
    current = [c.SegmentRef(id=i) for i in range(1, 5)]
    return june, july, previous, current, km1.cluster_centers_, km2.cluster_centers_, names


def test_refit_names_the_split_the_merge_the_disappearance_and_the_emergence():
    june, july, previous, current, c1, c2, names = _refit_scenario()
    f = c.flows(june, july)
    m = c.match_segments(previous, current, f.overlap, next_id=5, previous_centroids=c1,
                         current_centroids=c2)
    fates = {names[p.id]: p.transition for p in m.previous}
    assert fates == {"A": "split", "B": "merged", "C": "merged", "D": "disappeared"}
    kinds = sorted((i.transition, i.kept.name if i.kept else "") for i in m.current)
    # A's larger part keeps A; the other part is new; B+C keep one of their names; E is new.
    assert [k for k, _ in kinds] == ["emerged", "merged", "split", "split"]
    kept = [i.kept.name for i in m.current if i.kept is not None]
    assert "A" in kept and len(set(kept) & {"B", "C"}) == 1 and "D" not in kept
    merged = next(i for i in m.current if i.transition == "merged")
    assert {names[s] for s in merged.sources} == {"B", "C"}
    # New ids start at next_id and never reuse an old one; kept ones keep theirs.
    assert sorted(i.id for i in m.current if i.kept is None) == [5, 6]
    assert all(i.id == i.kept.id for i in m.current if i.kept is not None)
    assert sorted(m.unnamed) == sorted(i.label for i in m.current if i.kept is None)
    # Exactly one current segment keeps each identity: no two share a name.
    assert len(kept) == len(set(kept))


def test_a_refit_of_unchanged_customers_survives_whatever_the_cluster_numbers():
    rng = np.random.default_rng(3)
    x = np.vstack([_blob(rng, (0, 0), 80), _blob(rng, (5, 0), 60), _blob(rng, (0, 5), 40)])
    keys = pd.Index(np.arange(len(x)))
    first = KMeans(3, n_init=4, random_state=0).fit_predict(x) + 1
    permuted = np.array([0, 3, 1, 2])[first]  # the refit numbers the same clusters otherwise
    prev = [c.SegmentRef(id=i, name=f"S{i}", color="#111111") for i in (1, 2, 3)]
    cur = [c.SegmentRef(id=i) for i in (1, 2, 3)]
    f = c.flows(c.Assignments(keys, first, np.ones(len(x))),
                c.Assignments(keys, permuted, np.ones(len(x))))
    m = c.match_segments(prev, cur, f.overlap, next_id=4)
    assert all(i.transition == "survived" and i.by == "customers" for i in m.current)
    assert {i.label: i.id for i in m.current} == {int(permuted[j]): int(first[j])
                                                  for j in range(len(x))}
    assert m.unnamed == ()


def test_a_sixty_forty_split_is_a_split_not_a_survival_and_an_emergence():
    keys = pd.Index(np.arange(200))
    before = np.ones(200, dtype=int)
    after = np.where(np.arange(200) < 120, 1, 2)
    f = c.flows(c.Assignments(keys, before, np.ones(200)),
                c.Assignments(keys, after, np.ones(200)))
    m = c.match_segments([c.SegmentRef(1, "Big")], [c.SegmentRef(1), c.SegmentRef(2)],
                         f.overlap, next_id=2)
    assert m.fate(1).transition == "split" and m.fate(1).into == (1, 2)
    assert m.of(1).kept is not None and m.of(1).kept.name == "Big"
    assert m.of(2).transition == "split" and m.of(2).kept is None and m.of(2).sources == (1,)


def test_without_customer_keys_segments_are_matched_by_their_centres():
    prev = [c.SegmentRef(1, "Near origin"), c.SegmentRef(2, "Far right"),
            c.SegmentRef(3, "Up top")]
    prev_c = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    cur_c = np.array([[5.2, 0.1], [9.0, 9.0], [0.1, -0.2]])  # 1->2, new far away, 3->1
    m = c.match_segments(prev, [c.SegmentRef(i) for i in (1, 2, 3)], None, next_id=4,
                         previous_centroids=prev_c, current_centroids=cur_c)
    assert m.of(1).kept.name == "Far right" and m.of(1).by == "centroid"
    assert m.of(3).kept.name == "Near origin"
    assert m.of(2).transition == "emerged" and m.of(2).id == 4
    assert m.fate(3).transition == "disappeared"  # "Up top" is nowhere near any centre


def test_keep_policy_identity_and_an_emptied_segment_disappears():
    prev = [c.SegmentRef(i, f"S{i}") for i in (1, 2, 3)]
    m = c.keep_matching(prev, {1: 10, 2: 0, 3: 4})
    assert [(i.id, i.transition) for i in m.current] == [(1, "survived"), (3, "survived")]
    assert m.fate(2).transition == "disappeared"


def test_keep_policy_a_segment_empty_last_period_with_customers_again_emerged():
    """A kept model's segment nobody was in last period is not in that run's record; when
    customers land in it again it emerged, under its own id (the model's), with the name the
    model knows for it, or none (named afresh) when the model knows none."""
    prev = [c.SegmentRef(i, f"S{i}", "#00000" + str(i)) for i in (2, 4)]
    m = c.keep_matching(prev, {2: 10, 3: 1, 4: 5}, {2: "S2", 3: "Small-basket newcomers"})
    assert [(i.id, i.transition) for i in m.current] == \
        [(2, "survived"), (3, "emerged"), (4, "survived")]
    assert m.of(3).kept is not None and m.of(3).kept.name == "Small-basket newcomers"
    assert [f.transition for f in m.previous] == ["survived", "survived"]
    assert c.keep_matching(prev, {2: 10, 3: 1}).of(3).kept is None
    # the flows of such a month count the customer in segment 3 as new to it
    june = c.Assignments(keys=pd.Index(["a", "b"]), segments=np.array([2, 4]),
                         values=np.array([1.0, 2.0]))
    july = c.Assignments(keys=pd.Index(["a", "b", "z"]), segments=np.array([2, 4, 3]),
                         values=np.array([1.0, 2.0, 3.0]))
    f = c.flows(june, july, previous_ids=[2, 4],
                current_ids=sorted(i.id for i in m.current))
    assert f.current_ids == (2, 3, 4) and f.customers[0].tolist() == [0, 1, 0, 0]


def test_colours_kept_and_a_new_segment_gets_one_nobody_uses():
    prev = [c.SegmentRef(1, "A", "#E69F00"), c.SegmentRef(2, "B", "#56B4E9")]
    m = c.Matching(current=(
        c.Identity(1, 1, "survived", prev[0]), c.Identity(2, 3, "emerged", None)),
        previous=(c.Fate(1, "survived", (1,)), c.Fate(2, "disappeared")))
    colors = c.colors_for(m, ["#E69F00", "#56B4E9", "#009E73"], prev)
    assert colors == {1: "#E69F00", 2: "#009E73"}  # not B's colour, though B is gone


def test_centres_compared_in_one_space_after_the_scaling_changed():
    rng = np.random.default_rng(0)
    june = np.column_stack([rng.lognormal(3, 1, 500), rng.normal(50, 10, 500)])
    july = june * np.array([1.5, 1.0]) + np.array([0.0, 5.0])
    units = {"spend": "money", "age": "years"}
    s1 = fit_scaling(june, ["spend", "age"], units, "auto", {})
    s2 = fit_scaling(july, ["spend", "age"], units, "auto", {})
    assert s1.methods == ["log1p", "standard"]
    point = np.array([[100.0, 40.0]])
    moved, same, common = c.common_space(s1.transform(point), s1, s2.transform(point), s2)
    assert common == ["spend", "age"]
    np.testing.assert_allclose(moved, same, atol=1e-9)  # one customer, one place
    # A model feature the new run dropped is left out of the comparison.
    s3 = fit_scaling(july[:, 1:], ["age"], units, "auto", {})
    moved, same, common = c.common_space(s1.transform(point), s1, s3.transform(point[:, 1:]),
                                         s3)
    assert common == ["age"] and moved.shape == (1, 1)
    np.testing.assert_allclose(moved, same, atol=1e-9)


# drift -------------------------------------------------------------------------------------

def test_psi_by_hand():
    bins = c.Bins("x", edges=(0.5,), shares=(0.5, 0.5))
    values = np.array([0.0] * 8 + [1.0] * 2)
    expected = 0.3 * np.log(0.8 / 0.5) + (-0.3) * np.log(0.2 / 0.5)
    assert c.psi(bins, values) == pytest.approx(expected)
    assert c.psi_level(0.09) == "stable" and c.psi_level(0.1) == "moderate"
    assert c.psi_level(0.25) == "significant"


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (20_000, 2))
    bins = c.reference_bins(x, ["a", "b"], seed=0)
    assert len(bins[0].edges) == 9 and sum(bins[0].shares) == pytest.approx(1.0)
    again = rng.normal(0, 1, (20_000, 2))
    shifted = again + np.array([0.0, 1.0])
    d = c.drift(bins, shifted, ["a", "b"], {"a": "Income", "b": "Spend"})
    assert [f.feature for f in d.features] == ["b", "a"]
    assert d.features[1].psi < 0.01 and d.features[1].level == "stable"
    assert d.features[0].psi > c.PSI_SIGNIFICANT and d.exceeded
    assert d.reasons == [f"Spend moved (population stability index {d.features[0].psi:.2f} "
                         "≥ 0.25)"]


def test_a_feature_with_few_values_is_binned_by_its_values():
    kids = np.array([0, 0, 1, 1, 1, 2, 3, 3] * 100, dtype=float)[:, None]
    (bins,) = c.reference_bins(kids, ["children"])
    assert bins.edges == (0.5, 1.5, 2.5)
    assert bins.shares == (0.25, 0.375, 0.125, 0.25)
    assert c.psi(bins, kids[:, 0]) == pytest.approx(0.0)


def _calendar_months(n: int = 3000, seed: int = 5):
    """Two monthly snapshots of the same customers where only the calendar moves: tenure in
    days / 30.4375 (as orders and signup dates give it) +30 days, whole-year age +1 for the
    customers whose birthday falls in the month, an income that stays."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 365, n)  # days since the first order on 31 May (a young shop)
    birth = rng.integers(18, 80, n)
    birthday_in_june = rng.random(n) < 1 / 12
    income = rng.lognormal(10, 0.5, n)
    may = np.column_stack([first / 30.4375, birth, income])
    june = np.column_stack([(first + 30) / 30.4375, birth + birthday_in_june, income])
    return may, june


FEATURES = ["tenure_months", "age", "income"]
LABELS = {"tenure_months": "Months as a customer", "age": "Age", "income": "Income"}
CLOCKS = {"tenure_months": "months", "age": "years", "income": ""}
MAY, JUNE_END = dt.date(2024, 5, 31), dt.date(2024, 6, 30)


def test_tenure_and_age_are_compared_after_ageing_last_months_customers():
    may, june = _calendar_months()
    bins = c.reference_bins(may, FEATURES)
    plain = c.drift(bins, june, FEATURES, LABELS)
    psi = {f.feature: f.psi for f in plain.features}
    assert psi["tenure_months"] > 0.1  # the calendar alone reads as drift without ageing

    shifts = c.calendar_shifts(CLOCKS, MAY, JUNE_END)
    assert shifts == {"tenure_months": pytest.approx(30 / 30.4375),
                      "age": pytest.approx(30 / 365.25)}
    text = c.ageing_text(["Months as a customer", "Age"], MAY, JUNE_END)
    assert text == ("Months as a customer and age are compared after ageing last month's "
                    "customers by the month between the two reports.")
    aged = c.drift(bins, june, FEATURES, LABELS, shifts=shifts, aged=text)
    psi_aged = {f.feature: f.psi for f in aged.features}
    assert psi_aged["tenure_months"] < 0.01 and psi_aged["age"] < 0.1
    assert psi_aged["income"] == psi["income"] == 0.0
    assert all(f.level == "stable" for f in aged.features)
    assert not aged.exceeded and aged.reasons == [] and aged.aged == text


def test_many_new_customers_are_drift_of_tenure_even_after_ageing():
    may, june = _calendar_months()
    rng = np.random.default_rng(9)
    newcomers = np.column_stack([rng.integers(0, 30, 2000) / 30.4375,
                                 rng.integers(18, 80, 2000), rng.lognormal(10, 0.5, 2000)])
    bins = c.reference_bins(may, FEATURES)
    d = c.drift(bins, np.vstack([june, newcomers]), FEATURES, LABELS,
                shifts=c.calendar_shifts(CLOCKS, MAY, JUNE_END))
    top = d.features[0]
    assert top.feature == "tenure_months" and top.level == "significant"
    assert d.exceeded and d.reasons[0].startswith("Months as a customer moved")


def test_elapsed_time_in_each_clock_and_undated_runs_age_nothing():
    assert c.elapsed(dt.date(2024, 1, 31), dt.date(2024, 3, 31), "days") == 60
    assert c.elapsed(dt.date(2023, 12, 31), dt.date(2024, 1, 31), "calendar years") == 1
    assert c.elapsed(dt.date(2024, 1, 31), dt.date(2024, 12, 31), "calendar years") == 0
    assert c.calendar_shifts({"tenure_months": "months"}, None, JUNE_END) == {}
    assert c.calendar_shifts({"tenure_months": "months"}, JUNE_END, MAY) == {}
    assert c.ageing_text(["Tenure"], dt.date(2024, 3, 31), JUNE_END) == (
        "Tenure is compared after ageing the previous report's customers by the 3 months "
        "between the two reports.")
    # A whole-number feature moves by whole units: a tenure column in months ages by 1.
    months = np.arange(0, 72, dtype="float64").repeat(20)[:, None]
    bins = c.reference_bins(months, ["tenure_months"])
    d = c.drift(bins, months + 1, ["tenure_months"],
                shifts=c.calendar_shifts({"tenure_months": "months"}, MAY, JUNE_END))
    assert d.features[0].psi < 0.01


def test_customers_further_from_their_centres_is_drift():
    d = c.drift([], np.zeros((3, 0)), [], distance_previous=2.0, distance_current=2.5)
    assert d.distance_ratio == 1.25 and d.exceeded
    assert "25% further" in d.reasons[0]
    calm = c.drift([], np.zeros((3, 0)), [], distance_previous=2.0, distance_current=2.1)
    assert not calm.exceeded and calm.reasons == []


def test_centroid_distances_and_centres():
    z = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 13.0]])
    labels = np.array([1, 1, 4, 4])
    centres = c.centroids_of(z, labels)
    np.testing.assert_allclose(centres[1], [1.0, 0.0])
    np.testing.assert_allclose(centres[4], [10.0, 11.5])
    np.testing.assert_allclose(c.centroid_distances(z, labels, centres), [1.0, 1.0, 1.5, 1.5])


# per segment, per customer, in words -------------------------------------------------------

def test_movement_up_down_same_and_new():
    worth_before = {1: 500.0, 2: 100.0, 3: 50.0}
    worth_now = {1: 520.0, 2: 90.0, 3: 60.0}
    prev = np.array([1, 1, 2, 3, -1])
    cur = np.array([1, 2, 1, 2, 3])
    codes = c.movement(prev, cur, worth_before, worth_now)
    assert codes.dtype == np.int8
    assert list(c.movement_words(codes)) == ["same", "down", "up", "up", "new"]


def test_segment_changes_have_deltas_and_a_row_for_a_segment_that_is_gone():
    prev = [c.SegmentRef(1, "A"), c.SegmentRef(2, "B"), c.SegmentRef(3, "C")]
    m = c.Matching(current=(c.Identity(1, 1, "survived", prev[0], (1,)),
                            c.Identity(2, 3, "merged", prev[2], (3, 2)),
                            c.Identity(3, 4, "emerged", None)),
                   previous=(c.Fate(1, "survived", (1,)), c.Fate(2, "merged", (2,)),
                             c.Fate(3, "merged", (2,))))
    now = [c.SegmentNow(1, "A", 50, 0.5, 0.6), c.SegmentNow(3, "C", 30, 0.3, 0.3),
           c.SegmentNow(4, "New ones", 20, 0.2, 0.1)]
    before = [c.SegmentNow(1, "A", 40, 0.4, 0.5), c.SegmentNow(2, "B", 30, 0.3, 0.2),
              c.SegmentNow(3, "C", 30, 0.3, 0.3)]
    rows = c.segment_changes(m, now, before)
    assert [(r.id, r.transition, r.customers, r.previous_customers) for r in rows] == \
        [(1, "survived", 50, 40), (3, "merged", 30, 30), (4, "emerged", 20, 0),
         (2, "merged", 0, 30)]
    assert rows[0].share_delta == pytest.approx(0.1) and rows[0].value_share_delta == \
        pytest.approx(0.1)
    assert rows[3].into == (3,)
    names = {1: "A", 3: "C", 4: "New ones"}
    texts = [c.transition_text(r, names, {1: "A", 2: "B", 3: "C"}) for r in rows]
    assert texts == ["Continued", "Merged from C and B", "New this period", "Merged into C"]
    assert c.valuable(now) == {1}  # worth 0.6/0.5 = 1.2 × its headcount; C only 1.0


def test_the_three_largest_flows_in_words():
    f = c.flows(_month(JUNE), _month(JULY))
    names = {1: "Affluent regulars", 2: "Budget shoppers", 3: "Deal seekers"}
    words = c.largest_flows(f, names, names)
    assert words == [
        "15 new customers, $17k of spend, joined Deal seekers",
        "10 Deal seekers, $9,550 of spend last period, are not in this period's table",
        "5 new customers, $5,150 of spend, joined Affluent regulars",
    ]
    five = c.largest_flows(f, names, names, n=5)
    assert five[3:] == ["3 Budget shoppers, $1,260 of spend, moved to Deal seekers",
                        "5 Affluent regulars, $150 of spend, moved to Budget shoppers"]
    scores = c.largest_flows(f, names, names, value_unit="number", value_label="score")
    assert scores[0] == "15 new customers joined Deal seekers"
    assert scores[1] == "10 Deal seekers are not in this period's table"


def test_a_gap_of_a_month_or_more_is_said():
    assert c.gap(dt.date(2014, 6, 29), dt.date(2014, 7, 31)) is None
    one = c.gap(dt.date(2014, 5, 31), dt.date(2014, 7, 31))
    assert one is not None and one.missing == 1
    assert one.text == ("No run for June 2014: changes are measured against May 2014, "
                        "2 months back.")
    three = c.gap(dt.date(2013, 11, 30), dt.date(2014, 3, 31))
    assert three is not None and three.missing == 3
    assert three.text.startswith("No run for December 2013 to February 2014")
    assert c.gap(None, dt.date(2014, 3, 31)) is None


def test_trend_keeps_the_last_twelve_periods_under_the_latest_names():
    points = []
    for month in range(1, 15):
        period = f"2014-{month:02d}" if month <= 12 else f"2015-{month - 12:02d}"
        for seg in (1, 2):
            points.append(c.TrendPoint(period, period, f"r{month}", seg,
                                       "Old name" if month < 14 and seg == 1 else f"S{seg}",
                                       "#000000", 10 * seg, seg / 3, 100.0 * seg, seg / 3))
    t = c.trend(points)
    assert t.periods[0] == "2014-03" and t.periods[-1] == "2015-02" and len(t.periods) == 12
    assert {p.name for p in t.series_of(1)} == {"S1"}
    assert [p.period for p in t.points[:4]] == ["2014-03", "2014-03", "2014-04", "2014-04"]


def test_psi_on_more_customers_than_the_bin_sample_is_the_same_up_to_noise():
    rng = np.random.default_rng(5)
    n = c.BIN_SAMPLE + 50_000
    june = rng.normal(0, 1, (n, 1))
    bins = c.reference_bins(june, ["x"], seed=1)
    assert sum(bins[0].shares) == pytest.approx(1.0)
    same = c.drift(bins, rng.normal(0, 1, (n, 1)), ["x"], seed=2)
    moved = c.drift(bins, rng.normal(0.5, 1, (n, 1)), ["x"], seed=2)
    assert same.features[0].psi < 0.001
    # PSI approximates the symmetric Kullback-Leibler divergence, δ² for two unit normals δ
    # apart (0.25 at half a standard deviation); ten bins see a little less of it.
    assert 0.2 < moved.features[0].psi < 0.25 and moved.features[0].level == "moderate"


def test_the_monthly_group_tables_move_exactly_the_customers_they_say():
    from .series_tables import group_months, sample_months

    kinds = {"affluent": 1, "family": 2, "young": 3}

    def assign(month) -> c.Assignments:
        f = month.frame
        return c.Assignments(pd.Index(f["ID"]), f["kind"].map(kinds).to_numpy(),
                             f["MntWines"].to_numpy(dtype=float))

    june, july, august = group_months()
    first = c.flows(assign(june), assign(july))
    cells = {(x.source, x.target): x.customers for x in first.migration}
    assert (first.new_customers, first.lost_customers, first.returning_customers) == \
        (14, 8, 172)
    assert cells[(1, 2)] == 12 and cells[(3, 1)] == 6 and cells[("new", 3)] == 10
    assert cells[("new", 1)] == 4 and cells[(2, "lost")] == 5 and cells[(3, "lost")] == 3
    assert cells[(1, 1)] == 48 and cells[(2, 2)] == 55 and cells[(3, 3)] == 51
    second = c.flows(assign(july), assign(august))
    cells = {(x.source, x.target): x.customers for x in second.migration}
    assert cells[(2, 3)] == 9 and cells[("new", 2)] == 8 and cells[(1, "lost")] == 7
    assert second.returning_customers == 186 - 7
    months = sample_months()
    assert [len(m.frame) for m in months] == [2240, 2340, 2440]
    assert [m.period for m in months] == ["2014-06", "2014-07", "2014-08"]
    july_s = months[1]
    assert len(july_s.new) == 200 and len(july_s.gone) == 100 and len(july_s.changed) == 300
    assert not (july_s.new & set(months[0].frame["ID"]))


def test_counted_flows_are_the_matrix_flows_builds_and_relabel_moves_whole_columns() -> None:
    """The Spark engine counts (previous, current, customers, value) cells with a join; built
    into Flows they must be what ``flows`` makes of the same customers."""
    from reportgen.compare import Assignments, counted_flows, flows

    before = Assignments(keys=pd.Index(["a", "b", "c", "d"]), segments=np.array([1, 1, 2, 2]),
                         values=np.array([10.0, 20.0, 30.0, 40.0]))
    now = Assignments(keys=pd.Index(["b", "c", "d", "e"]), segments=np.array([2, 1, 1, 2]),
                      values=np.array([21.0, 31.0, 41.0, 5.0]))
    expected = flows(before, now, previous_ids=[1, 2], current_ids=[1, 2])
    # b: 1 -> 2, c: 2 -> 1, d: 2 -> 1, e: new -> 2, a: 1 -> lost (its previous value)
    cells = [(1, 2, 1, 21.0), (2, 1, 2, 72.0), (-1, 2, 1, 5.0), (1, -1, 1, 10.0)]
    got = counted_flows(cells, [1, 2], [1, 2])
    assert got.customers.tolist() == expected.customers.tolist() == [[0, 1, 0], [0, 1, 1],
                                                                      [2, 0, 0]]
    assert got.value.tolist() == expected.value.tolist()
    assert (got.new_customers, got.lost_customers, got.returning_customers) == (1, 1, 3)
    assert got.previous_segment is None
    # labels 1 and 2 become series ids 7 and 3: whole columns move, "lost" stays last
    moved = got.relabeled({1: 7, 2: 3})
    assert moved.current_ids == (3, 7)
    assert moved.customers.tolist() == [[1, 0, 0], [1, 0, 1], [0, 2, 0]]
    assert moved.value[2, 1] == 72.0 and moved.value[1, 2] == 10.0
