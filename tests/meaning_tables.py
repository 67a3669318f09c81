"""Customer tables whose columns mean something other than they first seem, built in code:
the shapes of public tables (a wholesale table with a dozen extreme accounts, an e-commerce
table with session minutes, a shopping survey with review ratings, a table carrying an earlier
segmentation, a credit-card table with frequencies above 1 and customers who bought nothing,
a telecom table with brand-new subscribers, a bank-marketing table), not their data."""

from __future__ import annotations

import numpy as np
import pandas as pd

# The extreme accounts of the wholesale table: 1 to 23 million, among accounts of at most a
# few hundred thousand.
EXTREME = np.linspace(1_000_000, 23_000_000, 12).round()


def wholesale(n: int = 440, seed: int = 7) -> pd.DataFrame:
    """Wholesale accounts: Channel (1 hotel/restaurant, 2 retail) and Region (1-3) as codes,
    six product amounts with three buying patterns, and 12 extreme accounts whose frozen-food
    amount is 1-23 million."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, n, p=[0.45, 0.35, 0.20])
    # Fresh, Milk, Grocery, Frozen, Detergents_Paper, Delicassen: log-means per pattern
    centres = np.array([[9.6, 7.4, 7.6, 8.0, 5.6, 6.8],   # restaurants: fresh and frozen
                        [8.0, 9.0, 9.4, 6.6, 8.4, 6.9],   # retail: grocery, milk, detergents
                        [8.6, 8.2, 8.4, 7.2, 6.8, 8.4]])  # delis
    amounts = np.exp(centres[kind] + rng.normal(0, 0.45, (n, 6))).round()
    names = ["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]
    frame = pd.DataFrame(amounts, columns=names)
    frame.insert(0, "Channel", np.where(kind == 1, 2, 1))
    frame.insert(1, "Region", rng.integers(1, 4, n))
    extreme = rng.choice(n, len(EXTREME), replace=False)
    frame.loc[extreme, "Frozen"] = EXTREME
    return frame


def ecommerce(n: int = 500, seed: int = 3) -> pd.DataFrame:
    """E-commerce customers: contact text, session length and time on app/website in
    minutes, length of membership in years (fractions), yearly amount spent."""
    rng = np.random.default_rng(seed)
    app = rng.normal(12, 1, n).round(2)
    membership = rng.uniform(0.3, 6.9, n).round(2)
    return pd.DataFrame({
        "Email": [f"user{i}@example.com" for i in range(n)],
        "Address": [f"{i} Main Street, Springfield" for i in range(n)],
        "Avatar": rng.choice(["Violet", "Teal", "Bisque", "Navy"], n),
        "Avg. Session Length": rng.normal(33, 1, n).round(2),
        "Time on App": app,
        "Time on Website": rng.normal(37, 1, n).round(2),
        "Length of Membership": membership,
        "Yearly Amount Spent": (300 + 38 * app + 60 * membership
                                + rng.normal(0, 10, n)).round(2),
    })


def survey(n: int = 600, seed: int = 5) -> pd.DataFrame:
    """A shopping survey: one purchase's amount, a review rating (2.5-5), the number of
    purchases made before it, how often the customer shops."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "Customer ID": np.arange(1, n + 1),
        "Age": rng.integers(18, 71, n),
        "Gender": rng.choice(["Male", "Female"], n),
        "Category": rng.choice(["Clothing", "Footwear", "Accessories", "Outerwear"], n),
        "Purchase Amount (USD)": rng.integers(20, 101, n),
        "Review Rating": rng.uniform(2.5, 5.0, n).round(1),
        "Previous Purchases": rng.integers(1, 51, n),
        "Subscription Status": rng.choice(["Yes", "No"], n, p=[0.27, 0.73]),
    })


