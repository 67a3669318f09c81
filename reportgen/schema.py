"""Which column plays which role: inferred from names and values, overridden by the config.

Names are matched case-, space- and underscore-insensitively ('Annual Income (k$)' and
'annual_income' both read 'annual_income_k' / 'annual_income'), with a few common
abbreviations and other languages' words. A name only gives a role when the values fit it (an
'age' column of text is not an age); otherwise the values decide: dates, yes/no, numbers,
a few categories, or free text (ignored, and said so).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError

# role -> what it means (shown in the data dictionary, `reportgen validate` and `init`)
ROLES: dict[str, str] = {
    "id": "customer key; kept in segments.csv, never a feature",
    "birth_year": "year of birth; gives age at as_of",
    "age": "age in years",
    "gender": "gender",
    "education": "education level",
    "marital_status": "marital status",
    "income": "household or personal income",
    "signup_date": "date the customer joined; gives tenure",
    "tenure": "time as a customer, as a number of months (or years, if the name says so)",
    "recency": "days since the last purchase",
    "spend": "money spent (one column per product category, or a total)",
    "monthly_spend": "amount billed per month (subscriptions, telecom)",
    "purchases": "number of purchases (one column per channel, or a total)",
    "deals": "purchases made with a discount",
    "visits": "visits to the website or store",
    "balance": "account balance (what the customer owes or holds)",
    "credit_limit": "credit limit",
    "cash_advance": "cash withdrawn on credit",
    "payments": "money the customer paid",
    "rate": "a share or frequency between 0 and 1 (e.g. purchase frequency, share paid in full)",
    "children": "children, teenagers or dependents at home",
    "campaign": "accepted a marketing campaign (0/1)",
    "complaint": "complained (0/1)",
    "churn": "left or cancelled (yes/no or 0/1)",
    "outcome": "an outcome to explain, never to segment by: subscribed (y), converted, in "
               "default (yes/no or 0/1)",
    "loan": "holds a loan or mortgage (yes/no)",
    "flag": "another yes/no attribute",
    "score": "a spending or loyalty score",
    "rating": "a review or satisfaction rating: how the customer judged us, not what they spent",
    "duration": "time spent (session length, minutes on the app or site): not a count of visits",
    "numeric": "other numeric behaviour",
    "categorical": "other category",
    "ignore": "not used (constant, free text, or a key-like column)",
}

# Roles whose values must be numbers; amounts of money among them.
NUMERIC_ROLES = {"birth_year", "age", "income", "tenure", "recency", "spend", "monthly_spend",
                 "purchases", "deals", "visits", "balance", "credit_limit", "cash_advance",
                 "payments", "rate", "children", "score", "rating", "duration", "numeric"}
MONEY_ROLES = ("income", "spend", "monthly_spend", "balance", "credit_limit", "cash_advance",
               "payments")
# Roles of yes/no columns: "Yes"/"No", "true"/"false" and 0/1 are all read as 1/0.
BINARY_ROLES = {"campaign", "complaint", "churn", "flag", "outcome", "loan"}
# One column per table for these; further candidates become plain numbers.
SINGLE_ROLES = ("id", "birth_year", "age", "income", "signup_date", "tenure", "recency",
                "gender", "monthly_spend", "balance", "credit_limit", "cash_advance",
                "payments", "churn")
CATEGORY_ROLES = ("gender", "education", "marital_status", "categorical")

# Product categories seen in retail and wholesale tables: a numeric column named after one is
# money spent on it (the "Wholesale customers" table has Fresh, Milk, Grocery, Frozen...).
_PRODUCTS = (r"fresh|milk|dairy|grocery|groceries|frozen|detergents?(_paper)?|paper|deli|"
             r"delicassen|delicatessen|wines?|meat|fish|seafood|fruits?|vegetables|sweets?|"
             r"bakery|beverages?|drinks|electronics|clothing|apparel|shoes|beauty|toys|books|"
             r"furniture|household|gold")
_CODES = (r"channel|region|segment|type|class|category|group|area|zone|city|state|country|"
          r"province|plan|contract|tier|branch|store|shop|language|occupation|job|profession|"
          r"payment_?method|internet_?service|service|product")

# Ordered: the first pattern that matches a normalised column name, and whose values fit the
# role, wins.
_NAME_RULES: list[tuple[str, str]] = [
    ("id", r"^(customer|cust|client|member|user|account|acct|kunden|cliente)?_?"
           r"(id|no|nr|number|key|code|nummer)$|^(unnamed_\d+|index|idx|row_?id)$"
           r"|^(customer|cust|client|member|account|acct)_?(num|nr)$"),
    ("birth_year", r"(year_?(of_?)?birth|birth_?year|^yob$|^born|geburtsjahr|annee_?naissance)"),
    ("age", r"^(age|edad|alter|eta|idade|age_?years?|customer_?age|client_?age)$"),
    ("gender", r"^(gender|genre|sex|geschlecht|sexe|genero|sexo)$"),
    ("education", r"(education|edu_?level|degree|bildung|schooling)"),
    ("marital_status", r"(marital|civil_?status|relationship|familienstand)"),
    ("signup_date", r"(^dt_?customer$|sign_?up|join|enrol|registration|customer_?since|^since$"
                    r"|created|start_?date|first_?purchase|tenure_?date|open_?date|opened)"),
    ("churn", r"(churn|attrition|^exited$|^cancell?ed$|^is_?churn)"),
    ("complaint", r"(complain)"),
    ("campaign", r"(accepted_?cmp|campaign|^response$|responded|accepted)"),
    ("rating", r"(rating|satisfaction|review_?score|^stars?$|^nps$|^csat)"),
    ("duration", r"(session_?(length|duration|time|minutes)|time_?on_?(app|web|site|website)"
                 r"|time_?spent|minutes|_mins?$|^mins?_|seconds|_secs?$|^duration$"
                 r"|(call|visit)_?duration)"),
    # After campaign: the bundled sample's Response is its last campaign's answer.
    ("outcome", r"^(y|subscribed|subscription|deposit|term_?deposit|converted|conversion"
                r"|default|defaulted|in_?default|has_?default|is_?default)$"),
    ("loan", r"^(housing|loans?|personal_?loan|housing_?loan|home_?loan|car_?loan|mortgage"
             r"|has_?(a_?)?(loan|mortgage)|credit_?card_?loan)$"),
    ("rate", r"(frequency|_freq$|^freq_|^prc_|^pct_|_pct$|percent|_ratio$|^ratio_|_rate$"
             r"|^rate_|proportion|share_of)"),
    ("numeric", r"cash_?adv\w*_(trx|txn|count|num|n)$"),
    ("cash_advance", r"cash_?adv"),
    ("credit_limit", r"(credit_?limit|credit_?line|^limit$|card_?limit|^limit_)"),
    ("balance", r"(^balance$|^bal$|_balance$|^balance_(amount|due|owed)$|^account_?balance"
                r"|outstanding)"),
    ("payments", r"(^payments?$|^total_?payments?$|^payments?_?(amount|made)$|amount_?paid"
                 r"|^paid_?amount$)"),
    ("monthly_spend", r"(monthly_?(charges?|fee|bill|spend|payment|amount|revenue)"
                      r"|^mrr$|^arpu$|per_?month$|^monthly$)"),
    ("tenure", r"(^tenure|tenure$|tenure_?(months?|years?)$|months?_?(as|with)_?(customer|us)"
               r"|^months?_?on_?book|^customer_?months|^years_?with|^months_?active$"
               r"|length_?of_?membership|^membership_?(length|years|months|duration)$"
               r"|^antiguedad)"),
    ("income", r"(income|salary|earnings|einkommen|ingreso|revenu|salaire|wage)"),
    ("recency", r"(recency|days_?since|last_?purchase|last_?order_?days)"),
    ("deals", r"(deal|discount|promo|coupon)"),
    ("score", r"score"),
    ("spend", r"(^mnt|^amt|amount|spend|spent|^sales|monetary|purchases_?amount|charges?$"
              r"|^total_?charges?|revenue|turnover|^bill|^clv$|^ltv$|lifetime_?value"
              r"|^(" + _PRODUCTS + r")(_\w+)?$)"),
    ("purchases", r"(purchases|orders|transactions|_trx$|^trx|_txn$|^num_.*(buy|purchase)"
                  r"|^frequency$)"),
    ("visits", r"(visit|session)"),
    ("children", r"(kid|child|teen|minor|dependents?$|kinder|enfants|hijos)"),
    ("categorical", r"^(" + _CODES + r")(_?(id|code|type|name))?$"),
]

# Columns left out whatever their values, with the reason: a label an earlier model gave
# (segmenting on it would rebuild the old segments), RFM scores or letters (a summary of
# recency, frequency and spend already there: counted twice, and "f 3 vs 2.0" is no trait).
_LEFT_OUT: list[tuple[str, str]] = [
    (r"(cluster|^k_?means|^segment_?(label|id|no|nr|number)$|^persona$|^labels?$"
     r"|^predicted_?(segment|cluster|group)|^old_?segment)",
     "an earlier segmentation's label: left out so the new segments are not built from the old"),
    (r"(^rfm|_rfm$|_rfm_|^(r|f|m)$|^(r|f|m)_?(score|quartile|quintile|rank|segment|group|class)$"
     r"|^(recency|frequency|monetary)_?(score|quartile|quintile|rank|segment|group|class)$)",
     "an earlier RFM score or group: a summary of recency, frequency and spend, left out of "
     "the features"),
]
# A bank-marketing table: these describe the last call of a campaign (how and when the bank
# rang, how long the call lasted, how often it tried), not the customer. Recognised when the
# table has one of the telling columns (pdays, poutcome, contact).
_CONTACT_SIGNS = {"pdays", "poutcome", "contact"}
_CONTACT = {"contact", "contact_type", "day", "day_of_week", "month", "duration", "campaign",
            "pdays", "previous", "poutcome"}
CONTACT_NOTE = ("about the bank's last marketing contact (call type, day, length, attempts), "
                "not a customer trait: left out of the segments")
# One purchase's amount (a survey's "Purchase Amount") and purchases made before it ("Previous
# Purchases"): the amount is not the total of those purchases, so no average basket from them.
_ONE_AMOUNT = r"^(purchase|order|transaction|ticket|basket|last_?purchase)_?(amount|value|total)"
PRIOR = r"(previous|prior|^past|earlier|before)"

# Tokens stripped from a column name to get the category/channel it stands for.
_NOISE = {"mnt", "amt", "amount", "spend", "spent", "products", "product", "prods", "prod",
          "num", "purchases", "purchase", "total", "sales", "no", "of", "nb"}
CHANNELS = {"web": "web", "online": "web", "internet": "web", "catalog": "catalog",
            "catalogue": "catalog", "mail": "catalog", "store": "store", "shop": "store",
            "instore": "store", "retail": "store", "app": "app", "mobile": "app", "phone": "phone"}
# Category names that read better spelled out or with a typo fixed ("Delicassen").
_CANONICAL_TAGS = {"delicassen": "deli", "delicatessen": "deli", "oneoff": "one_off",
                   "installments": "instalments", "installment": "instalments",
                   "detergents_paper": "household", "detergent": "household",
                   "detergents": "household", "groceries": "grocery", "fruit": "fruits",
                   "sweet": "sweets", "wine": "wines"}

# Column names that say money is counted in thousands (or millions).
_THOUSANDS = re.compile(r"\(\s*k\s*[$€£¥]?\s*\)|\bk\s*[$€£¥]|[$€£¥]\s*k\b|thousand|'000|\b000s\b"
                        r"|_000$|\bin\s*k\b|\bkusd\b|\bkeur\b", re.I)
_MILLIONS = re.compile(r"\(\s*m\s*[$€£¥]?\s*\)|\bm\s*[$€£¥]|[$€£¥]\s*m\b|million|\bmn\b|\bmio\b",
                       re.I)

YES = {"yes", "y", "true", "t", "1", "1.0", "si", "sí", "ja", "oui", "x"}
NO = {"no", "n", "false", "f", "0", "0.0", "nein", "non"}
_SAMPLE = 2000


def normalise(name: str) -> str:
    """'MntWines' -> 'mnt_wines', 'Annual Income (k$)' -> 'annual_income_k'."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _tag(norm: str) -> str:
    tokens = [t for t in norm.split("_") if t and t not in _NOISE]
    tag = "_".join(tokens) or norm
    return _CANONICAL_TAGS.get(tag, tag)


