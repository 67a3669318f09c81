"""The shortcuts taken for speed give the same results as the plain way."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.metrics import silhouette_score

from reportgen.render import vega
from reportgen.render.email import email_png
from reportgen.render.pdf import print_exports
from reportgen.report import ChartSpec, Report
from reportgen.segment import Silhouette

from .factories import make_report


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.mark.parametrize("sample", [50, 300, 5000])  # shared distances, all rows, too many
def test_silhouette_equals_sklearns_sampled_silhouette(sample: int) -> None:
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(c, 1.0, size=(100, 4)) for c in (0, 4, 8)])
    score = Silhouette(x, sample, seed=7)
    for k in (2, 3, 5):
        labels = np.arange(len(x)) % k if k == 5 else np.repeat(np.arange(3), 100) % k
        expected = silhouette_score(x, labels, sample_size=min(sample, len(x)), random_state=7)
        assert score(labels) == pytest.approx(expected, abs=1e-12)


def test_silhouette_of_one_sampled_label_is_zero() -> None:
    x = np.arange(40, dtype=float).reshape(20, 2)
    assert Silhouette(x, 10, seed=0)(np.zeros(20, dtype=int)) == 0.0


@pytest.mark.parametrize("name", ["size_value", "persona_1", "campaigns"])
def test_print_svg_drops_only_what_draws_nothing(report: Report, name: str) -> None:
    spec = report.charts[name].spec
    svg = vega.to_svg(spec)
    assert 'd="M0,0h0v0h0Z"' not in svg and 'display="none"' not in svg
    assert "aria-" not in svg and "<text" in svg
    # no background path without paint of its own is left; the painted ones are
    backgrounds = re.findall(r'<path class="background"[^>]*>', svg)
    assert all(" fill=" in p or " stroke=" in p for p in backgrounds)
    import vl_convert

    raw = str(vl_convert.vegalite_to_svg(spec, allowed_base_urls=[]))
    assert len(re.findall("<path", svg)) < len(re.findall("<path", raw))
    # the same pixels as Vega's own PNG of the spec
    assert vega.svg_to_png(svg, scale=1) == vega.to_png(spec, scale=1)


def test_email_png_from_the_print_svg_equals_the_one_drawn_from_the_spec(
        report: Report) -> None:
    spec = report.charts["zscore_heatmap"].spec
    assert email_png(spec, vega.to_svg(spec)) == email_png(spec)


def test_charts_are_exported_for_print_in_the_order_the_pdf_shows_them() -> None:
    names = ["k_metrics", "persona_10", "persona_2", "campaigns", "size_value", "persona_1",
             "projection", "zscore_heatmap"]
    spec = make_report().charts["size_value"].spec
    fake = dataclasses.replace(make_report(with_charts=False), charts={
        n: ChartSpec(name=n, title=n, description=n, spec=spec, dense=n == "projection")
        for n in names})
    exported = print_exports(fake)
    assert list(exported) == [
        "size_value", "zscore_heatmap", "projection", "campaigns", "persona_1", "persona_2",
        "persona_10", "k_metrics"]
    # dense charts as JPEG (thousands of SVG circles triple WeasyPrint's time), the rest SVG
    assert {n: kind for n, (kind, _) in exported.items()} == {
        n: "jpeg" if n == "projection" else "svg" for n in names}
    assert exported["projection"][1][:3] == b"\xff\xd8\xff"


def test_a_dense_chart_as_the_pdfs_jpeg_keeps_its_size_and_its_pixels(report: Report) -> None:
    import io

    from PIL import Image, ImageChops

    from reportgen.render.pdf import PNG_SCALE, image_from, jpeg_size, png_size, print_jpeg

    png = vega.to_png(report.charts["projection"].spec, scale=PNG_SCALE)
    jpeg = print_jpeg(png)
    assert jpeg_size(jpeg) == png_size(png)
    image = image_from("jpeg", jpeg)
    assert image.uri.startswith("data:image/jpeg;base64,")
    assert (image.width, image.height) == tuple(round(v / PNG_SCALE) for v in png_size(png))
    with Image.open(io.BytesIO(png)) as a, Image.open(io.BytesIO(jpeg)) as b:
        diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L")
    histogram = diff.histogram()
    assert max(i for i, n in enumerate(histogram) if n) <= 40  # no pixel moves visibly
    assert sum(i * n for i, n in enumerate(histogram)) / sum(histogram) < 1.0
    # transparency is drawn on white, as it shows on the page
    clear = io.BytesIO()
    Image.new("RGBA", (4, 2), (255, 0, 0, 0)).save(clear, "PNG")
    with Image.open(io.BytesIO(print_jpeg(clear.getvalue()))) as out:
        assert out.size == (4, 2) and min(out.convert("L").getdata()) >= 250


def test_charts_exported_in_the_background_are_the_ones_exported_in_line(
        report: Report) -> None:
    """output.ChartExports (the thread exporting while the other files are written) gives
    the print exports and the email's PNGs byte for byte as exporting them in line does."""
    from reportgen.output import ChartExports
    from reportgen.render.email import email_images

    def ids(exports: dict) -> dict:  # Vega numbers clip paths on from the process's last one
        return {n: (k, re.sub(r"clip\d+", "clip", v) if k == "svg" else v)
                for n, (k, v) in exports.items()}

    charts = ChartExports(report, ["pdf", "email"])
    exported = print_exports(report)
    assert ids(charts.print_exports()) == ids(exported)
    assert list(charts.print_exports()) == list(exported)  # the PDF's order
    assert charts.email_images() == email_images(report, exported)
    assert set(charts.email_images()) >= {"size_value", "zscore_heatmap"}
    assert ChartExports(report, ["email"]).email_images() == email_images(report)
    assert ChartExports(report, ["html"]).print_exports() == {}


