"""Score new customers with a saved run: the fitted pipeline in ``model.skops``.

The file holds plain data (dicts, lists, NumPy arrays) and scikit-learn estimators, written with
skops and read back with an explicit list of trusted types: nothing in it can run code on load,
unlike a pickle. What it holds:

- how to rebuild the features: the column roles (schema), the config of the run, as_of, the date
  format, the training medians that fill blanks, which columns must be there and their kind;
- the model: the scaling (centre, scale, log1p per feature), the fitted estimator, the order that
  maps its clusters to segment ids, and the persona names.

Scoring runs the same cleaning and feature code as ``reportgen run``, with the run's roles,
config and as_of, so a customer scored later lands where the report would have put them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .config import jsonable
from .errors import InputError, ModelError
from .schema import CATEGORY_ROLES

log = logging.getLogger("reportgen")

MODEL_FILE = "model.skops"
FORMAT = 1
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


def build_bundle(*, cfg: Any, schema: Any, raw: pd.DataFrame, cleaned: Any, ff: Any, seg: Any,
                 categories: list[str], names: dict[int, str], run_id: str) -> dict[str, Any]:
    """Everything `reportgen score` needs, as plain data plus the fitted estimator."""
    from .clean import infer_date_format

    roles = dict(schema.roles)
    # Columns that only describe (education, gender…) are not needed unless the model uses them.
    needed = {c for c, r in roles.items() if r != "ignore" and c in raw.columns
              and (r not in CATEGORY_ROLES or c in categories)}
    if "household_size" in ff.model:
        needed |= {c for c, r in roles.items() if r == "marital_status"}
    # The key may be any text or number in the next export; only its presence matters.
    kinds = {c: ("any" if roles[c] == "id" else "date" if c in schema.date_columns
                 else _kind(raw[c])) for c in sorted(needed)}
    formats = {}
    for c in schema.date_columns:
        if c in raw.columns and not pd.api.types.is_datetime64_any_dtype(raw[c]):
            with contextlib.suppress(InputError):  # unreadable dates: clean said so already
                formats[c] = cfg.input.date_format or infer_date_format(raw[c], c, None)
    frame = cleaned.frame
    medians: dict[str, float] = {}
    for c in sorted(needed):
        if roles[c] != "id" and c in frame.columns and pd.api.types.is_numeric_dtype(frame[c]) and \
                not pd.api.types.is_bool_dtype(frame[c]) and frame[c].notna().any():
            medians[c] = float(frame[c].median())
    median_dates = {c: frame[c].dropna().sort_values().iloc[len(frame[c].dropna()) // 2]
                    .isoformat() for c in schema.date_columns
                    if c in frame.columns and frame[c].notna().any()}
    return {
        "format": FORMAT,
        "reportgen": __version__,
        "run_id": run_id,
        "config": cfg.to_dict(),
        "schema": jsonable(dataclasses.asdict(schema)),
        "key": cleaned.key,
        "as_of": cleaned.as_of.isoformat() if cleaned.as_of else "",
        "date_formats": formats,
        "columns": kinds,
        "medians": medians,
        "median_dates": median_dates,
        "features": list(ff.model),
        "csv_features": [c for c in ff.frame.columns if c in set(ff.model) | {ff.value}],
        "value": ff.value or "",
        "scaling": seg.scaler.to_dict(),
        "algorithm": "kmeans" if seg.algorithm == "kmeans-sample" else seg.algorithm,
        "categorical": list(seg.categorical),
        "model": seg.model,
        "order": [int(c) for c in seg.order],
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
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise ModelError("not a reportgen model file (or one from an incompatible version)",
                         file=str(path))
    return bundle


def check_columns(frame: pd.DataFrame, bundle: dict[str, Any], file: str) -> None:
    """Refuse a table that lacks a column the model needs or whose kind changed."""
    missing = [c for c in bundle["columns"] if c not in frame.columns]
    changed = []
    for column, kind in bundle["columns"].items():
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
            fmt = bundle["date_formats"].get(column)
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
        raise ModelError(f"the table does not match the model of run {bundle['run_id']}: "
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


def score(frame: pd.DataFrame, bundle: dict[str, Any], file: str) -> Scored:
    """Segment ids for the customers of frame, with the run's cleaning, features and model."""
    from .algorithms import predict_labels, segment_ids
    from .clean import clean
    from .config import Config, _build, validate
    from .features import build_features
    from .scaling import Scaling
    from .schema import Schema

    check_columns(frame, bundle, file)
    cfg = validate(_build(Config, bundle["config"], "", None))
    as_of = dt.date.fromisoformat(bundle["as_of"]) if bundle["as_of"] else None
    formats = set(bundle["date_formats"].values())
    cfg = dataclasses.replace(
        cfg,
        report=dataclasses.replace(cfg.report, as_of=as_of),
        input=dataclasses.replace(
            cfg.input, date_format=formats.pop() if len(formats) == 1 else cfg.input.date_format),
    )
    schema = _schema_for(frame, bundle["schema"], Schema)
    cleaned = clean(frame, schema, cfg, file=file)
    # Blanks get the medians the run learned, not the medians of this (maybe small) batch.
    kept = cleaned.frame.index
    for column, median in bundle["medians"].items():
        if column in frame.columns:
            blank = frame.loc[kept, column].isna().to_numpy()
            if blank.any():
                cleaned.frame.loc[kept[blank], column] = median
    for column, iso in bundle["median_dates"].items():
        if column in frame.columns:
            blank = frame.loc[kept, column].isna().to_numpy()
            if blank.any():
                cleaned.frame.loc[kept[blank], column] = pd.Timestamp(iso)
    ff = build_features(cleaned, schema, cfg)
    lacking = [f for f in bundle["features"] if f not in ff.frame.columns]
    if lacking:
        raise ModelError(f"the table does not give the model's features {', '.join(lacking)}",
                         file=file, hint="score a table with the same columns as the run's")
    x = ff.frame[bundle["features"]].to_numpy(dtype="float64")
    if not np.isfinite(x).all():
        raise InputError("the model features of some customers are not finite", file=file)
    z = Scaling.from_dict(bundle["scaling"]).transform(x)
    cats = None
    if bundle["algorithm"] == "kprototypes":
        cats = cleaned.frame.loc[ff.frame.index, bundle["categorical"]] \
            .astype("string").fillna("Unknown").to_numpy(dtype=object)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        raw = predict_labels(bundle["algorithm"], bundle["model"], z, cats)
    csv_features = [c for c in bundle["csv_features"] if c in ff.frame.columns]
    return Scored(frame=frame, key=cleaned.key, kept_index=ff.frame.index,
                  labels=segment_ids(raw, bundle["order"]),
                  excluded=cleaned.excluded, features=ff.frame[csv_features],
                  names={int(k): v for k, v in bundle["names"].items()},
                  run_id=bundle["run_id"])


def _schema_for(frame: pd.DataFrame, stored: dict[str, Any], schema_cls: type) -> Any:
    """The run's schema restricted to this table's columns; extra columns are ignored."""
    fields = {f.name: f for f in dataclasses.fields(schema_cls)}
    kwargs: dict[str, Any] = {}
    present = set(frame.columns)
    for name, value in stored.items():
        if name not in fields:
            continue
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k in present}
        elif isinstance(value, (list, tuple)) and name.endswith("columns"):
            value = tuple(v for v in value if v in present)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    roles = kwargs.get("roles", {})
    for column in frame.columns:
        roles.setdefault(column, "ignore")
    kwargs["roles"] = {c: roles[c] for c in frame.columns}
    return schema_cls(**kwargs)