def earlier_segments(n: int = 400, seed: int = 11) -> pd.DataFrame:
    """A customer table carrying an earlier model's cluster label and RFM scores/letters."""
    rng = np.random.default_rng(seed)
    spend = rng.lognormal(6, 1, n).round(2)
    orders = rng.integers(1, 30, n)
    return pd.DataFrame({
        "CustomerID": np.arange(10001, 10001 + n),
        "Income": rng.normal(52000, 15000, n).round(),
        "Recency": rng.integers(1, 365, n),
        "Total Spend": spend,
        "NumPurchases": orders,
        "Cluster": rng.integers(0, 4, n),
        "R": rng.integers(1, 6, n),
        "F": rng.integers(1, 6, n),
        "M": rng.integers(1, 6, n),
        "RFM_Score": rng.integers(3, 16, n),
        "RFM_Segment": rng.choice(["Champions", "At risk", "Hibernating"], n),
    })


def cards(n: int = 600, seed: int = 13) -> pd.DataFrame:
    """Credit cards: a cash-advance frequency above 1 for a few holders (1.2), and holders
    with no purchases at all (one-off and instalment shares are 0/0 for them)."""
    rng = np.random.default_rng(seed)
    oneoff = rng.lognormal(6, 1, n).round(2)
    instal = rng.lognormal(5.5, 1, n).round(2)
    none = rng.choice(n, n // 4, replace=False)
    oneoff[none] = 0.0
    instal[none] = 0.0
    freq = rng.uniform(0, 0.6, n).round(6)
    high = rng.choice(np.setdiff1d(np.arange(n), none), 8, replace=False)
    freq[high] = np.array([1.2, 1.25, 1.1, 1.5, 1.2, 1.142857, 1.166667, 1.3])
    frame = pd.DataFrame({
        "CUST_ID": [f"C{10001 + i}" for i in range(n)],
        "BALANCE": rng.lognormal(7, 1.2, n).round(2),
        "PURCHASES": (oneoff + instal).round(2),
        "ONEOFF_PURCHASES": oneoff,
        "INSTALLMENTS_PURCHASES": instal,
        "CASH_ADVANCE": rng.lognormal(6, 1.5, n).round(2),
        "CASH_ADVANCE_FREQUENCY": freq,
        "CREDIT_LIMIT": rng.choice([1000, 2500, 5000, 7500, 12000], n).astype(float),
        "PAYMENTS": rng.lognormal(7, 1, n).round(2),
    })
    return frame


NEW_SUBSCRIBERS = 11


def telecom(n: int = 700, seed: int = 17) -> pd.DataFrame:
    """Telecom subscribers: tenure in months, monthly and total charges; the brand-new ones
    (tenure 0) have a blank total charge."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 73, n)
    tenure[:NEW_SUBSCRIBERS] = 0
    monthly = rng.uniform(18, 118, n).round(2)
    total = (tenure * monthly * rng.uniform(0.95, 1.05, n)).round(2).astype(object)
    total[:NEW_SUBSCRIBERS] = " "
    return pd.DataFrame({
        "customerID": [f"{i:04d}-ABCDE" for i in range(n)],
        "gender": rng.choice(["Male", "Female"], n),
        "tenure": tenure,
        "Contract": rng.choice(["Month-to-month", "One year", "Two year"], n),
        "MonthlyCharges": monthly,
        "TotalCharges": total,
        "Churn": rng.choice(["Yes", "No"], n, p=[0.27, 0.73]),
    })


def bank(n: int = 500, seed: int = 19) -> pd.DataFrame:
    """Bank marketing: customer columns, and the last call of the campaign (contact, day,
    month, duration in seconds, campaign attempts, pdays, previous, poutcome)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "job": rng.choice(["admin.", "technician", "services", "management"], n),
        "marital": rng.choice(["married", "single", "divorced"], n),
        "balance": rng.normal(1400, 3000, n).round(),
        "housing": rng.choice(["yes", "no"], n),
        "loan": rng.choice(["yes", "no"], n),
        "contact": rng.choice(["cellular", "telephone", "unknown"], n),
        "day": rng.integers(1, 32, n),
        "month": rng.choice(["may", "jun", "jul", "aug"], n),
        "duration": rng.integers(5, 3000, n),
        "campaign": rng.integers(1, 20, n),
        "pdays": rng.choice([-1, 90, 180], n),
        "previous": rng.integers(0, 5, n),
        "poutcome": rng.choice(["unknown", "failure", "success"], n),
        "y": rng.choice(["yes", "no"], n, p=[0.12, 0.88]),
    })
