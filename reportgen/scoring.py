"""Score new customers with a saved run: the fitted pipeline in ``model.skops``.

The file holds plain data (dicts, lists, NumPy arrays) and scikit-learn estimators, written with
skops and read back with an explicit list of trusted types: nothing in it can run code on load,
unlike a pickle. What it holds:

- how to rebuild the features: the column roles (schema), the config of the run, clean's
  decisions (key, as_of, date formats and fill dates, scale factors, fences and medians,
  category levels: ``clean.CleaningDecisions``), the features' decisions (model features,
  value feature, category levels, fills: ``features.FeatureDecisions``), which columns must be
  there and their kind;
- the model: the scaling (centre, scale, log1p per feature), the fitted estimator, the order that
  maps its clusters to segment ids, and the persona names.

``load_model`` reads it into a ``Model``; ``Model.apply`` cleans a table with the run's
decisions (learning nothing from the batch: a five-row batch gets the run's medians and income
fence), builds its features with the run's feature decisions and assigns each customer with
the run's scaling and estimator, so a customer scored later lands where the report would have
put them. ``reportgen score`` is ``score``; a monthly run that keeps last month's model calls
``Model.apply`` with ``as_of="data"`` (ages and tenures at this month's date).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from . import __version__
from .clean import Cleaned, CleaningDecisions, CleaningStep, clean
from .config import Config
from .errors import InputError, ModelError
from .features import FeatureDecisions, FeatureFrame, build_features
from .scaling import Scaling
from .schema import CATEGORY_ROLES, Schema

if TYPE_CHECKING:
    import datetime as dt

    from .segment import Segmentation

log = logging.getLogger("reportgen")

MODEL_FILE = "model.skops"
# 2: clean's and the features' decisions are stored (format 1 kept only as_of, the date
# formats and medians, and scoring re-inferred the rest from the batch).
FORMAT = 2
# Types a model file may contain beyond what skops trusts by default (scikit-learn estimators,
# NumPy arrays, builtins). k-prototypes comes from the kmodes package.
TRUSTED = [
    "kmodes.kprototypes.KPrototypes",
    "kmodes.util.dissim.euclidean_dissim",
    "kmodes.util.dissim.matching_dissim",
]
NUMBER_SHARE = 0.9  # share of non-blank values that must read as numbers in a numeric column


def _kind(s: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(s):
        return "date"
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return "number"
    return "text"


def build_bundle(*, cfg: Config, schema: Schema, raw: pd.DataFrame, cleaned: Cleaned,
                 ff: FeatureFrame, seg: Segmentation, categories: list[str],
                 names: dict[int, str], run_id: str,
                 segment_ids: list[int] | None = None) -> dict[str, Any]:
    """Everything `reportgen score` needs, as plain data plus the fitted estimator.
    segment_ids: the series id of the segment of each entry of seg.order (default 1..k: a
    segment matched to last month's keeps last month's id)."""
    roles = dict(schema.roles)
    # Columns that only describe (education, gender…) are not needed unless the model uses them.
    needed = {c for c, r in roles.items() if r != "ignore" and c in raw.columns
              and (r not in CATEGORY_ROLES or c in categories)}
    if "household_size" in ff.model:
        needed |= {c for c, r in roles.items() if r == "marital_status"}
    # The key may be any text or number in the next export; only its presence matters.
    kinds = {c: ("any" if roles[c] == "id" else "date" if c in schema.date_columns
                 else _kind(raw[c])) for c in sorted(needed)}
    return {
        "format": FORMAT,
        "reportgen": __version__,
        "run_id": run_id,
        "config": cfg.to_dict(),
        "schema": schema.to_dict(),
        "cleaning": cleaned.decisions.to_dict(),
        "features": ff.decisions().to_dict(),
        "columns": kinds,
        "csv_features": [c for c in ff.frame.columns if c in set(ff.model) | {ff.value}],
        "scaling": seg.scaler.to_dict(),
        "algorithm": "kmeans" if seg.algorithm == "kmeans-sample" else seg.algorithm,
        "categorical": list(seg.categorical),
        "model": seg.model,
        "order": [int(c) for c in seg.order],
        "segment_ids": [int(i) for i in (segment_ids or range(1, len(seg.order) + 1))],
        "names": {str(k): v for k, v in names.items()},
    }


def dump(bundle: dict[str, Any], path: Path) -> None:
    import skops.io

    skops.io.dump(bundle, path)


def load_bundle(run_dir: str | Path) -> dict[str, Any]:
    """Read RUN_DIR/model.skops (or the file itself), trusting only known types."""
    import skops.io

    path = Path(run_dir)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise ModelError("no model file here", file=str(path),
                         hint="give the folder of a `reportgen run` (it writes model.skops)")
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
        unknown = [t for t in untrusted if t not in TRUSTED]
        if unknown:
            raise ModelError(f"the model file contains types reportgen does not trust: "
                             f"{', '.join(unknown)}", file=str(path),
                             hint="only load model files written by `reportgen run`")
        bundle = skops.io.load(path, trusted=[t for t in untrusted if t in TRUSTED])
    except ModelError:
        raise
    except Exception as exc:  # a corrupt or foreign file: say so, do not crash
        raise ModelError(f"cannot read the model file ({exc.__class__.__name__}: {exc})",
                         file=str(path)) from None
    if not isinstance(bundle, dict) or not isinstance(bundle.get("format"), int):
        raise ModelError("not a reportgen model file", file=str(path))
    if bundle["format"] != FORMAT:
        older = bundle["format"] < FORMAT
        raise ModelError(
            f"the model file was written by reportgen {bundle.get('reportgen', '?')} (model "
            f"format {bundle['format']}); this reportgen reads format {FORMAT}", file=str(path),
            hint="run `reportgen run` again on the table of that run to write a current model"
            if older else "score with the reportgen version that wrote it")
    return bundle


@dataclass(frozen=True)
class Model:
    """A run's fitted pipeline, read back from model.skops: what it takes to put new customers
    where that run put them, with nothing inferred again from the new table."""

    run_id: str
    config: Config  # the run's config
    schema: Schema  # the run's column roles
    cleaning: CleaningDecisions
    features: FeatureDecisions
    columns: dict[str, str]  # column -> kind a table must give: number, date, text, any
    csv_features: tuple[str, ...]  # feature columns of segments.csv
    scaling: Scaling
    algorithm: str
    categorical: tuple[str, ...]  # category columns k-prototypes clusters on
    estimator: Any  # the fitted scikit-learn (or kmodes) estimator
    order: tuple[int, ...]  # order[i]: the estimator's cluster of the i-th segment
    names: dict[int, str]  # segment id -> persona name
    # segment_ids[i]: the id of the i-th segment (1..k, or the ids a series kept for them)
    segment_ids: tuple[int, ...] = ()

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any]) -> Model:
        from .config import _build, validate

        return cls(
            run_id=bundle["run_id"],
            config=validate(_build(Config, bundle["config"], "", None)),
            schema=Schema.from_dict(bundle["schema"]),
            cleaning=CleaningDecisions.from_dict(bundle["cleaning"]),
            features=FeatureDecisions.from_dict(bundle["features"]),
            columns=dict(bundle["columns"]),
            csv_features=tuple(bundle["csv_features"]),
            scaling=Scaling.from_dict(bundle["scaling"]),
            algorithm=bundle["algorithm"],
            categorical=tuple(bundle["categorical"]),
            estimator=bundle["model"],
            order=tuple(int(c) for c in bundle["order"]),
            names={int(k): v for k, v in bundle["names"].items()},
            # written before series existed: segments 1..k
            segment_ids=tuple(int(i) for i in bundle.get("segment_ids") or
                              range(1, len(bundle["order"]) + 1)),
        )

    def apply(self, frame: pd.DataFrame, file: str | None = None,
              as_of: dt.date | Literal["data"] | None = None, *,
              notes: Sequence[CleaningStep] = (), snapshot: bool = False) -> Applied:
        """Clean, build features and assign segments with the run's decisions and model.

        as_of: None = the run's (scoring: ages as the report measured them); "data" = the
        latest date of this table (a new period of a series); or a date. notes: the loader's
        lines for the cleaning log; snapshot: leave out who signed up after as_of (a series
        period made with --as-of).
        """
        schema = self.schema.for_columns(frame.columns)
        cleaned = clean(frame, schema, self.config, file=file, notes=notes,
                        decisions=self.cleaning, as_of=as_of, snapshot=snapshot)
        ff = build_features(cleaned, schema, self.config, file=file, decisions=self.features)
        return Applied(schema=schema, cleaned=cleaned, features=ff,
                       labels=self.assign(ff, cleaned, file))

    def assign(self, ff: FeatureFrame, cleaned: Cleaned, file: str | None = None
               ) -> np.ndarray:
        """Segment id of each row of ff with the run's scaling and estimator (1..k, or the
        ids its series gave the segments)."""
        x = ff.matrix(list(self.scaling.features))
        if not np.isfinite(x).all():
            raise InputError("the model features of some customers are not finite", file=file)
        cats = None
        if self.algorithm == "kprototypes":
            cats = cleaned.frame.loc[ff.frame.index, list(self.categorical)] \
                .astype("string").fillna("Unknown").to_numpy(dtype=object)
        return self.assign_matrix(x, cats)

    def assign_matrix(self, x: np.ndarray, cats: np.ndarray | None = None) -> np.ndarray:
        """Segment id of each row of x, the model's features (finite) in the scaling's
        order; cats: the category columns of k-prototypes."""
        from threadpoolctl import threadpool_limits

        from .algorithms import predict_labels, segment_ids

        z = self.scaling.transform(x)
        with threadpool_limits(limits=1):
            raw = predict_labels(self.algorithm, self.estimator, z, cats)
        labels = segment_ids(raw, list(self.order))  # 1..k
        if self.segment_ids and list(self.segment_ids) != list(range(1, len(self.order) + 1)):
            ids = np.asarray((0, *self.segment_ids), dtype=labels.dtype)
            labels = ids[labels]
        return labels


@dataclass(frozen=True)
class Applied:
    """A table cleaned, featured and assigned with a saved model."""

    schema: Schema  # the model's schema on this table's columns
    cleaned: Cleaned  # cleaned with the model's decisions (cleaned.log says what was done)
    features: FeatureFrame  # built with the model's feature decisions
    labels: np.ndarray  # segment id per row of features.frame


def load_model(run_dir: str | Path) -> Model:
    """The fitted pipeline of a run: RUN_DIR/model.skops (or the file itself)."""
    bundle = load_bundle(run_dir)
    try:
        return Model.from_bundle(bundle)
    except (KeyError, TypeError, ValueError) as exc:  # a damaged bundle: say so
        path = Path(run_dir)
        raise ModelError(f"the model file is incomplete ({exc.__class__.__name__}: {exc})",
                         file=str(path / MODEL_FILE if path.is_dir() else path)) from None


def check_columns(frame: pd.DataFrame, model: Model, file: str) -> None:
    """Refuse a table that lacks a column the model needs or whose kind changed."""
    missing = [c for c in model.columns if c not in frame.columns]
    changed = []
    formats = model.cleaning.date_formats
    for column, kind in model.columns.items():
        if column not in frame.columns:
            continue
        s = frame[column]
        values = s.dropna()
        if values.empty:
            continue
        if kind == "number" and not pd.api.types.is_numeric_dtype(s):
            text = values.astype(str).str.strip().str.replace(r"[,$€£\s]", "", regex=True)
            ok = pd.to_numeric(text, errors="coerce").notna().mean()
            if ok < NUMBER_SHARE:
                example = values.astype(str)[pd.to_numeric(text, errors="coerce").isna()].iloc[0]
                changed.append(f"{column} (was numbers, now text such as {example[:20]!r})")
        elif kind == "date" and not pd.api.types.is_datetime64_any_dtype(s):
            fmt = formats.get(column)
            if fmt:
                parsed = pd.to_datetime(values.astype(str).str.strip(), format=fmt,
                                        errors="coerce")
                if parsed.notna().mean() < NUMBER_SHARE:
                    changed.append(f"{column} (dates are no longer {fmt}, e.g. "
                                   f"{str(values.iloc[0])[:20]!r})")
    if missing or changed:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if changed:
            parts.append(f"changed {', '.join(changed)}")
        raise ModelError(f"the table does not match the model of run {model.run_id}: "
                         f"{'; '.join(parts)}", file=file,
                         hint="score a table with the same columns as the one the run segmented")


@dataclass(frozen=True)
class Scored:
    frame: pd.DataFrame  # the input table
    key: str
    kept_index: pd.Index
    labels: np.ndarray  # segment id per kept row
    excluded: pd.Series
    features: pd.DataFrame  # the CSV's feature columns for kept rows
    names: dict[int, str]
    run_id: str


def score(frame: pd.DataFrame, model: Model, file: str) -> Scored:
    """Segment ids for the customers of frame, with the run's cleaning, features and model."""
    check_columns(frame, model, file)
    applied = model.apply(frame, file)
    for step in applied.cleaned.log:
        log.debug("cleaning %s: %s (%d rows): %s", step.column, step.action, step.rows,
                  step.detail)
    ff = applied.features
    csv_features = [c for c in model.csv_features if c in ff.frame.columns]
    return Scored(frame=frame, key=applied.cleaned.key, kept_index=ff.frame.index,
                  labels=applied.labels, excluded=applied.cleaned.excluded,
                  features=ff.frame[csv_features], names=dict(model.names), run_id=model.run_id)
