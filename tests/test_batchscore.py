"""batchscore: a saved model applied to record batches in NumPy gives what Model.apply gives
(`reportgen score`): the same segments, CSV features and reasons for leaving customers out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import reportgen
from reportgen import batchscore, outofcore
from reportgen.batchscore import BatchScorer, RepeatedKeys
from reportgen.config import Config
from reportgen.load import frame_from_arrow
from reportgen.resources import sample_path
from reportgen.scoring import Model, load_model, score


def _cfg(**limits: object) -> Config:
    return Config().with_overrides(report__formats=["json"],
                                   **{f"limits__{k}": v for k, v in limits.items()})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of the sample's run (its model.skops and segments.parquet)."""
    root = tmp_path_factory.mktemp("fit")
    table = root / "customers.parquet"
    pd.read_csv(sample_path(), sep="\t").to_parquet(table, index=False)
    return reportgen.run(table, _cfg(out_of_core="never"), root / "out").run_dir


@pytest.fixture(scope="module")
def model(fitted: Path) -> Model:
    return load_model(fitted)


def _messy(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    """The sample resampled, with what cleaning repairs or leaves out in every column."""
    base = pd.read_csv(sample_path(), sep="\t")
    rng = np.random.default_rng(seed)
    frame = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    frame["ID"] = pd.array(np.arange(n) + 10_000, dtype="Int64")
    frame.loc[[5, 6, 7], "ID"] = pd.NA  # no key
    frame.loc[[20, 21], "ID"] = frame.loc[19, "ID"]  # repeated keys, first kept
    if n > 2800:  # ... in later batches of 700
        frame.loc[[1500, 2800], "ID"] = frame.loc[100, "ID"]
        frame.loc[2000, "ID"] = frame.loc[19, "ID"]
    frame["Income"] = frame["Income"].astype("float64")
    frame.loc[30:60, "Income"] = np.nan  # blank: the median
    frame.loc[61, "Income"] = 5e7  # above the typing-error fence: blank
    frame.loc[62, "Income"] = -100.0  # negative: blank
    frame.loc[63, "Income"] = 3e12  # absurd: blank
    frame["MntWines"] = frame["MntWines"].astype("float64")
    frame.loc[70:75, "MntWines"] = np.nan
    frame.loc[76, "MntWines"] = 9e8  # an extreme amount: set aside with its reason
    frame.loc[77, ["MntMeatProducts", "MntGoldProds"]] = [4e8, 3e8]  # two reasons
    frame.loc[78, "Year_Birth"] = 1800  # implausible age: blank
    frame.loc[80:90, [c for c in frame if c.startswith("Num") and "Visits" not in c]] = 0
    frame.loc[91:95, [c for c in frame if c.startswith("Mnt")]] = 0  # no spend: 0/0 shares
    frame.loc[96, "AcceptedCmp1"] = 3  # not a yes/no answer: the most common one
    frame.loc[97, "Marital_Status"] = "Complicated"  # a level the model never saw
    frame.loc[98, "Education"] = "Unheard"
    frame.loc[99, "Kidhome"] = np.nan
    return frame


def _batch(frame: pd.DataFrame) -> pa.RecordBatch:
    return pa.Table.from_pandas(frame, preserve_index=False).combine_chunks().to_batches()[0]


def test_a_batch_gets_the_segments_features_and_reasons_model_apply_gives(model: Model
                                                                         ) -> None:
    batch = _batch(_messy())
    scorer = BatchScorer.build(model, batch.schema.names, batch.schema.types)
    assert scorer is not None
    assert "Education" not in scorer.columns  # only what the model needs is read
    fast = scorer.score(batch)
    assert fast is not None
    frame = frame_from_arrow(batch)
    slow = score(frame, model, "messy.parquet")

    kept = np.flatnonzero(fast.kept)
    assert kept.tolist() == slow.kept_index.tolist()
    np.testing.assert_array_equal(fast.labels, slow.labels)
    assert len(set(fast.labels.tolist())) == len(model.names)
    assert list(fast.features) == list(slow.features.columns)
    for name, values in fast.features.items():
        np.testing.assert_allclose(values, slow.features[name].to_numpy(), rtol=1e-12,
                                   equal_nan=True, err_msg=name)
    assert fast.excluded == slow.excluded.to_dict()
    assert fast.excluded[5] == "no ID"
    assert fast.excluded[20] == fast.excluded[21] == \
        f"duplicate ID {frame.at[19, 'ID'].item()!r} (first occurrence kept)"
    assert fast.excluded[76].startswith("outlier: MntWines 900,000,000 above the fence ")
    assert fast.excluded[77].count(" above the fence ") == 2
    assert np.isnan(fast.features["share_wines"][kept.tolist().index(91)])  # 0/0


def test_the_streamed_assignment_writes_what_model_apply_writes(
        fitted: Path, model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "messy.parquet"
    _messy().to_parquet(table, index=False)
    monkeypatch.setattr(outofcore, "BATCH", 700)  # several batches, a short last one
    dataset = outofcore._dataset([str(table)], str(table))
    runs = {}
    for name, build in (("fast", BatchScorer.build), ("apply", lambda *_: None)):
        run_dir = tmp_path / name
        run_dir.mkdir()
        for f in fitted.iterdir():
            (run_dir / f.name).write_bytes(f.read_bytes())
        monkeypatch.setattr(BatchScorer, "build", staticmethod(build))
        runs[name] = (outofcore._assign_all(dataset, 3000, run_dir, str(table)), run_dir)
    assert runs["fast"][0] == runs["apply"][0]
    assert runs["fast"][0]["left out"] == 3 + 5 + 2  # no key, repeated, set aside
    for file in ("segments.csv", "segments.parquet"):
        assert (runs["fast"][1] / file).read_bytes() == (runs["apply"][1] / file).read_bytes()
    # what Model.apply gives the table whole: keys repeated batches apart left out too
    whole = score(frame_from_arrow(pa.Table.from_pandas(_messy(), preserve_index=False)),
                  model, "messy.parquet")
    back = pd.read_parquet(runs["fast"][1] / "segments.parquet")
    assert back["left_out"].dropna().to_dict() == whole.excluded.to_dict()
    assert back.at[2800, "left_out"] == whole.excluded[1500] == \
        f"duplicate ID {back.at[100, 'ID'].item()!r} (first occurrence kept)"
    np.testing.assert_array_equal(back.loc[whole.kept_index, "segment"], whole.labels)


def test_a_model_it_does_not_know_is_left_to_model_apply(model: Model) -> None:
    batch = _batch(_messy(200))
    assert BatchScorer.build(model, batch.schema.names[1:], batch.schema.types[1:]) is None
    text = batch.set_column(batch.schema.get_field_index("Income"), "Income",
                            pa.array([str(v) for v in batch.column("Income").to_pylist()]))
    assert BatchScorer.build(model, text.schema.names, text.schema.types) is None


def _later(values: list[object], size: int = 300) -> list[int]:
    """The rows (counted over every batch) that RepeatedKeys leaves out because a batch
    before theirs held their key."""
    table = pa.table({"ID": values})
    batches = table.to_batches(max_chunksize=size)
    repeated = RepeatedKeys.find(batches, "ID", "ID", table.num_rows)
    out, offset = [], 0
    for batch in batches:
        out += [offset + i for i in repeated.earlier(batch)]
        offset += batch.num_rows
    return sorted(out)


def test_keys_repeated_batches_apart_are_found_dense_sparse_or_text() -> None:
    dense = list(range(1000))
    assert _later(dense) == []
    assert batchscore._distinct(np.arange(1000.0).view(np.uint64))  # shown by the bitmap
    dense[650] = dense[999] = dense[10]
    dense[20] = dense[10]  # within the first batch: key_exclusions' to leave out
    assert _later(dense) == [650, 999]
    sparse = [i * 10**9 for i in range(1000)]
    assert not batchscore._distinct(np.array(sparse, dtype=float).view(np.uint64))
    sparse[700] = sparse[1]
    assert _later(sparse) == [700]
    halves = [i / 2 for i in range(1000)]
    assert not batchscore._distinct(np.array(halves).view(np.uint64))
    assert _later([*halves[:-1], 0.5]) == [999]
    text = [f"C{i}" for i in range(1000)]
    text[400], text[500], text[600] = " C1", None, "   "  # stripped; blank is no key
    assert _later(text) == [400]
