"""Which column plays which role: inferred from names and values, overridden by the config."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import pandas as pd

from .errors import ConfigError

# role -> what it means (shown in the data dictionary and `reportgen validate`)
ROLES: dict[str, str] = {
    "id": "customer key; kept in segments.csv, never a feature",
    "birth_year": "year of birth; gives age at as_of",
    "age": "age in years",
    "gender": "gender",
    "education": "education level",
    "marital_status": "marital status",
    "income": "household or personal income",
    "signup_date": "date the customer joined; gives tenure",
    "recency": "days since the last purchase",
    "spend": "money spent (one column per product category, or a total)",
    "purchases": "number of purchases (one column per channel, or a total)",
    "deals": "purchases made with a discount",
    "visits": "visits to the website or store",
    "children": "children or teenagers at home",
    "campaign": "accepted a marketing campaign (0/1)",
    "complaint": "complained (0/1)",
    "score": "a spending or loyalty score",
    "numeric": "other numeric behaviour",
    "categorical": "other category",
    "ignore": "not used (constant, free text, or a key-like column)",
}

# Ordered: the first pattern that matches a normalised column name wins.
_NAME_RULES: list[tuple[str, str]] = [
    ("id", r"^(customer|cust|client|member|user|account)?_?(id|no|nr|number|key|code)$"),
    ("birth_year", r"(year_?(of_?)?birth|birth_?year|^yob$|^born|geburtsjahr)"),
    ("age", r"^(age|edad|alter|age_?years?|customer_?age)$"),
    ("gender", r"^(gender|genre|sex|geschlecht|sexe|genero)$"),
    ("education", r"(education|edu_?level|degree|bildung)"),
    ("marital_status", r"(marital|civil_?status|relationship)"),
    ("signup_date", r"(^dt_?customer$|sign_?up|join|enrol|registration|customer_?since|^since$"
                    r"|created|start_?date|first_?purchase|tenure_?date)"),
    ("income", r"(income|salary|earnings|einkommen|ingreso|revenu)"),
    ("recency", r"(recency|days_?since|last_?purchase)"),
    ("deals", r"(deal|discount|promo|coupon)"),
    ("score", r"(score|rating)"),
    ("spend", r"(^mnt|^amt|amount|spend|spent|^sales|monetary|purchases_?amount)"),
    ("purchases", r"(purchases|orders|transactions|^num_.*(buy|purchase))"),
    ("visits", r"(visit|session)"),
    ("children", r"(kid|child|teen|minor)"),
    ("campaign", r"(accepted_?cmp|campaign|^response$|responded|accepted)"),
    ("complaint", r"(complain)"),
]

# Tokens stripped from a column name to get the category/channel it stands for.
_NOISE = {"mnt", "amt", "amount", "spend", "spent", "products", "product", "prods", "prod",
          "num", "purchases", "purchase", "total", "sales", "no", "of", "nb"}
CHANNELS = {"web": "web", "online": "web", "internet": "web", "catalog": "catalog",
            "catalogue": "catalog", "mail": "catalog", "store": "store", "shop": "store",
            "instore": "store", "retail": "store", "app": "app", "mobile": "app", "phone": "phone"}


def normalise(name: str) -> str:
    """'MntWines' -> 'mnt_wines', 'Annual Income (k$)' -> 'annual_income_k'."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _tag(norm: str) -> str:
    tokens = [t for t in norm.split("_") if t and t not in _NOISE]
    return "_".join(tokens) or norm


@dataclass(frozen=True)
class Schema:
    roles: dict[str, str]  # column -> role
    tags: dict[str, str] = field(default_factory=dict)  # column -> category/channel name
    notes: dict[str, str] = field(default_factory=dict)  # column -> why this role
    date_columns: tuple[str, ...] = ()

    def cols(self, role: str) -> list[str]:
        return [c for c, r in self.roles.items() if r == role]

    def col(self, role: str) -> str | None:
        found = self.cols(role)
        return found[0] if found else None


def _is_binary(s: pd.Series) -> bool:
    values = set(pd.unique(s.dropna()))
    return bool(values) and values <= {0, 1, 0.0, 1.0, True, False}


def _looks_like_dates(s: pd.Series) -> bool:
    sample = s.dropna().astype(str).head(200)
    if sample.empty:
        return False
    pattern = r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?$"
    return bool(sample.str.match(pattern).mean() > 0.9)


def infer_role(column: str, s: pd.Series, n_rows: int) -> tuple[str, str]:
    """(role, why) for one column from its name first, then its values."""
    norm = normalise(column)
    non_null = s.dropna()
    nunique = non_null.nunique()
    numeric = pd.api.types.is_numeric_dtype(s)
    if nunique <= 1:
        return "ignore", "constant: the same value in every row" if len(non_null) else "empty column"
    for role, pattern in _NAME_RULES:
        if not re.search(pattern, norm):
            continue
        if role == "id" and nunique < 0.5 * len(non_null):
            continue  # "code" columns that repeat are categories, not keys
        if role == "signup_date" and not _looks_like_dates(s):
            continue
        if role in ("campaign", "complaint") and not (numeric and _is_binary(s)):
            continue
        if role in {"birth_year", "age", "income", "recency", "spend", "purchases", "deals",
                    "visits", "children", "score"} and not numeric:
            continue
        return role, f"name matches {role.replace('_', ' ')}"
    if not numeric and _looks_like_dates(s):
        return "signup_date", "values are dates"
    if numeric:
        return "numeric", "numeric values"
    if nunique <= max(20, int(0.05 * n_rows)):
        return "categorical", f"{nunique} distinct values"
    return "ignore", f"free text: {nunique} distinct values"


def infer_schema(frame: pd.DataFrame, overrides: dict[str, str], file: str | None = None) -> Schema:
    """Give every column a role; config overrides win and are checked against the table."""
    for column, role in overrides.items():
        if column not in frame.columns:
            close = difflib.get_close_matches(column, list(frame.columns), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "check [columns] in the config"
            raise ConfigError(f"configured column {column!r} is not in the table", file=file,
                              hint=hint)
        if role not in ROLES:
            close = difflib.get_close_matches(role, list(ROLES), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"roles: {', '.join(ROLES)}"
            raise ConfigError(f"unknown role {role!r} for column {column!r}", file=file, hint=hint)
    roles: dict[str, str] = {}
    notes: dict[str, str] = {}
    tags: dict[str, str] = {}
    for column in frame.columns:
        if column in overrides:
            roles[column], notes[column] = overrides[column], "set in the config"
        else:
            roles[column], notes[column] = infer_role(column, frame[column], len(frame))
        norm = normalise(column)
        if roles[column] in ("spend", "purchases"):
            tag = _tag(norm)
            tags[column] = CHANNELS.get(tag, tag) if roles[column] == "purchases" else tag
    # One key, one birth year, one income, one signup date: extra candidates become plain numbers.
    for single in ("id", "birth_year", "age", "income", "signup_date", "recency", "gender"):
        found = [c for c, r in roles.items() if r == single]
        for extra in found[1:]:
            roles[extra] = "numeric" if pd.api.types.is_numeric_dtype(frame[extra]) else "ignore"
            notes[extra] = f"a second {single.replace('_', ' ')} column; {found[0]!r} is used"
    dates = tuple(c for c, r in roles.items() if r == "signup_date")
    return Schema(roles=roles, tags=tags, notes=notes, date_columns=dates)
