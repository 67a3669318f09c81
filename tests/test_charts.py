"""Chart builders: persona colours, bounded data, only plotted columns, alt text with numbers."""

from __future__ import annotations

import dataclasses
import json
import re
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
import pytest

from reportgen import fmt
from reportgen.render import charts, vega
from reportgen.report import FeatureInfo

from .factories import (
    make_features,
    make_method,
    make_points,
    make_report,
    make_segments,
    walk_dicts,
)

pytestmark = pytest.mark.usefixtures("no_network")


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    return make_report().charts



def _data_rows(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Every inline data set in a spec (``data.values`` and top-level ``datasets``)."""
    sets = [list(v) for v in spec.get("datasets", {}).values()]
    for node in walk_dicts(spec):
        data = node.get("data")
        if isinstance(data, dict) and isinstance(data.get("values"), list):
            sets.append(data["values"])
    return sets


def test_palette_gives_k_distinct_okabe_ito_colours() -> None:
    assert charts.palette(0) == []
    four = charts.palette(4)
    assert four == ["#0072B2", "#E69F00", "#009E73", "#CC79A7"]
    assert len(set(charts.palette(8))) == 8
    assert len(set(charts.palette(17))) == 17
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in charts.palette(17))


def test_build_charts_makes_every_chart_the_data_supports(built: dict[str, Any]) -> None:
    assert set(built) == {
        "size_value", "zscore_heatmap", "projection", "income_value", "channel_mix",
        "product_mix", "campaigns", "k_metrics",
        "persona_1", "persona_2", "persona_3", "persona_4",
    }
    assert {n for n, c in built.items() if c.dense} == {"projection", "income_value"}


def test_charts_without_their_data_are_skipped() -> None:
    segments = make_segments()
    features = [f for f in make_features() if f.group not in ("channel_mix", "campaigns")]
    points = make_points(segments)[["x", "y", "segment"]]  # no income / value columns
    built = charts.build_charts(segments, features, make_method(), points)
    assert "channel_mix" not in built and "campaigns" not in built
    assert "product_mix" in built and "projection" in built
    assert "income_value" not in built
    assert not {"projection", "income_value"} & set(
        charts.build_charts(segments, features, make_method(), None))


def test_every_persona_scale_uses_exactly_the_segment_colours(built: dict[str, Any]) -> None:
    segments = make_segments()
    colour_of = {s.name: s.color for s in segments}
    for name, chart in built.items():
        persona_scales = [
            node for node in walk_dicts(chart.spec)
            if isinstance(node.get("domain"), list) and node["domain"]
            and all(isinstance(d, str) and d in colour_of for d in node["domain"])
        ]
        if name == "k_metrics":
            assert persona_scales == []  # no persona in the k search
            continue
        assert persona_scales, f"{name} does not colour its personas"
        for scale in persona_scales:
            assert scale["range"] == [colour_of[d] for d in scale["domain"]], name


def test_scatter_specs_hold_at_most_5000_rows_and_only_plotted_columns() -> None:
    segments = make_segments()
    big = make_points(segments, n=12_000)
    built = charts.build_charts(segments, make_features(), make_method(), big)
    for name, columns in {"projection": {"x", "y", "segment"},
                          "income_value": {"income", "value", "segment"}}.items():
        spec = built[name].spec
        rows = [row for data in _data_rows(spec) for row in data]
        assert 0 < len(rows) <= charts.MAX_POINTS
        assert {key for row in rows for key in row} == columns
        text = json.dumps(spec)
        assert "customer_id" not in text and "example.com" not in text
        assert len(text) < 400_000  # a few hundred KB whatever the table size


def test_every_spec_is_small_and_names_no_url(built: dict[str, Any]) -> None:
    for name, chart in built.items():
        text = json.dumps(chart.spec)
        assert "http" not in text, name  # not even the $schema label
        if not chart.dense:
            assert len(text) < 20_000, name  # aggregates: size does not grow with customers
        assert chart.spec["description"] == chart.description


def test_descriptions_are_alt_text_with_the_numbers(built: dict[str, Any]) -> None:
    size = built["size_value"].description
    assert "Affluent wine lovers 21% of customers, 45% of spend" in size
    assert "Budget young parents 29% of customers, 9% of spend" in size
    assert "chosen k = 4" in built["k_metrics"].description
    assert "300 sampled customers" in built["projection"].description
    assert "Wine 55%" in built["product_mix"].description
    first = make_segments()[0]
    spend = next(f for f in make_features() if f.name == "total_spend")
    index = round(100 * first.means["total_spend"] / spend.overall_mean)
    assert f"Total spend {index}" in built["persona_1"].description


def _heat_cells(chart: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for data in _data_rows(chart) for row in data if "feature" in row]


def test_heatmap_shows_an_index_of_the_average_customer_not_standard_deviations() -> None:
    segments = make_segments()
    features = make_features()
    spec = charts._spec(charts.zscore_heatmap(segments, features))
    cells = _heat_cells(spec)
    by = {(c["segment"], c["feature"]): c for c in cells}
    for s in segments:
        for f in features:
            if not f.in_model:
                continue
            expected = 100 * s.means[f.name] / f.overall_mean
            assert by[(s.name, f.label)]["label"] == f"{expected:,.0f}"
            assert by[(s.name, f.label)]["index"] == pytest.approx(expected, abs=0.05)
    text = json.dumps(spec)
    assert "standard deviation" not in text and "z-score" not in text and "SD" not in text
    titles = [" ".join(t) if isinstance(t, list) else t for node in walk_dicts(spec)
              for t in [node.get("title")] if isinstance(t, (str, list))]
    assert charts.INDEX_TITLE in titles  # the key says what the numbers are
    assert "as an index where 100 is the average customer" in spec["description"]


def test_heatmap_clips_the_colour_but_labels_the_real_index() -> None:
    segments = make_segments()
    extreme = dataclasses.replace(segments[0], means={**segments[0].means, "income": 1e7})
    chart = charts.zscore_heatmap([extreme, *segments[1:]], make_features()).to_dict()
    cells = _heat_cells(chart)
    assert max(row["pos"] for row in cells) == charts.INDEX_CLIP
    income = next(f for f in make_features() if f.name == "income")
    assert any(row["label"] == f"{1e9 / income.overall_mean:,.0f}" for row in cells)


def test_index_is_left_out_where_a_ratio_means_nothing() -> None:
    segment = make_segments()[0]
    balance = FeatureInfo(name="balance", label="Balance", unit="money", group="value",
                          description="", in_model=True, overall_mean=-20.0)
    low = dataclasses.replace(segment, means={**segment.means, "balance": -300.0},
                              zscores={**segment.zscores, "balance": -1.4})
    assert charts.index(low, balance) is None
    cells = _heat_cells(charts.zscore_heatmap([low], [balance]).to_dict())
    assert [(c["label"], c["index"]) for c in cells] == [("below", None)]
    assert cells[0]["pos"] == pytest.approx(-1.4 / charts.Z_CLIP * charts.INDEX_CLIP, abs=1e-3)
    zero = dataclasses.replace(balance, overall_mean=0.0)
    assert charts.index(dataclasses.replace(low, means={"balance": 5.0}), zero) is None


def test_neighbouring_mix_colours_differ_in_lightness() -> None:
    """Grey scale: next to each other in a stacked bar, two parts must not share a shade."""
    spec = charts._spec(charts.product_mix(make_segments(), make_features()))
    scale = next(node["scale"] for node in walk_dicts(spec)
                 if node.get("field") == "component" and "scale" in node)

    def lightness(colour: str) -> float:  # relative luminance, 0..1 (sRGB, not linearised)
        r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    shades = [lightness(c) for c in scale["range"]]
    assert len(shades) >= 5
    gaps = [abs(a - b) for a, b in zip(shades, shades[1:], strict=False)]
    spread = max(shades) - min(shades)
    assert min(gaps) >= 0.3 * spread  # a plain dark-to-light ramp would give spread / (n-1)
    assert charts._alternating(6) == [0, 3, 1, 4, 2, 5]
    assert charts._alternating(5) == [0, 3, 1, 4, 2]
    assert sorted(charts._alternating(7)) == list(range(7))


def test_projection_has_no_meaningless_axis_titles(built: dict[str, Any]) -> None:
    text = json.dumps(built["projection"].spec["encoding"])
    assert "Dimension" not in text
    assert "Dimension" not in built["projection"].title
    assert "alike" in built["projection"].title


def test_mix_bars_are_normalised_to_one_per_segment() -> None:
    segments = make_segments()
    chart = charts.product_mix(segments, make_features()).to_dict()
    rows = [row for data in _data_rows(chart) for row in data if "share" in row]
    for s in segments:
        mine = [r for r in rows if r["segment"] == s.name]
        assert sum(r["share"] for r in mine) == pytest.approx(1, abs=1e-3)
        assert max(r["end"] for r in mine) == pytest.approx(1, abs=1e-3)


def test_persona_traits_shows_only_model_features_highest_index_first() -> None:
    segment = make_segments()[0]
    features = make_features()
    chart = charts.persona_traits(segment, features).to_dict()
    rows = next(d for d in _data_rows(chart) if d and "feature" in d[0])
    labels = [r["feature"] for r in rows]
    assert set(labels) == {f.label for f in features if f.in_model}
    positions = [r["pos"] for r in rows]
    assert positions == sorted(positions, reverse=True)
    spend = next(f for f in features if f.name == "total_spend")
    row = next(r for r in rows if r["feature"] == spend.label)
    assert row["label"] == f"{100 * segment.means['total_spend'] / spend.overall_mean:,.0f}"
    assert "standard deviation" not in json.dumps(chart)


def test_signed_formats_z_scores_with_a_real_minus() -> None:
    assert fmt.signed(1.23) == "+1.2"
    assert fmt.signed(-0.84) == "\u22120.8"
    assert fmt.signed(-0.01) == "0.0"


def test_exports_render_offline_and_refuse_external_data(built: dict[str, Any]) -> None:
    svg = vega.to_svg(built["size_value"].spec)
    assert svg.startswith("<svg") and "Affluent wine lovers" in svg
    png = vega.to_png(built["projection"].spec, scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    remote = {"data": {"url": "https://example.com/data.csv"}, "mark": "bar",
              "encoding": {"x": {"field": "a", "type": "quantitative"}}}
    with pytest.raises(ValueError, match="not allowed"):
        vega.to_svg(remote)


def test_vega_bundle_is_kept_in_the_cache_folder_and_read_back(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTGEN_CACHE_DIR", str(tmp_path))
    first = vega.vega_bundle()
    assert "vegaEmbed" in first
    (cached,) = tmp_path.glob("vega-bundle-vlc*.js")
    assert cached.read_text(encoding="utf-8") == first
    cached.write_text("/* vegaEmbed from the cache */", encoding="utf-8")
    assert vega.vega_bundle() == "/* vegaEmbed from the cache */"  # read, not rebuilt
    cached.write_text("truncated", encoding="utf-8")  # not a bundle: built again
    assert vega.vega_bundle() == first


def test_vega_bundle_cache_folder_is_the_platform_user_cache_unless_overridden(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPORTGEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    first = vega.vega_bundle()
    assert [p.name for p in (tmp_path / "xdg" / "reportgen").iterdir()] == [
        f"vega-bundle-vlc{metadata.version('vl-convert-python')}.js"]
    monkeypatch.setenv("REPORTGEN_CACHE_DIR", "off")  # no disk cache at all
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    assert vega.vega_bundle() == first
    assert not (tmp_path / "other").exists()


def test_build_charts_accepts_any_number_of_segments() -> None:
    rng = np.random.default_rng(0)
    segments = make_segments()
    ten = [dataclasses.replace(segments[i % 4], id=i + 1, name=f"Segment {i + 1}",
                               color=c) for i, c in enumerate(charts.palette(10))]
    points = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500),
                           "segment": [f"Segment {i % 10 + 1}" for i in range(500)]})
    features: list[FeatureInfo] = make_features()
    built = charts.build_charts(ten, features, make_method(), points)
    assert sum(name.startswith("persona_") for name in built) == 10


def test_income_value_labels_a_score_as_a_number_and_spend_as_money() -> None:
    segments = make_segments()
    points = make_points(segments)
    money = charts._spec(charts.income_value(points, segments, value_label="spend"))
    score = charts._spec(charts.income_value(points, segments, value_label="spending score",
                                             value_unit="number"))
    assert '"$" +' in money["encoding"]["y"]["axis"]["labelExpr"]
    assert "$" not in json.dumps(score["encoding"]["y"])
    assert re.search(r"spending score \d", score["description"])
    assert "spending score $" not in score["description"]


def test_charts_come_in_the_order_the_pdf_shows_them(built: dict[str, Any]) -> None:
    assert list(built) == ["size_value", "zscore_heatmap", "projection", "income_value",
                           "product_mix", "channel_mix", "campaigns", "persona_1", "persona_2",
                           "persona_3", "persona_4", "k_metrics"]