def test_a_chart_failing_in_the_background_raises_where_it_is_needed(report: Report) -> None:
    """A spec vl-convert rejects: its error (the same ValueError as in line) comes out of
    print_exports() and of the email's PNG drawn from it, not before."""
    from reportgen.output import ChartExports

    bad = report.charts["zscore_heatmap"]
    broken = dataclasses.replace(report, charts={
        **report.charts, "zscore_heatmap": dataclasses.replace(bad, spec={**bad.spec,
                                                                          "mark": "nope"})})
    with pytest.raises(ValueError, match="conversion failed") as inline:
        print_exports(broken)
    charts = ChartExports(broken, ["pdf", "email"])
    with pytest.raises(ValueError, match="conversion failed") as background:
        charts.print_exports()
    assert str(background.value) == str(inline.value)
    with pytest.raises(ValueError, match="conversion failed"):
        charts.email_images()


def test_a_row_group_failing_in_the_background_is_raised_by_the_writer(
        tmp_path, monkeypatch) -> None:
    """SegmentsWriter writes each block's row group in a thread: an error there (a full
    disk, say) is raised by the next write or by close, not lost."""
    import pyarrow.parquet as pq

    from reportgen.output import SegmentsWriter

    calls = []

    def failing(self, table, *args, **kwargs):
        calls.append(len(table))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    block = pd.DataFrame({"ID": np.arange(5), "segment": pd.array([1, 2, 1, 2, 1],
                                                                  dtype="Int64")})
    with pytest.raises(OSError, match="No space left"), \
            SegmentsWriter(tmp_path / "s.csv", tmp_path / "s.parquet") as out:
        out.write(block)  # the first row group fails in the thread...
        out.write(block)  # ...and is raised here, before a second one is submitted
    assert calls == [5]
    writer = SegmentsWriter(tmp_path / "t.csv", tmp_path / "t.parquet")
    writer.write(block)
    with pytest.raises(OSError, match="No space left"):
        writer.close()  # the last row group's error
    assert (tmp_path / "t.csv").read_text().startswith("ID,segment\n0,1\n")


def _outputs(report: Report, tmp_path, features: pd.DataFrame | None = None, **kwargs):
    """write_outputs of report, with 300 customers of its segments (features: theirs, made
    when not given), into tmp_path / "out"."""
    from reportgen.output import write_outputs

    n = 300
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"ID": np.arange(1000, 1000 + n)})
    if features is None:
        features = pd.DataFrame({"income": rng.lognormal(10, 1, n).round(2),
                                 "share_web": rng.random(n)})
    return write_outputs(
        report=report, out_root=tmp_path / "out", frame=frame, key="ID",
        kept_index=frame.index, labels=np.resize([s.id for s in report.segments], n),
        excluded=pd.Series([], dtype="string"), features=features, manifest={},
        timings={}, **kwargs)


def test_the_rows_are_let_go_once_the_segments_are_written(report: Report, tmp_path) -> None:
    """let_go runs after segments.csv and .parquet are complete, before the renderers;
    empty() drops every column of the frame in place."""
    from reportgen.output import empty

    features = pd.DataFrame({"income": np.linspace(1000, 4000, 300), "share_web": 0.25})
    seen: list[list[str]] = []

    def let_go() -> None:
        (partial,) = (tmp_path / "out").glob(".*.partial-*")
        seen.append(sorted(p.name for p in partial.iterdir()))
        empty(features)

    run_dir, files = _outputs(report, tmp_path, features, formats=["html"], let_go=let_go)
    assert seen == [["segments.csv", "segments.parquet"]]
    assert features.shape == (300, 0)
    lines = (run_dir / "segments.csv").read_text().splitlines()
    assert lines[0] == "ID,segment,persona,previous_segment,previous_persona,movement," \
                       "left_out,income,share_web"
    assert len(lines) == 301 and lines[-1].endswith(",4000.0,0.25")
    assert [f.name for f in files] == ["manifest.json", "report.html", "segments.csv",
                                       "segments.parquet", "summary.json"]


def test_a_chart_failing_after_the_rows_were_let_go_leaves_no_run_folder(
        report: Report, tmp_path) -> None:
    """The PDF's chart fails once the segments are written and the rows let go: vl-convert's
    error, and nothing of the run is left in the output root."""
    bad = report.charts["zscore_heatmap"]
    broken = dataclasses.replace(report, charts={
        **report.charts, "zscore_heatmap": dataclasses.replace(bad, spec={**bad.spec,
                                                                          "mark": "nope"})})
    let_go_calls = []
    with pytest.raises(ValueError, match="conversion failed"):
        _outputs(broken, tmp_path, formats=["html", "pdf"],
                 let_go=lambda: let_go_calls.append(1))
    assert let_go_calls == [1]
    assert list((tmp_path / "out").iterdir()) == []


