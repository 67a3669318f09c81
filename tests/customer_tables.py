"""Realistic customer tables of other kinds, built in code, shaped like well-known public ones.

- credit_card_table: the Kaggle "Credit Card Dataset for Clustering" (CC GENERAL) columns;
- wholesale_table: the UCI "Wholesale customers" columns (annual spend per product category);
- telecom_table: the IBM "Telco customer churn" columns (Yes/No answers, text TotalCharges);
- mall_table: the "Mall Customer Segmentation Data" columns (income in k$, score 1-100).

Each mixes a few kinds of customer so a segmentation has something to find; the numbers are
made up, not copied.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _lognormal(rng: np.random.Generator, median: float, spread: float, n: int) -> np.ndarray:
    return median * np.exp(rng.normal(0.0, spread, n))


def credit_card_table(n: int = 900, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # kind: (share, balance, oneoff, installments, cash advance, limit, full-payment share)
    kinds = {
        "revolver": (0.25, 4500, 80, 60, 3500, 6500, 0.02),
        "transactor": (0.30, 300, 900, 500, 0, 5000, 0.75),
        "instalment": (0.20, 1200, 50, 1100, 40, 3500, 0.15),
        "dormant": (0.25, 700, 20, 10, 150, 2500, 0.05),
    }
    rows = []
    for kind, (share, bal, oneoff, inst, cash, limit, full) in kinds.items():
        m = int(n * share)
        oneoff_v = np.where(rng.random(m) < 0.8, _lognormal(rng, oneoff, 0.6, m), 0.0)
        inst_v = np.where(rng.random(m) < 0.8, _lognormal(rng, inst, 0.6, m), 0.0)
        cash_v = np.where(rng.random(m) < (0.9 if cash > 1000 else 0.2),
                          _lognormal(rng, max(cash, 50), 0.5, m), 0.0)
        trx = np.maximum(0, (oneoff_v + inst_v) / rng.uniform(40, 90, m)).round()
        limit_v = (_lognormal(rng, limit, 0.4, m) / 50).round() * 50
        pay_v = _lognormal(rng, (oneoff + inst + cash) * 0.9 + 200, 0.5, m)
        for i in range(m):  # noqa: B007 - i indexes the per-kind arrays
            purchases = round(oneoff_v[i] + inst_v[i], 2)
            rows.append({
                "BALANCE": round(float(_lognormal(rng, bal, 0.5, 1)[0]), 6),
                "BALANCE_FREQUENCY": round(float(np.clip(rng.normal(0.9, 0.1), 0, 1)), 6),
                "PURCHASES": purchases,
                "ONEOFF_PURCHASES": round(float(oneoff_v[i]), 2),
                "INSTALLMENTS_PURCHASES": round(float(inst_v[i]), 2),
                "CASH_ADVANCE": round(float(cash_v[i]), 6),
                "PURCHASES_FREQUENCY": round(float(np.clip(
                    rng.normal(0.85 if kind in ("transactor", "instalment") else 0.15, 0.12),
                    0, 1)), 6),
                "ONEOFF_PURCHASES_FREQUENCY": round(float(np.clip(
                    rng.normal(0.6 if kind == "transactor" else 0.05, 0.1), 0, 1)), 6),
                "PURCHASES_INSTALLMENTS_FREQUENCY": round(float(np.clip(
                    rng.normal(0.8 if kind == "instalment" else 0.2, 0.12), 0, 1)), 6),
                "CASH_ADVANCE_FREQUENCY": round(float(np.clip(
                    rng.normal(0.45 if kind == "revolver" else 0.02, 0.1), 0, 1)), 6),
                "CASH_ADVANCE_TRX": int(cash_v[i] / 250) if cash_v[i] else 0,
                "PURCHASES_TRX": int(trx[i]),
                "CREDIT_LIMIT": float(max(limit_v[i], 300)),
                "PAYMENTS": round(float(pay_v[i]), 6),
                "MINIMUM_PAYMENTS": round(float(_lognormal(rng, 300, 0.7, 1)[0]), 6)
                if rng.random() > 0.03 else None,
                "PRC_FULL_PAYMENT": round(float(np.clip(rng.normal(full, 0.1), 0, 1)), 6),
                "TENURE": int(12 if rng.random() < 0.85 else rng.integers(6, 12)),
                "kind": kind,
            })
    order = rng.permutation(len(rows))
    frame = pd.DataFrame([rows[i] for i in order])
    frame.insert(0, "CUST_ID", [f"C{10001 + i}" for i in range(len(frame))])
    return frame


def wholesale_table(n: int = 440, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Horeca (hotels, restaurants, cafés) buy fresh and frozen; retailers buy grocery, milk
    # and household goods.
    medians = {
        1: {"Fresh": 9000, "Milk": 2000, "Grocery": 2500, "Frozen": 2000,
            "Detergents_Paper": 400, "Delicassen": 800},
        2: {"Fresh": 5000, "Milk": 7500, "Grocery": 12000, "Frozen": 1000,
            "Detergents_Paper": 5000, "Delicassen": 1300},
    }
    rows = []
    for _ in range(n):
        channel = 1 if rng.random() < 0.68 else 2
        size = float(np.exp(rng.normal(0, 0.6)))
        row = {"Channel": channel, "Region": int(rng.choice([1, 2, 3], p=[0.18, 0.11, 0.71]))}
        for product, median in medians[channel].items():
            row[product] = int(max(3, median * size * np.exp(rng.normal(0, 0.7))))
        rows.append(row)
    return pd.DataFrame(rows)


def telecom_table(n: int = 1000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    for _ in range(n):
        kind = rng.choice(["new_fiber", "loyal", "basic", "mid"], p=[0.3, 0.3, 0.2, 0.2])
        if kind == "new_fiber":
            tenure, internet, contract = int(rng.integers(0, 14)), "Fiber optic", \
                "Month-to-month"
            monthly, churn_p = rng.normal(90, 8), 0.5
        elif kind == "loyal":
            tenure, internet = int(rng.integers(45, 73)), str(rng.choice(["DSL", "Fiber optic"]))
            contract = str(rng.choice(["Two year", "One year"], p=[0.7, 0.3]))
            monthly, churn_p = rng.normal(85, 15), 0.03
        elif kind == "basic":
            tenure, internet = int(rng.integers(1, 72)), "No"
            contract = str(rng.choice(["Two year", "One year", "Month-to-month"]))
            monthly, churn_p = rng.normal(21, 2), 0.07
        else:
            tenure, internet = int(rng.integers(10, 50)), "DSL"
            contract = str(rng.choice(["Month-to-month", "One year"]))
            monthly, churn_p = rng.normal(55, 8), 0.2
        monthly = round(float(max(18.25, monthly)), 2)
        has_net = internet != "No"

        def service(has_net: bool = has_net) -> str:
            return str(rng.choice(["Yes", "No"])) if has_net else "No internet service"

        rows.append({
            "customerID": f"{rng.integers(1000, 9999)}-{''.join(rng.choice(letters, 5))}",
            "gender": str(rng.choice(["Female", "Male"])),
            "SeniorCitizen": int(rng.random() < 0.16),
            "Partner": str(rng.choice(["Yes", "No"])),
            "Dependents": "Yes" if rng.random() < 0.3 else "No",
            "tenure": tenure,
            "PhoneService": "Yes" if rng.random() < 0.9 else "No",
            "InternetService": internet,
            "OnlineSecurity": service(),
            "TechSupport": service(),
            "StreamingTV": service(),
            "Contract": contract,
            "PaperlessBilling": "Yes" if rng.random() < 0.6 else "No",
            "PaymentMethod": str(rng.choice(["Electronic check", "Mailed check",
                                             "Bank transfer (automatic)",
                                             "Credit card (automatic)"])),
            "MonthlyCharges": monthly,
            # As in the real export: a blank (a single space) for customers in their first month.
            "TotalCharges": " " if tenure == 0 else
            f"{monthly * tenure * rng.uniform(0.95, 1.05):.2f}",
            "Churn": "Yes" if rng.random() < churn_p else "No",
        })
    frame = pd.DataFrame(rows)
    frame["customerID"] = [f"{c}{i}" for i, c in enumerate(frame["customerID"])]
    return frame


def mall_table(n: int = 200, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = [(25, 26, 78), (45, 26, 20), (42, 55, 50), (32, 87, 82), (41, 88, 17)]
    rows = []
    for i in range(n):
        age, income, score = centres[i % len(centres)]
        rows.append({
            "CustomerID": i + 1,
            "Genre": str(rng.choice(["Male", "Female"], p=[0.44, 0.56])),
            "Age": int(np.clip(rng.normal(age, 6), 18, 70)),
            "Annual Income (k$)": int(max(15, rng.normal(income, 8))),
            "Spending Score (1-100)": int(np.clip(rng.normal(score, 8), 1, 99)),
        })
    return pd.DataFrame(rows)