@dataclass(frozen=True)
class Schema:
    roles: dict[str, str]  # column -> role
    tags: dict[str, str] = field(default_factory=dict)  # column -> category/channel name
    notes: dict[str, str] = field(default_factory=dict)  # column -> why this role
    date_columns: tuple[str, ...] = ()
    # role -> the column that is the sum of the role's other columns (e.g. PURCHASES =
    # ONEOFF_PURCHASES + INSTALLMENTS_PURCHASES): used as the total, never added again.
    totals: dict[str, str] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)  # column -> factor (k$ → × 1000)

    def cols(self, role: str) -> list[str]:
        return [c for c, r in self.roles.items() if r == role]

    def col(self, role: str) -> str | None:
        found = self.cols(role)
        return found[0] if found else None

    def to_dict(self) -> dict[str, Any]:
        from .config import jsonable

        return jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        return cls(roles=dict(data["roles"]), tags=dict(data["tags"]), notes=dict(data["notes"]),
                   date_columns=tuple(data["date_columns"]), totals=dict(data["totals"]),
                   scales={c: float(f) for c, f in data["scales"].items()})

    def for_columns(self, columns: Iterable[str]) -> Schema:
        """This schema on another table with these columns, without inferring anything: a
        column the schema does not know is ignored, one the table lacks is left out; the
        schema's own column order is kept (it orders sums and features)."""
        present = list(dict.fromkeys(columns))
        have = set(present)
        roles = {c: r for c, r in self.roles.items() if c in have}
        notes = {c: n for c, n in self.notes.items() if c in have}
        for column in present:
            if column not in roles:
                roles[column] = "ignore"
                notes[column] = "not in the table the schema was made for"
        return Schema(roles=roles,
                      tags={c: t for c, t in self.tags.items() if c in have},
                      notes=notes,
                      date_columns=tuple(c for c in self.date_columns if c in have),
                      totals={r: c for r, c in self.totals.items() if c in have},
                      scales={c: f for c, f in self.scales.items() if c in have})