def test_segments_failing_leave_the_rows_and_no_run_folder(report: Report, tmp_path,
                                                           monkeypatch) -> None:
    """A full disk while segments.parquet is written: that error, no run folder, and let_go
    never called (the caller keeps its rows)."""
    import pyarrow.parquet as pq

    def full(self, table, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    let_go_calls = []
    with pytest.raises(OSError, match="No space left on device"):
        _outputs(report, tmp_path, formats=["html"], let_go=lambda: let_go_calls.append(1))
    assert let_go_calls == []
    assert list((tmp_path / "out").iterdir()) == []


# segments.csv written with pyarrow ----------------------------------------------------------

def _edge_frame(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    odd = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-5, 5e-5, 1e-4, 1e9, 999_999_999.9999, 1e15,
           1e16, 123_456_789_012.5, -2.5e-7, 58_138.0]
    floats = np.concatenate([rng.normal(0, 1, n), rng.lognormal(5, 3, n), odd])
    m = len(floats)
    texts = ["Affluent, big", 'a "quoted" one', "two\nlines", "cr\rin", "plain", None,
             "'=1+1", "", "ünïcode €"]
    return pd.DataFrame({
        "ID": np.arange(m),
        "segment": pd.array(np.where(rng.random(m) < .2, None, rng.integers(1, 6, m)),
                            dtype="Int64"),
        "persona": pd.array(rng.choice(np.array(texts, dtype=object), m), dtype="string"),
        "left_out": pd.array([None] * m, dtype="string"),
        "raw": floats,
        "rounded": np.round(floats, 4),
        "with, comma": rng.integers(-5, 5, m),
    })


def test_write_csv_is_byte_identical_to_pandas_to_csv(tmp_path, monkeypatch) -> None:
    from reportgen import output

    monkeypatch.setattr(output, "CSV_BLOCK", 333)  # several blocks, a short last one
    frame = _edge_frame()
    frame.to_csv(tmp_path / "pandas.csv", index=False, lineterminator="\n")
    output.write_csv(frame, tmp_path / "arrow.csv")
    assert (tmp_path / "arrow.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


@pytest.mark.parametrize(("threads", "block"), [(2, 333), (3, 334), (2, 2000)])
def test_lines_joined_a_share_of_the_rows_per_thread_equal_pandas_to_csv(
        tmp_path, monkeypatch, threads: int, block: int) -> None:
    """Each block's lines joined in CSV_THREADS slices of its rows (uneven ones, a short
    last block): the same bytes as to_csv."""
    from reportgen import output

    monkeypatch.setattr(output, "CSV_BLOCK", block)
    monkeypatch.setattr(output, "_PARALLEL_FROM", 100)
    monkeypatch.setattr(output, "CSV_THREADS", threads)
    frame = _edge_frame()
    lines = output._csv_lines(frame.iloc[:block])
    assert lines is not None and lines.num_chunks == threads
    output.write_csv(frame, tmp_path / "arrow.csv")
    assert (tmp_path / "arrow.csv").read_bytes() == \
        frame.to_csv(index=False, lineterminator="\n").encode()


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=60),
       st.lists(st.text(max_size=8) | st.none(), min_size=1, max_size=60))
@settings(max_examples=60, deadline=None)
def test_write_csv_formats_any_float_and_text_as_pandas_does(floats, texts) -> None:
    import tempfile
    from pathlib import Path

    from reportgen.output import write_csv

    n = min(len(floats), len(texts))
    frame = pd.DataFrame({"x": np.array(floats[:n], dtype="float64"),
                          "t": pd.array(texts[:n], dtype="string")})
    with tempfile.TemporaryDirectory() as tmp:
        write_csv(frame, Path(tmp) / "a.csv")
        assert (Path(tmp) / "a.csv").read_bytes() == \
            frame.to_csv(index=False, lineterminator="\n").encode()


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9) | st.just(float("nan"))
                | st.sampled_from([0.0, -0.0, 1e-4, -1e-4, 999999999.9999]),
                min_size=1, max_size=60))
@settings(max_examples=80, deadline=None)
@example([1e9]).via("1e9 is not written from integers")
@example([999999999.99996]).via("rounds up to 1e9")
def test_floats_rounded_to_4_decimals_are_written_as_pandas_writes_them(floats) -> None:
    """segments.csv's features are rounded to 4 decimals: written from integers (the integer
    part and a looked-up fraction), byte for byte what to_csv writes, -0.0 and gaps too."""
    from reportgen import output

    frame = pd.DataFrame({"ID": np.arange(len(floats)),
                          "x": np.round(np.array(floats, dtype="float64"), 4)})
    x = frame["x"].to_numpy()
    if np.nanmax(np.abs(x), initial=0.0) < output._PLAIN_HIGH:  # rounding can reach 1e9
        assert output._decimal_text(x) is not None  # the integer path
    else:
        assert output._decimal_text(x) is None  # repr's path: no exponent to mimic here
    lines = output._csv_lines(frame)
    assert output._csv_header(frame.columns) + b"".join(
        s.encode() for s in lines.to_pylist()) == \
        frame.to_csv(index=False, lineterminator="\n").encode()


