"""Customer tables of other businesses, built in code, shaped like well-known public ones.

- bank_marketing_table: the UCI "Bank Marketing" columns (a term-deposit campaign: job,
  loans, housing, previous outcome, the answer y) — no spend column at all;
- ecommerce_table: an online shop's customer table (total spend, items, membership, days
  since the last purchase, a satisfaction answer).

The telecom churn table is tests/customer_tables.telecom_table. The numbers are made up, not
copied; each mixes a few kinds of customer so a segmentation has something to find.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def bank_marketing_table(n: int = 1200, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # kind: (share, age, balance median, housing p, loan p, previous contacts, success p, y p)
    kinds = {
        "young_borrower": (0.35, 30, 300, 0.8, 0.3, 0, 0.0, 0.05),
        "saver": (0.25, 55, 4000, 0.2, 0.05, 2, 0.5, 0.45),
        "family": (0.25, 42, 900, 0.7, 0.15, 0, 0.0, 0.08),
        "retired": (0.15, 67, 2500, 0.1, 0.02, 1, 0.3, 0.30),
    }
    jobs = {"young_borrower": ["blue-collar", "services", "technician", "student"],
            "saver": ["management", "retired", "self-employed", "entrepreneur"],
            "family": ["admin.", "technician", "blue-collar", "management"],
            "retired": ["retired", "housemaid", "retired", "unknown"]}
    rows = []
    for kind, (share, age, bal, housing, loan, prev, success, yes) in kinds.items():
        for _ in range(int(n * share)):
            previous = int(rng.poisson(prev)) if prev else int(rng.random() < 0.1)
            outcome = "unknown" if previous == 0 else str(rng.choice(
                ["success", "failure", "other"], p=[success, 0.8 - success * 0.8,
                                                    0.2 - success * 0.2]))
            rows.append({
                "age": int(np.clip(rng.normal(age, 6), 18, 92)),
                "job": str(rng.choice(jobs[kind])),
                "marital": str(rng.choice(["married", "single", "divorced"],
                                          p=[0.3, 0.6, 0.1] if kind == "young_borrower"
                                          else [0.7, 0.15, 0.15])),
                "education": str(rng.choice(["primary", "secondary", "tertiary"])),
                "default": "yes" if rng.random() < (0.05 if kind == "young_borrower"
                                                    else 0.01) else "no",
                "balance": int(bal * np.exp(rng.normal(0, 0.8)) - rng.uniform(0, 200)),
                "housing": "yes" if rng.random() < housing else "no",
                "loan": "yes" if rng.random() < loan else "no",
                "contact": str(rng.choice(["cellular", "telephone", "unknown"],
                                          p=[0.65, 0.1, 0.25])),
                "day": int(rng.integers(1, 29)),
                "month": str(rng.choice(["may", "jun", "jul", "aug", "nov"])),
                "duration": int(rng.gamma(2.0, 130)),
                "campaign": int(1 + rng.poisson(1.5)),
                "pdays": -1 if previous == 0 else int(rng.integers(30, 400)),
                "previous": previous,
                "poutcome": outcome,
                "y": "yes" if rng.random() < yes else "no",
                "kind": kind,
            })
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order]).reset_index(drop=True)


def ecommerce_table(n: int = 900, seed: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # kind: (share, age, spend median, items, days since last purchase, membership, discount p)
    kinds = {
        "gold": (0.3, 33, 1400, 17, 15, "Gold", 0.2),
        "silver": (0.35, 38, 750, 11, 30, "Silver", 0.5),
        "bronze": (0.35, 43, 420, 8, 50, "Bronze", 0.8),
    }
    rows = []
    for kind, (share, age, spend, items, days, member, discount) in kinds.items():
        for _ in range(int(n * share)):
            rows.append({
                "Customer ID": 101 + len(rows),
                "Gender": str(rng.choice(["Female", "Male"])),
                "Age": int(np.clip(rng.normal(age, 5), 18, 80)),
                "City": str(rng.choice(["New York", "Los Angeles", "Chicago", "Houston",
                                        "Miami", "San Francisco"])),
                "Membership Type": member,
                "Total Spend": round(float(spend * np.exp(rng.normal(0, 0.25))), 2),
                "Items Purchased": int(max(1, rng.normal(items, 2))),
                "Discount Applied": "TRUE" if rng.random() < discount else "FALSE",
                "Days Since Last Purchase": int(max(1, rng.normal(days, 8))),
                "kind": kind,
            })
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order]).reset_index(drop=True)
