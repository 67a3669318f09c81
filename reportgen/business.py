"""What kind of business the table comes from, and what measures a customer's value there.

The roles present decide (``[report] business`` overrides): a credit limit or cash advances
make a card portfolio, a balance without them a deposit book, a monthly bill or a churn
answer a subscription business, a product mix of fresh, milk, grocery and frozen without
any person's traits a wholesaler, wines, meat or fruit a grocer, spend with purchases or
recency a shop. The type chooses the value measure (spend, card purchases, total charges,
revenue per account), the persona words and the playbook rules that may fire. A table with
nothing that measures value gets none: the report then says so and shows no value shares.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .errors import ConfigError
from .schema import Schema

# type -> how the report names it
BUSINESS_TYPES: dict[str, str] = {
    "shop": "shop or e-commerce",
    "grocery": "grocery, food and wine",
    "cards": "cards and banking",
    "deposits": "deposits and savings",
    "telecom": "telecom and subscriptions",
    "wholesale": "wholesale (business customers)",
    "generic": "generic customer table",
}
BUSINESS_SETTINGS = ("auto", *BUSINESS_TYPES)


def check_types(kinds: Collection[str], what: str, where: str) -> None:
    """Refuse a business type a shipped TOML entry names that does not exist, with the nearest
    one ("rule 'x': unknown business type 'telcom'", did you mean 'telecom'?)."""
    import difflib

    for kind in kinds:
        if kind not in BUSINESS_TYPES:
            close = difflib.get_close_matches(kind, list(BUSINESS_TYPES), n=1)
            raise ConfigError(f"{what}: unknown business type {kind!r}", file=where,
                              hint=f"did you mean {close[0]!r}?" if close else
                              f"known: {', '.join(BUSINESS_TYPES)}")

# Product categories of a wholesaler's trade customers (the UCI "Wholesale customers" table).
_WHOLESALE_TAGS = {"fresh", "milk", "grocery", "frozen", "household", "deli"}
# Food-and-wine categories of a consumer grocer (the bundled sample).
_GROCERY_TAGS = {"wines", "meat", "fish", "fruits", "sweets", "sweet", "gold", "vegetables",
                 "bakery", "beverages", "drinks", "dairy", "seafood"}
_PERSON_ROLES = ("age", "birth_year", "income", "gender", "marital_status", "children",
                 "education")

# business -> the value features to look for, in order, and how the report names each.
_VALUE: dict[str, tuple[tuple[str, str], ...]] = {
    "shop": (("total_spend", "spend"),),
    "grocery": (("total_spend", "spend"),),
    "wholesale": (("total_spend", "revenue"),),
    "cards": (("total_spend", "card purchases"), ("balance", "balances")),
    "deposits": (),
    "telecom": (("total_spend", "total charges"), ("monthly_spend", "monthly charges")),
    "generic": (("total_spend", "spend"), ("monthly_spend", "monthly charges"),
                ("score", "")),
}


@dataclass(frozen=True)
class Business:
    """The business type of a table and the measure of value it takes."""

    type: str  # a key of BUSINESS_TYPES
    reason: str  # why, in words: "credit limit and cash advances: a card portfolio"
    value: str | None  # the feature measuring value; None: the table has none
    value_label: str  # how the report names it: "spend", "total charges"; "" without one

    @property
    def label(self) -> str:
        return BUSINESS_TYPES[self.type]

    @property
    def text(self) -> str:
        """The method's sentence: type, why, and the value measure."""
        how = "set in the config" if self.reason == "set in the config" else \
            f"inferred from the columns: {self.reason}"
        value = f"value is measured by {self.value_label}" if self.value else \
            "the table has no column that measures value (spend, charges, revenue), so the " \
            "report shows no value shares"
        return f"{self.label[0].upper()}{self.label[1:]} ({how}); {value}."


def infer_type(schema: Schema) -> tuple[str, str]:
    """(business type, why) from the roles of the table's columns."""
    has = {r for r in schema.roles.values()}
    tags = {schema.tags.get(c, "") for c in schema.cols("spend")}
    if has & {"credit_limit", "cash_advance"}:
        return "cards", "credit limit or cash advances"
    if "monthly_spend" in has or ("churn" in has and "tenure" in has):
        return "telecom", "a monthly bill or churn with tenure"
    if "balance" in has and "spend" not in has:
        return "deposits", "account balances and no spend"
    if len(tags & _WHOLESALE_TAGS) >= 3 and not has & set(_PERSON_ROLES):
        return "wholesale", "product categories of trade customers and no person's traits"
    if tags & _GROCERY_TAGS or len(tags & _WHOLESALE_TAGS) >= 3:
        return "grocery", "food and drink categories"
    if "spend" in has and has & {"purchases", "recency", "visits", "deals"}:
        return "shop", "spend with purchases or recency"
    if "churn" in has:
        return "telecom", "a churn answer"
    return "generic", "no role that marks a business"


def decide(schema: Schema, features: Collection[str], setting: str = "auto",
           labels: Mapping[str, str] | None = None) -> Business:
    """The business of a table whose derived features are ``features``; ``setting``: the
    config's [report] business ("auto" infers it). ``labels``: feature -> label, for a value
    measure the table names itself (the generic fallback)."""
    if setting != "auto":
        kind, reason = setting, "set in the config"
    else:
        kind, reason = infer_type(schema)
    for feature, label in _VALUE[kind]:
        if feature in features:
            text = label or (labels or {}).get(feature, feature).lower()
            return Business(kind, reason, feature, text)
    return Business(kind, reason, None, "")