def test_write_csv_leaves_a_dtype_it_does_not_format_to_pandas(tmp_path) -> None:
    from reportgen.output import write_csv

    frame = pd.DataFrame({"flag": [True, False, True], "when": pd.to_datetime(
        ["2014-01-02", "2014-03-04", None]), "n": [1.5, 2.0, np.nan]})
    write_csv(frame, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text() == frame.to_csv(index=False, lineterminator="\n")


def test_neutralised_text_equals_neutralise_cell_by_cell() -> None:
    from reportgen.output import _neutralised, neutralise

    s = pd.Series(["=SUM(A1)", "+1", "-2", "@x", "\tt", "\rr", "plain", None, "a=b"],
                  dtype="string")
    expected = s.map(neutralise, na_action="ignore")
    pd.testing.assert_series_equal(_neutralised(s), expected)
    mixed = pd.Series(["=x", 3, None], dtype=object)
    assert _neutralised(mixed).tolist() == ["'=x", 3, None]


def test_segments_parquet_holds_what_segments_csv_says(tmp_path) -> None:
    from reportgen.output import write_csv, write_parquet

    frame = _edge_frame(200)
    # (an unquoted \r, as Python's csv writes it, ends a line for pandas' CSV reader)
    frame["persona"] = frame["persona"].str.replace("\r", " ")
    write_csv(frame, tmp_path / "segments.csv")
    write_parquet(frame, tmp_path / "segments.parquet")
    back = pd.read_parquet(tmp_path / "segments.parquet")
    assert list(back.columns) == list(frame.columns)
    assert back["segment"].dtype == "Int64"
    pd.testing.assert_series_equal(back["rounded"], frame["rounded"])
    assert back["persona"].isna().tolist() == frame["persona"].isna().tolist()
    from_csv = pd.read_csv(tmp_path / "segments.csv", keep_default_na=False,
                           na_values=[""])
    assert from_csv["segment"].astype("Int64").tolist() == back["segment"].tolist()


@pytest.mark.parametrize("default, overrides", [
    ("auto", {}), ("standard", {}), ("robust", {"b": "log1p"}), ("auto", {"a": "robust"})])
def test_fit_transform_is_fit_scaling_then_transform_bit_for_bit(default, overrides) -> None:
    from reportgen.scaling import fit_scaling, fit_transform

    rng = np.random.default_rng(11)
    x = np.column_stack([rng.lognormal(5, 2, 5000), rng.poisson(3, 5000).astype(float),
                         rng.normal(0, 1, 5000), np.zeros(5000)])
    features = ["a", "b", "c", "d"]
    units = {"a": "money", "b": "count", "c": "number", "d": "count"}
    plain = fit_scaling(x, features, units, default, overrides)
    expected = plain.transform(x)
    scaling, z = fit_transform(x.copy(), features, units, default, overrides)
    assert scaling.methods == plain.methods
    assert np.array_equal(scaling.center, plain.center)
    assert np.array_equal(scaling.scale, plain.scale)
    assert np.array_equal(z, expected)


@pytest.mark.parametrize("n", [3, 5000, 100_003])
def test_scaling_column_by_column_equals_the_matrix_wide_mean_and_std(n: int) -> None:
    from reportgen.scaling import fit_scaling

    rng = np.random.default_rng(n)
    x = np.empty((3, n), dtype="float64").T  # laid out as FeatureFrame.matrix lays it out
    x[:] = np.column_stack([rng.lognormal(5, 2, n), rng.normal(0, 1, n),
                            rng.poisson(3, n).astype(float)])
    scaling = fit_scaling(x, ["a", "b", "c"], {"a": "money", "b": "number", "c": "count"},
                          "auto", {})
    z = x.copy(order="F")
    z[:, scaling.log1p] = np.log1p(z[:, scaling.log1p])
    assert scaling.methods[0] == "log1p"
    assert scaling.center.tobytes() == z.mean(axis=0).tobytes()
    assert scaling.scale.tobytes() == z.std(axis=0).tobytes()


def test_profile_by_segment_equals_the_frame_wide_grouped_reductions() -> None:
    from reportgen.profile import _by_segment

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"spend": rng.lognormal(4, 2, 20_000),
                          "count": rng.integers(0, 30, 20_000).astype(float),
                          "share": rng.random(20_000)})
    labels = pd.Series(rng.integers(1, 6, 20_000), index=frame.index, name="segment")
    grouped = frame.groupby(labels)
    means, medians = _by_segment(frame, grouped)
    assert np.array_equal(means.to_numpy(), grouped.mean().to_numpy())
    assert np.array_equal(medians.to_numpy(), grouped.median().to_numpy())
    assert list(means.index) == list(grouped.mean().index)