# values -----------------------------------------------------------------------------------

def as_numbers(s: pd.Series) -> pd.Series:
    """Numbers from a column that may hold text: '1,234.5', '$12', ' 7 ', '12,5' → floats;
    what is not a number → NaN. Infinite values stay (the cleaning stage deals with them)."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf":
        return s.astype("float64")  # what to_numeric would give, without its pass
    if pd.api.types.is_numeric_dtype(s):
        return pd.to_numeric(s, errors="coerce").astype("float64")
    if pd.api.types.is_datetime64_any_dtype(s):
        return pd.Series(np.nan, index=s.index)
    text = s.astype("string").str.strip()
    plain = pd.to_numeric(text, errors="coerce").astype("float64")
    todo = plain.isna() & text.notna() & (text != "")
    if not todo.any():
        return plain
    # Only what plain parsing could not read goes through the slower clean-ups.
    raw = text
    text = text[todo]
    text = text.str.replace(_CURRENCY, "", regex=True)
    text = text.str.replace(r"(?<=\d)[ '\u00a0\u202f](?=\d{3}\b)", "", regex=True)
    thousands = text.str.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?").fillna(False)
    text = text.where(~thousands, text.str.replace(",", "", regex=False))
    euro = text.str.fullmatch(r"[-+]?\d{1,3}(\.\d{3})+(,\d+)?").fillna(False)
    text = text.where(~euro, text.str.replace(".", "", regex=False))
    decimal_comma = text.str.fullmatch(r"[-+]?\d+,\d+").fillna(False)
    text = text.where(~decimal_comma, text.str.replace(",", ".", regex=False))
    # 67k, 1.2M: thousands and millions written as a suffix
    suffix = text.str.extract(r"^([-+]?\d+(?:\.\d+)?)\s*([kKmM])$")
    factor = suffix[1].str.lower().map({"k": 1e3, "m": 1e6}).astype("float64")
    scaled = pd.to_numeric(suffix[0], errors="coerce").astype("float64") * factor
    plain[todo] = pd.to_numeric(text, errors="coerce").astype("float64").fillna(scaled)
    if bool(euro.any() or decimal_comma.any()) and not thousands.any():
        # The column writes 1.234,5: a plain "28.000" in it is 28,000, not 28
        dotted = raw.str.fullmatch(r"[-+]?\d{1,3}(\.\d{3})+").fillna(False) & ~todo
        if dotted.any():
            plain[dotted] = pd.to_numeric(raw[dotted].str.replace(".", "", regex=False),
                                          errors="coerce").astype("float64")
    return plain


# A currency sign or code before or after the number (a % after it): "$ 67,000", "USD 67000",
# "67 000 €", "12%"
_CURRENCY = (r"(?i)^(?:[$€£¥₹]|usd|eur|gbp|chf|jpy|cad|aud|inr|sek|nok|dkk)\s*|"
             r"\s*(?:[$€£¥₹%]|usd|eur|gbp|chf|jpy|cad|aud|inr|sek|nok|dkk)$")


def as_binary(s: pd.Series) -> pd.Series:
    """1/0 from yes/no, true/false, y/n, 1/0 (any case); anything else → NaN."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        v = pd.to_numeric(s, errors="coerce").astype("float64")
        values = v.to_numpy()
        answers = (values == 0.0) | (values == 1.0)  # isin([0.0, 1.0]), unhashed
        return v if answers.all() else v.where(answers)  # no second copy when all answer
    text = s.astype("string").str.strip().str.lower()
    out = pd.Series(np.nan, index=s.index, dtype="float64")
    out[text.isin(YES).fillna(False).to_numpy()] = 1.0
    out[text.isin(NO).fillna(False).to_numpy()] = 0.0
    return out


