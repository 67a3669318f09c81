"""Customer tables built in code for the stage and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# Three kinds of customer, far apart on purpose: k-means must find them.
KINDS = {
    # income, wines, meat, fruits, web, catalog, store, deals, kids, visits, birth year
    "affluent": (85_000, 900, 500, 60, 4, 7, 8, 1, 0, 2, 1962),
    "family": (38_000, 40, 30, 8, 2, 0, 4, 5, 2, 7, 1978),
    "young": (30_000, 60, 40, 10, 6, 0, 2, 3, 0, 9, 1992),
}


def marketing_table(n_per_kind: int = 60, seed: int = 0) -> pd.DataFrame:
    """A table shaped like the bundled sample, with three well-separated kinds of customer."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, (inc, wine, meat, fruit, web, cat, store, deals, kids, visits, year) in \
            KINDS.items():
        for _ in range(n_per_kind):
            rows.append({
                "ID": len(rows) + 1000,
                "Year_Birth": int(year + rng.integers(-4, 5)),
                "Education": rng.choice(["Graduation", "PhD", "Master"]),
                "Marital_Status": rng.choice(["Married", "Single", "Together"]),
                "Income": float(inc * rng.uniform(0.9, 1.1)),
                "Kidhome": int(kids),
                "Teenhome": 0,
                "Dt_Customer": f"{rng.integers(1, 28):02d}-{rng.integers(1, 13):02d}-2013",
                "Recency": int(rng.integers(0, 100)),
                "MntWines": int(wine * rng.uniform(0.8, 1.2)),
                "MntFruits": int(fruit * rng.uniform(0.8, 1.2)),
                "MntMeatProducts": int(meat * rng.uniform(0.8, 1.2)),
                "NumDealsPurchases": int(deals),
                "NumWebPurchases": int(web + rng.integers(0, 2)),
                "NumCatalogPurchases": int(cat + rng.integers(0, 2)),
                "NumStorePurchases": int(store + rng.integers(0, 2)),
                "NumWebVisitsMonth": int(visits),
                "AcceptedCmp1": int(kind == "affluent" and rng.random() < 0.5),
                "AcceptedCmp2": int(rng.random() < 0.05),
                "Response": int(rng.random() < 0.2),
                "Z_CostContact": 3,
                "kind": kind,
            })
    return pd.DataFrame(rows)


def write_tsv(frame: pd.DataFrame, path: Path) -> Path:
    frame.drop(columns=["kind"], errors="ignore").to_csv(path, sep="\t", index=False)
    return path