def test_write_csv_formats_arrow_backed_columns_as_pandas_does(tmp_path, monkeypatch) -> None:
    # DuckDB's order aggregation hands over Arrow-backed columns (chunked arrays)
    from reportgen import output

    monkeypatch.setattr(output, "CSV_BLOCK", 3)
    frame = pd.DataFrame({
        "id": pd.array([1, 2, None, 4, 5], dtype="int64[pyarrow]"),
        "name": pd.array(["a", None, "b,c", 'd"e', "=f"], dtype="string[pyarrow]"),
        "x": pd.array([1.5, None, 2.0, 1e16, 0.1], dtype="double[pyarrow]"),
        "big": pd.array(["x" * 10] * 5, dtype=pd.ArrowDtype(pa.large_string())),
    })
    output.write_csv(frame, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text() == frame.to_csv(index=False, lineterminator="\n")


def test_write_csv_formats_a_text_column_of_several_arrow_chunks(tmp_path) -> None:
    """An Arrow-backed text column made of chunks (a concat of two, as the order lines'
    left-out customers are joined on): quoted per distinct value, as pandas writes it."""
    from reportgen.output import write_csv

    parts = [pd.Series(["a, b", "plain", None] * 4, dtype="string[pyarrow]"),
             pd.Series(['say "hi"', "plain"] * 5, dtype="string[pyarrow]")]
    frame = pd.DataFrame({"ID": range(22), "t": pd.concat(parts, ignore_index=True)})
    assert pa.array(frame["t"], from_pandas=True).num_chunks == 2
    write_csv(frame, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_text() == frame.to_csv(index=False, lineterminator="\n")


@pytest.mark.parametrize(("with_previous", "order"),
                         [(False, "sorted"), (True, "sorted"), (True, "shuffled")])
def test_segments_written_block_by_block_equal_the_whole_table(tmp_path, monkeypatch,
                                                               with_previous, order) -> None:
    """write_segments (a block of rows at a time, never the whole table) writes the bytes
    write_csv writes and the rows write_parquet writes for segments_table(...) whole, with
    rows left out (a reason instead of a segment) spread over several blocks; the kept
    customers in the table's order (each block's rows a slice of the features) or not (a
    take)."""
    from reportgen import output

    monkeypatch.setattr(output, "CSV_BLOCK", 333)
    rng = np.random.default_rng(7)
    n = 2000
    frame = pd.DataFrame({"ID": np.arange(10, 10 + n),
                          "name": ["=x", "a, b", "c"] * 666 + ["d", "e"]})
    kept = pd.Index(np.sort(rng.choice(n, 1700, replace=False)))
    if order == "shuffled":
        kept = kept[rng.permutation(len(kept))]
    labels = rng.integers(1, 4, len(kept))
    excluded = pd.Series("income above the fence", index=frame.index.difference(kept),
                         dtype="string")
    features = pd.DataFrame({"income": rng.lognormal(10, 1, len(kept)),
                             "share_web": rng.random(len(kept))}, index=kept)
    previous = pd.DataFrame({
        "previous_segment": pd.array(rng.integers(1, 4, len(kept)), dtype="Int64"),
        "previous_persona": pd.array(["Old one"] * len(kept), dtype="string"),
        "movement": pd.array(["stayed"] * len(kept), dtype="string")}, index=kept) \
        if with_previous else None
    names = {1: "One", 2: "+Two", 3: "Three, with comma"}
    whole = output.segments_table(names, frame, "ID", kept, labels, excluded, features, previous)
    meta = {"key": "ID", "run_id": "2014-06-abc"}
    output.write_csv(output.csv_safe(whole), tmp_path / "whole.csv")
    output.write_parquet(whole, tmp_path / "whole.parquet", meta)
    (tmp_path / "blocks").mkdir()
    output.write_segments(tmp_path / "blocks", names, frame, "ID", kept, labels, excluded,
                          features, previous, meta)
    assert (tmp_path / "blocks" / "segments.csv").read_bytes() == \
        (tmp_path / "whole.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "blocks" / "segments.parquet"),
                                  pd.read_parquet(tmp_path / "whole.parquet"))
    assert pd.read_parquet(tmp_path / "whole.parquet")["left_out"].notna().sum() == 300
    import pyarrow.parquet as pq

    assert pq.read_schema(tmp_path / "blocks" / "segments.parquet").metadata[b"reportgen"] == \
        pq.read_schema(tmp_path / "whole.parquet").metadata[b"reportgen"]
    assert b"'+Two" in (tmp_path / "blocks" / "segments.csv").read_bytes()  # neutralised


# The per-row shortcuts of issue 14 (1 M customers): each equals the plain computation it
# replaced, on the cases where the two could part (missing values, signed zeros, ids that
# are negative or far apart, text that repeats).

def _plain_centroids(z: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    ids, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(ids))
    sums = np.column_stack([np.bincount(inverse, weights=z[:, j], minlength=len(ids))
                            for j in range(z.shape[1])])
    return {int(i): sums[k] / counts[k] for k, i in enumerate(ids)}


@pytest.mark.parametrize("labels", [
    [1, 2, 2, 5, 1, 5, 5],  # small ids with a gap: counted by id
    [-3, 0, 2, -3, 2, 0, 0],  # a negative id: sorted
    [7, 10**12, 7, 10**12, 7, 7, 3],  # ids far apart: sorted
])
def test_centroids_of_equals_the_mean_per_sorted_id(labels: list[int]) -> None:
    from reportgen.compare import centroids_of

    rng = np.random.default_rng(5)
    z = rng.normal(size=(len(labels), 3))
    got = centroids_of(z, np.array(labels))
    want = _plain_centroids(z, np.array(labels))
    assert list(got) == list(want)
    for i in want:
        assert np.array_equal(got[i], want[i])


def test_reference_bins_equal_the_bins_of_unique_quantile_and_searchsorted() -> None:
    from reportgen.compare import PSI_BINS, reference_bins

    rng = np.random.default_rng(6)
    n = 5000
    x = np.column_stack([
        rng.normal(size=n),  # deciles
        rng.integers(0, 4, n).astype(float),  # few values: midpoints
        np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),  # missing values
        np.r_[np.inf, -np.inf, -0.0, rng.random(n - 3).round(1)],  # infinities, -0.0
        np.zeros(n),  # one value: no edge
    ])
    got = reference_bins(x, list("abcde"))
    for j, bins in enumerate(got):
        col = x[:, j]
        values = np.unique(col[np.isfinite(col)])
        edges = (values[:-1] + values[1:]) / 2 if len(values) <= PSI_BINS else np.unique(
            np.quantile(col[np.isfinite(col)], np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, col, side="right"),
                             minlength=len(edges) + 1)
        assert bins.edges == tuple(float(e) for e in edges)
        assert bins.shares == tuple(float(s) for s in counts / n)


@pytest.mark.parametrize("values", [
    [1.0, 1.0, 2.0, np.nan, 2.0],  # two values and a gap
    [0.0, -0.0, 1.0, 1.0],  # signed zeros are one value
    [3.0, 1.0, 2.0],
    [np.nan, np.nan],
    [5.0, np.nan, 5.0, 7.0, 9.0],
])
def test_more_than_two_values_equals_nunique(values: list[float]) -> None:
    from reportgen.features import _more_than_two

    s = pd.Series(values, dtype="float64")
    assert _more_than_two(s) == (s.nunique() > 2)


@pytest.mark.parametrize("s", [
    pd.Series([3, 3, 5, -2]),
    pd.Series([1990, 1985, 1990, 2001]),  # not negative: counted where they are
    pd.Series(np.array([-128, 127, 0, 0], dtype="int8")),  # a range wider than int8
    pd.Series(np.array([2**64 - 1, 2**64 - 2], dtype="uint64")),  # beyond int64: hashed
    pd.Series(np.array([-(2**63), 2**63 - 1])),  # a range wider than the column: hashed
    pd.Series(np.arange(100_000)),
    pd.Series([1.5, 2.0, 1.5]),
    pd.Series(["a", "b", "a"]),
])
def test_distinct_count_equals_nunique(s: pd.Series) -> None:
    from reportgen.schema import _distinct_count

    assert _distinct_count(s) == s.nunique()


def test_schema_sample_is_the_first_values_that_are_not_missing() -> None:
    from reportgen.schema import _SAMPLE, _sample

    rng = np.random.default_rng(7)
    for share in (0.0, 0.5, 0.9):  # the top holds enough values, or not
        s = pd.Series(np.where(rng.random(20 * _SAMPLE) < share, np.nan, 1.0))
        assert _sample(s).equals(s.dropna().head(_SAMPLE))


@pytest.mark.parametrize("gap_share", [0.0, 0.3, 0.999])
def test_complete_rows_from_the_top_equal_those_of_the_whole_table(gap_share: float) -> None:
    from reportgen.schema import _complete_rows, as_numbers

    rng = np.random.default_rng(8)
    n = 60_000
    frame = pd.DataFrame({"a": rng.integers(0, 9, n),
                          "b": np.where(rng.random(n) < gap_share, np.nan, rng.random(n)),
                          "c": rng.random(n)})
    whole = pd.DataFrame({c: as_numbers(frame[c]) for c in frame}).dropna().head(5000)
    assert _complete_rows(frame, ["a", "b", "c"], 5000).equals(whole)
    frame["c"] = frame["c"].map("{:.3f}".format)  # text: read whole
    whole = pd.DataFrame({c: as_numbers(frame[c]) for c in frame}).dropna().head(5000)
    assert _complete_rows(frame, ["a", "b", "c"], 5000).equals(whole)


@pytest.mark.parametrize("s", [
    pd.Series([" Married", "alone", None, "Alone", " Married"] * 3, dtype="str"),
    pd.Series(["x", pd.NA, "Y", "x"] * 3, dtype="string"),
    pd.Series(["a", "b", None, "a"] * 3, dtype="category"),
    pd.Series([1, 1.0, True, "1", None] * 3, dtype=object),  # one key to factorize: not used
])
def test_per_value_equals_the_function_of_the_column(s: pd.Series) -> None:
    from reportgen.clean import MARITAL_SYNONYMS, _per_value

    def fn(text: pd.Series) -> pd.Series:
        t = text.astype("string").str.strip().str.lower()
        return t.map(MARITAL_SYNONYMS).fillna(t)

    got, want = _per_value(s, fn), fn(s)
    assert got.dtype == want.dtype
    pd.testing.assert_series_equal(got, want)
    dates = pd.Series(["01-02-2013 ", "bad", None, "01-02-2013"] * 3, dtype="str")
    parse = lambda t: pd.to_datetime(t.str.strip(), format="%d-%m-%Y", errors="coerce")  # noqa: E731
    pd.testing.assert_series_equal(_per_value(dates, parse), parse(dates))


@pytest.mark.parametrize(("answers", "fill"), [
    (["yes", "no", "yes"], 1.0), (["yes", "no"], 1.0),  # a tie: the median is 0.5
    (["no", "no", "yes", None, None, None], 0.0), ([None, None], 0.0)])
def test_yes_no_fill_is_the_median_answer(answers: list[str | None], fill: float) -> None:
    from reportgen.clean import clean
    from reportgen.config import Config
    from reportgen.schema import infer_schema

    frame = pd.DataFrame({"ID": range(len(answers)), "Response": answers,
                          "Income": [float(10 * i) for i in range(len(answers))]})
    schema = infer_schema(frame, {"Response": "flag", "Income": "income"})
    cleaned = clean(frame, schema, Config())
    b = pd.Series([{"yes": 1.0, "no": 0.0}.get(a, np.nan) for a in answers])
    median = float(b.median()) if b.notna().any() else 0.0
    assert cleaned.decisions.yes_no["Response"].fill == fill == (1.0 if median >= 0.5 else 0.0)


def test_median_signup_date_is_the_middle_of_the_sorted_dates() -> None:
    from reportgen.clean import clean
    from reportgen.config import Config
    from reportgen.schema import infer_schema

    rng = np.random.default_rng(9)
    days = pd.Timestamp("2012-01-01") + pd.to_timedelta(rng.integers(0, 900, 41), unit="D")
    text = [d.strftime("%Y-%m-%d") if i % 7 else None for i, d in enumerate(days)]
    frame = pd.DataFrame({"ID": range(41), "Dt_Customer": text,
                          "Income": rng.random(41) * 1e5})
    cleaned = clean(frame, infer_schema(frame, {}), Config())
    usable = pd.to_datetime(pd.Series(text), format="%Y-%m-%d").dropna().sort_values()
    assert cleaned.decisions.dates["Dt_Customer"].fill == \
        usable.iloc[len(usable) // 2].isoformat()


def test_feature_matrix_equals_the_selected_columns_with_gaps_filled() -> None:
    from reportgen.features import FeatureFrame

    rng = np.random.default_rng(10)
    block = rng.random((4, 500))
    block[1, ::3] = np.nan
    block[3, ::5] = np.nan
    frame = pd.DataFrame(block.T, columns=list("abcd"), copy=False)
    frame["e"] = rng.integers(0, 5, 500)  # another block, of integers
    ff = FeatureFrame(frame=frame, meta={}, model=[], value=None, fills={"b": 0.5})
    chosen = ["d", "b", "e", "a"]
    want = frame[chosen].to_numpy(dtype="float64", copy=True)
    want[:, 1] = np.where(np.isnan(want[:, 1]), 0.5, want[:, 1])  # its fill
    want[:, 0] = np.where(np.isnan(want[:, 0]), 0.0, want[:, 0])  # no fill: 0
    got = ff.matrix(chosen)
    assert np.array_equal(got, want)
    assert got.flags.f_contiguous == want.flags.f_contiguous  # same layout, same sums after


def test_profile_medians_equal_pandas_grouped_medians_with_gaps() -> None:
    from reportgen.profile import _by_segment

    rng = np.random.default_rng(11)
    n = 3001
    frame = pd.DataFrame({"share": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
                          "count": rng.integers(0, 9, n).astype(float),
                          "none_in_7": rng.random(n)})
    labels = pd.Series(rng.choice([2, 3, 7, 40], n), index=frame.index, name="segment")
    frame.loc[labels == 7, "none_in_7"] = np.nan  # a segment with no value at all
    frame.loc[labels.index[labels == 3][:1], "share"] = np.nan  # odd and even counts
    grouped = frame.groupby(labels)
    means, medians = _by_segment(frame, grouped)
    want = grouped.median()
    assert list(medians.index) == list(want.index) == [2, 3, 7, 40]
    assert np.array_equal(medians.to_numpy(), want.to_numpy(), equal_nan=True)
    assert np.isnan(medians.loc[7, "none_in_7"])


@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=False, width=64),
                          st.sampled_from([0.0, -0.0, 1.0, 2.5])), max_size=40))