def _sample(s: pd.Series) -> pd.Series:
    """The first _SAMPLE values that are not missing."""
    if len(s) > 4 * _SAMPLE:  # most often found near the top: no copy of a long column
        head = s.head(4 * _SAMPLE).dropna()
        if len(head) >= _SAMPLE:
            return head.head(_SAMPLE)
    non_null = s.dropna()
    return non_null.head(_SAMPLE) if len(non_null) > _SAMPLE else non_null


def value_kind(s: pd.Series) -> str:
    """numeric, mostly_numeric (text that is ≥ 90% numbers), yesno, date, or text."""
    sample = _sample(s)
    if sample.empty:
        return "empty"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "date"
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return "numeric"
    text = sample.astype(str).str.strip().str.lower()
    answers = text.isin(YES | NO)
    # Yes/no answers, with at most a stray value in ten ("maybe"): the cleaning logs those.
    if answers.mean() >= 0.9 and not set(text[answers]) <= {"1", "0", "1.0", "0.0"} and \
            text[~answers].nunique() <= 2:
        return "yesno"
    if _looks_like_dates(sample):
        return "date"
    if as_numbers(sample).notna().mean() >= 0.9:
        return "mostly_numeric"
    return "text"


def _is_binary(s: pd.Series) -> bool:
    values = set(pd.unique(pd.to_numeric(_sample(s), errors="coerce")))
    return bool(values) and values <= {0.0, 1.0}