@example([0.1, 0.7, 0.2, 0.30000000000000004])  # (a + b) / 2 rounded as np.median rounds it
@example([np.nan, np.nan])
@example([])
def test_median_is_pandas_median_bit_for_bit(values: list[float]) -> None:
    from reportgen.stats import median

    x = np.array(values, dtype="float64")
    before = x.copy()
    got, want = median(x), pd.Series(x, dtype="float64").median()
    assert np.float64(got).tobytes() == np.float64(want).tobytes() or \
        (np.isnan(got) and np.isnan(want))
    assert np.array_equal(x, before, equal_nan=True)  # the caller's values left as they were
    # the caller's scratch copy, partitioned in place: the same median
    scratch = median(x.copy(), scratch=True)
    assert np.float64(scratch).tobytes() == np.float64(got).tobytes() or \
        (np.isnan(scratch) and np.isnan(got))


@pytest.mark.parametrize("head", [[1.0, 2.0, 3.0], [1.0, 1.0], [np.nan] * 3])
def test_more_than_two_values_past_the_first_rows_equals_nunique(head: list[float]) -> None:
    from reportgen.features import HEAD_ROWS, _more_than_two

    for tail in ([1.0], [2.0, 1.0], [5.0, 6.0, 7.0]):
        s = pd.Series((head * HEAD_ROWS)[:HEAD_ROWS] + tail * 10, dtype="float64")
        assert _more_than_two(s) == (s.nunique() > 2)


def test_numeric_yes_no_equals_the_values_in_0_and_1() -> None:
    from reportgen.schema import as_binary

    s = pd.Series([0, 1, 2, -0.0, np.nan, 1.0, np.inf, -1.0, 0.5])
    v = s.astype("float64")
    assert as_binary(s).equals(v.where(v.isin([0.0, 1.0])))
    assert as_binary(pd.Series([1, 0, 3], dtype="int64")).tolist()[:2] == [1.0, 0.0]


def test_decoded_bytes_count_every_rows_text() -> None:
    import pyarrow.compute as pc

    from reportgen.load import _decoded_bytes

    text = pa.chunked_array([pa.array(["ab", None, "cdef", "ab", ""]).dictionary_encode(),
                             pa.array([None, None], pa.string()).dictionary_encode(),
                             pa.array(["xyz"] * 3).dictionary_encode()])
    table = pa.table({"t": text, "n": pa.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], pa.int64())})
    want = table.column("n").nbytes + sum(
        chunk.indices.nbytes + (pc.sum(pc.take(pc.binary_length(chunk.dictionary),
                                               chunk.indices)).as_py() or 0)
        for chunk in text.chunks)
    indices = sum(chunk.indices.nbytes for chunk in text.chunks)
    assert _decoded_bytes(table) == want == 80 + indices + (2 + 4 + 2) + 0 + 3 * 3