def _looks_like_dates(s: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(s):
        return True
    sample = s.dropna().astype(str).str.strip().head(200)
    if sample.empty:
        return False
    pattern = r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?$"
    return bool(sample.str.match(pattern).mean() > 0.9)


def _fractional(s: pd.Series) -> bool:
    v = as_numbers(_sample(s)).dropna()
    v = v[np.isfinite(v)]
    return bool(len(v)) and bool((v != v.round()).mean() > 0.05)


def _fits(role: str, kind: str, s: pd.Series, nunique: int, n: int) -> bool:
    numeric = kind in ("numeric", "mostly_numeric")
    if role == "id":
        return nunique >= 0.5 * n  # "code" columns that repeat are categories, not keys
    if role == "signup_date":
        return kind == "date"
    if role in BINARY_ROLES:
        return kind == "yesno" or (numeric and _is_binary(s))
    if role == "children":
        return kind == "yesno" or numeric
    if role == "rate":
        if not numeric:
            return False
        v = as_numbers(_sample(s)).dropna()
        # A few values just above 1 are rounding or data errors (the cleaning stage says so).
        return bool(len(v)) and v.min() >= 0 and (v <= 1).mean() >= 0.95 and v.max() <= 2 \
            and not _is_binary(s)
    if role in ("gender", "education", "marital_status"):
        return kind != "date" and nunique <= 20
    if role == "categorical":
        return kind != "date" and nunique <= max(20, int(0.05 * n))
    if role in NUMERIC_ROLES:
        return numeric and not (role != "numeric" and _is_binary(s) and role in MONEY_ROLES)
    return True


def infer_role(column: str, s: pd.Series, n_rows: int) -> tuple[str, str]:
    """(role, why) for one column from its name first, then its values."""
    norm = normalise(column)
    non_null = s.dropna()
    if not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_datetime64_any_dtype(s):
        non_null = non_null[non_null.astype(str).str.strip() != ""]
    if non_null.empty:
        return "ignore", "empty column"
    nunique = _distinct_count(non_null)
    if nunique <= 1:
        return "ignore", "constant: the same value in every row"
    for pattern, why in _LEFT_OUT:
        if re.search(pattern, norm):
            return "ignore", why
    kind = value_kind(s)
    for role, pattern in _NAME_RULES:
        if not re.search(pattern, norm):
            continue
        if not _fits(role, kind, s, nunique, len(non_null)):
            continue
        if role == "purchases" and _fractional(s):
            return "spend", "name says purchases, values are amounts of money"
        why = f"name matches {role.replace('_', ' ')}"
        if kind == "mostly_numeric":
            why += " (some values are not numbers)"
        return role, why
    if kind == "date":
        return "signup_date", "values are dates"
    if kind == "yesno" or (kind == "numeric" and _is_binary(s)):
        return "flag", "two values: yes/no"
    if kind in ("numeric", "mostly_numeric"):
        if kind == "numeric" and nunique == len(non_null) and nunique > 20 and \
                _counter(non_null):
            return "ignore", "a row counter (1, 2, 3...)"
        return "numeric", "numeric values" + (" (some are not numbers)"
                                              if kind == "mostly_numeric" else "")
    if nunique <= max(20, int(0.05 * n_rows)):
        return "categorical", f"{nunique} distinct values"
    return "ignore", f"free text: {nunique} distinct values"


def _distinct_count(s: pd.Series) -> int:
    """s.nunique() of a column with no missing value; integers within a range no wider than
    the column are counted by value (np.bincount), which hashes nothing."""
    if isinstance(s.dtype, np.dtype) and len(s) and (
            s.dtype.kind == "i" or s.dtype.kind == "u" and s.dtype.itemsize < 8):
        v = s.to_numpy().astype(np.int64, copy=False)
        low, high = int(v.min()), int(v.max())
        if low >= 0 and high < max(len(v), 1 << 16):  # counted where they are: no v - low
            return int(np.count_nonzero(np.bincount(v)))
        if high - low < max(len(v), 1 << 16):
            return int(np.count_nonzero(np.bincount(v - low)))
    return int(s.nunique())


def _counter(s: pd.Series) -> bool:
    v = pd.to_numeric(s, errors="coerce").to_numpy()
    return len(v) > 1 and bool(np.all(np.diff(v) == 1))


def infer_scale(column: str, role: str) -> float:
    """1000 for money counted in thousands ('Annual Income (k$)'), 1e6 for millions, else 1."""
    if role not in MONEY_ROLES:
        return 1.0
    if _THOUSANDS.search(column):
        return 1000.0
    if _MILLIONS.search(column):
        return 1e6
    return 1.0


def _complete_rows(frame: pd.DataFrame, columns: list[str], n: int) -> pd.DataFrame:
    """The first n rows where every one of columns reads as a number (as_numbers). Numeric
    columns are read row by row, so a long table is read from the top until n rows are
    found; a text column is read whole (as_numbers decides a column's format from all of it)."""
    size = len(frame)
    if all(pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
           for c in columns):
        size = min(len(frame), 4 * n)
    while True:
        top = frame.iloc[:size]
        values = pd.DataFrame({c: as_numbers(top[c]) for c in columns}).dropna()
        if len(values) >= n or size >= len(frame):
            return values.head(n) if len(values) > n else values
        size = min(len(frame), 8 * size)


def _find_total(frame: pd.DataFrame, columns: list[str]) -> str | None:
    """The column that is (within 1%) the sum of the others in nearly every row, if any."""
    if len(columns) < 3:
        return None
    values = _complete_rows(frame, columns, 5000)
    if values.empty:
        return None
    row_sum = values.sum(axis=1)
    for c in columns:
        rest = row_sum - values[c]
        close = (values[c] - rest).abs() <= 0.01 * values[c].abs() + 1
        if close.mean() >= 0.9 and (values[c] > 0).mean() > 0.2:
            return c
    return None


def _check_numbers(s: pd.Series, column: str, role: str, file: str | None) -> None:
    """A role from [columns] that needs numbers, on a column that holds mostly text, would
    turn every value into a blank and then into the median: refused, with what it holds."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return
    text = _sample(s).astype("string").str.strip()
    filled = text.notna() & (text != "")
    if not filled.any():
        return
    parsed = as_numbers(text)
    unread = filled & parsed.isna()
    if unread.sum() <= 0.5 * filled.sum():
        return
    examples = ", ".join(repr(str(v)[:30]) for v in text[unread].drop_duplicates().head(3))
    raise ConfigError(f"[columns] gives {column!r} the role {role!r}, but its values are not "
                      f"numbers (e.g. {examples})", file=file,
                      hint="give it a category role such as 'education' or 'categorical', or "
                           "remove the line")


def infer_schema(frame: pd.DataFrame, overrides: dict[str, str], file: str | None = None,
                 scale: dict[str, float] | None = None) -> Schema:
    """Give every column a role; config overrides win and are checked against the table."""
    for column, role in overrides.items():
        _check_column(frame, column, "columns", file)
        if role not in ROLES:
            close = difflib.get_close_matches(role, list(ROLES), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"roles: {', '.join(ROLES)}"
            raise ConfigError(f"unknown role {role!r} for column {column!r}", file=file, hint=hint)
        if role in NUMERIC_ROLES:
            _check_numbers(frame[column], column, role, file)
    for column in (scale or {}):
        _check_column(frame, column, "scale", file)
    roles: dict[str, str] = {}
    notes: dict[str, str] = {}
    tags: dict[str, str] = {}
    for column in frame.columns:
        if column in overrides:
            roles[column], notes[column] = overrides[column], "set in the config"
        else:
            roles[column], notes[column] = infer_role(column, frame[column], len(frame))
    names = {normalise(c) for c in frame.columns}
    if names & _CONTACT_SIGNS:
        for column in frame.columns:
            if column not in overrides and normalise(column) in _CONTACT:
                roles[column], notes[column] = "ignore", CONTACT_NOTE
    # One key, one birth year, one income...: extra candidates become plain numbers.
    for single in SINGLE_ROLES:
        found = [c for c, r in roles.items() if r == single]
        for extra in found[1:]:
            if extra in overrides:
                continue
            kind = value_kind(frame[extra])
            roles[extra] = "numeric" if kind in ("numeric", "mostly_numeric") else (
                "flag" if kind == "yesno" else "ignore")
            notes[extra] = f"a second {single.replace('_', ' ')} column; {found[0]!r} is used"
    totals: dict[str, str] = {}
    for role in ("spend", "purchases"):
        total = _find_total(frame, [c for c, r in roles.items() if r == role])
        if total is not None:
            totals[role] = total
            notes[total] = f"{notes[total]}; the sum of the other {role} columns: used as total"
    for column, role in roles.items():
        if role in ("spend", "purchases") and column != totals.get(role):
            tag = _tag(normalise(column))
            tags[column] = CHANNELS.get(tag, tag) if role == "purchases" else tag
    scales: dict[str, float] = {}
    for column, role in roles.items():
        factor = (scale or {}).get(column, infer_scale(column, role))
        if factor != 1.0:
            scales[column] = float(factor)
            if column not in (scale or {}):
                notes[column] = f"{notes[column]}; amounts in {_factor_words(factor)}"
    dates = tuple(c for c, r in roles.items() if r == "signup_date")
    return Schema(roles=roles, tags=tags, notes=notes, date_columns=dates, totals=totals,
                  scales=scales)


def basket_note(schema: Schema) -> str | None:
    """Why the spend is not divided by the purchases ("average basket"), or None when it
    may be: the spend is one purchase's amount, or the purchases are the earlier ones."""
    spend = [c for c in schema.cols("spend") if c != schema.totals.get("spend")]
    purchases = schema.cols("purchases")
    if not spend or not purchases:
        return None
    one = [c for c in spend if re.search(_ONE_AMOUNT, normalise(c))]
    prior = [c for c in purchases if re.search(PRIOR, normalise(c))]
    if len(spend) == 1 and one:
        return (f"{one[0]} is the amount of one purchase, not the total of "
                f"{', '.join(purchases)}: no average basket is computed")
    if prior:
        return (f"{', '.join(prior)} counts purchases before the one {', '.join(spend)} "
                "measures: no average basket is computed")
    return None


def _factor_words(factor: float) -> str:
    return {1000.0: "thousands", 1e6: "millions"}.get(factor, f"units of {factor:g}")


def _check_column(frame: pd.DataFrame, column: str, section: str, file: str | None) -> None:
    if column in frame.columns:
        return
    close = difflib.get_close_matches(column, list(map(str, frame.columns)), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"check [{section}] in the config"
    raise ConfigError(f"configured column {column!r} is not in the table", file=file, hint=hint)