def test_feature_matrix_of_some_rows_equals_those_rows_of_the_matrix() -> None:
    from reportgen.features import FeatureFrame

    rng = np.random.default_rng(12)
    frame = pd.DataFrame({"a": rng.random(300), "b": np.where(rng.random(300) < 0.4, np.nan,
                                                             rng.random(300))})
    ff = FeatureFrame(frame=frame, meta={}, model=[], value=None, fills={"b": 0.25})
    rows = np.sort(rng.choice(300, 40, replace=False))
    assert np.array_equal(ff.matrix(["b", "a"], rows=rows), ff.matrix(["b", "a"])[rows])


@given(st.lists(st.one_of(st.floats(min_value=-1e150, max_value=1e150),
                          st.sampled_from([np.nan, 0.0, 1.0, 3.5])), max_size=60))
@example([np.nan, np.nan])
@example([2.0, 2.0, 2.0])
def test_mean_and_std_are_pandas_bit_for_bit(values: list[float]) -> None:
    from reportgen.stats import mean, std

    s = pd.Series(values, dtype="float64")
    x = s.to_numpy()
    for got, want in zip((mean(x), std(x, ddof=0), std(x, ddof=1)),
                         (s.mean(), s.std(ddof=0), s.std()), strict=True):
        assert np.float64(got).tobytes() == np.float64(want).tobytes() or \
            (np.isnan(got) and np.isnan(want))


@pytest.mark.parametrize("gaps", [0, 1, 700])
def test_mean_and_std_of_a_long_column_are_pandas_bit_for_bit(gaps: int) -> None:
    """Past numpy's pairwise blocks (128 values): a column without gaps goes through
    np.mean and np.std, one with gaps through nanmean and nanstd; both sum as pandas does."""
    from reportgen.stats import mean, std

    rng = np.random.default_rng(gaps)
    x = rng.lognormal(3.0, 2.0, 100_003) * rng.choice([-1.0, 1.0], 100_003)
    x[rng.choice(len(x), gaps, replace=False)] = np.nan
    s = pd.Series(x)
    for got, want in ((mean(x), s.mean()), (std(x, ddof=0), s.std(ddof=0)),
                      (std(x), s.std()), (std(x, ddof=2), s.std(ddof=2))):
        assert np.float64(got).tobytes() == np.float64(want).tobytes()


@pytest.mark.parametrize("s", [
    pd.Series([3.0, np.nan, 1.0, 7.5, -2.0]),
    pd.Series([4, 1, 9, 9], dtype="int64"),
    pd.Series([4, None, 9, 2], dtype="Int64"),
    pd.Series([True, False, True]),
    pd.Series([np.nan, np.nan]),
], ids=["float64", "int64", "Int64", "bool", "all-missing"])
def test_series_figures_are_pandas_whatever_the_dtype(s: pd.Series) -> None:
    from reportgen.stats import series_mean, series_median, series_std

    for got, want in ((series_median(s), s.median()), (series_mean(s), s.mean()),
                      (series_std(s), s.std()), (series_std(s, ddof=0), s.std(ddof=0))):
        assert np.float64(got).tobytes() == np.float64(want).tobytes() or \
            (np.isnan(got) and np.isnan(want))


@pytest.mark.parametrize("values, dtype, long", [
    ([2**53 - 1, -(2**53 - 1), 0], "int64", False),
    ([5, -(2**53)], "int64", True),
    ([2**53, 1], "int64", True),
    ([-(2**63), 0], "int64", True),  # its abs wraps in int64: the extremes say it
    ([2**64 - 1], "uint64", True),
    ([7, 3], "uint8", False),
    ([], "int64", False),
])
def test_long_integers_from_the_extremes(values: list[int], dtype: str, long: bool) -> None:
    from reportgen.load import _long_integers

    assert _long_integers(pd.Series(np.array(values, dtype=dtype))) is long
