"""Order-line tables built in code, shaped like the exports new users bring.

- invoice_lines: an online retailer's invoice lines (InvoiceNo, StockCode, Description,
  Quantity, InvoiceDate as m/d/yy H:MM, UnitPrice, CustomerID, Country): cancellations
  ("C" invoices with negative quantities), lines without a customer, exact duplicate lines, a
  customer with nothing but a cancellation, and orders at any time of the last day;
- order_export: a shop system's order export (Row ID, Order ID "CA-2016-…", Order Date, Ship
  Date, Customer ID, Segment, Category, Sub-Category, Product, Sales, Quantity, Discount);
- cdnow_text: CDNOW-shaped whitespace-aligned text (zero-padded customer id, yyyymmdd date,
  number of CDs, dollar value, a leading space);
- steady_orders: a shop whose customers keep buying as they did (Order ID, Order Date,
  Customer ID, Sales): month to month only the calendar moves.

Each mixes kinds of customer a segmentation should find: regulars who buy often and
recently, lapsed big spenders, new one-time buyers, occasional shoppers. Every builder returns
the table and the facts a test checks (customers with a purchase, lines without a customer…).
The numbers are made up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PRODUCTS = [  # stock code, description, unit price, category
    ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2.55, "Home"),
    ("71053", "WHITE METAL LANTERN", 3.39, "Home"),
    ("84406B", "CREAM CUPID HEARTS COAT HANGER", 2.75, "Home"),
    ("22752", "SET 7 BABUSHKA NESTING BOXES", 7.65, "Toys"),
    ("21730", "GLASS STAR FROSTED T-LIGHT HOLDER", 4.25, "Home"),
    ("22633", "HAND WARMER UNION JACK", 1.85, "Gifts"),
    ("84879", "ASSORTED COLOUR BIRD ORNAMENT", 1.69, "Gifts"),
    ("22745", "POPPY'S PLAYHOUSE BEDROOM", 2.10, "Toys"),
    ("21754", "HOME BUILDING BLOCK WORD", 5.95, "Home"),
    ("22960", "JAM MAKING SET WITH JARS", 4.25, "Kitchen"),
    ("22720", "SET OF 3 CAKE TINS PANTRY DESIGN", 4.95, "Kitchen"),
    ("47566", "PARTY BUNTING", 4.65, "Gifts"),
]


@dataclass
class Facts:
    """What a test can check against the table it came with."""

    customers: set[str] = field(default_factory=set)  # keys with at least one purchase
    kinds: dict[str, str] = field(default_factory=dict)  # key -> kind of customer
    no_customer_lines: int = 0
    duplicate_lines: int = 0
    only_returns: set[str] = field(default_factory=set)
    last_day: dt.date | None = None
    lines: int = 0


def _mdyy(t: dt.datetime) -> str:
    return f"{t.month}/{t.day}/{t.year % 100:02d} {t.hour}:{t.minute:02d}"


def invoice_lines(n_customers: int = 200, seed: int = 0) -> tuple[pd.DataFrame, Facts]:
    rng = np.random.default_rng(seed)
    start, end = dt.datetime(2010, 12, 1, 8, 0), dt.datetime(2011, 12, 9, 8, 0)
    span = (end - start).days
    facts = Facts(last_day=end.date())
    rows: list[dict[str, object]] = []
    invoice = 536365

    def when(day_from: int, day_to: int) -> dt.datetime:
        day = int(rng.integers(day_from, day_to + 1))
        return start + dt.timedelta(days=day, hours=int(rng.integers(0, 10)),
                                    minutes=int(rng.integers(0, 60)))

    def order(customer: float | None, at: dt.datetime, lines: int, qty: tuple[int, int],
              country: str) -> list[dict[str, object]]:
        nonlocal invoice
        invoice += 1
        picked = rng.choice(len(PRODUCTS), size=lines, replace=False)
        out = []
        for p in picked:
            code, desc, price, _ = PRODUCTS[p]
            out.append({"InvoiceNo": str(invoice), "StockCode": code, "Description": desc,
                        "Quantity": int(rng.integers(*qty)), "InvoiceDate": _mdyy(at),
                        "UnitPrice": price, "CustomerID": customer, "Country": country})
        return out

    kinds = ["regular"] * 5 + ["lapsed"] * 3 + ["new"] * 3 + ["occasional"] * 4
    for i in range(n_customers):
        cid = float(12346 + i)
        kind = kinds[i % len(kinds)]
        country = "United Kingdom" if rng.random() < 0.8 else str(
            rng.choice(["Germany", "France", "EIRE"]))
        if kind == "regular":
            times = sorted(when(0, span) for _ in range(int(rng.integers(8, 16))))
            times[-1] = when(span - 20, span)
            qty = (2, 13)
        elif kind == "lapsed":
            times = sorted(when(0, 120) for _ in range(int(rng.integers(3, 6))))
            qty = (24, 97)
        elif kind == "new":
            times = [when(span - 25, span)]
            qty = (1, 7)
        else:
            times = sorted(when(0, span) for _ in range(int(rng.integers(2, 4))))
            qty = (1, 5)
        for t in times:
            lines = order(cid, t, int(rng.integers(2, 6)), qty, country)
            rows += lines
            if kind == "regular" and rng.random() < 0.15:
                # a cancellation: a C invoice that takes back one line
                cancel = dict(lines[0])
                invoice += 1
                cancel["InvoiceNo"] = f"C{invoice}"
                cancel["Quantity"] = -int(cancel["Quantity"])  # type: ignore[call-overload]
                cancel["InvoiceDate"] = _mdyy(t + dt.timedelta(hours=2))
                rows.append(cancel)
        facts.customers.add(str(int(cid)))
        facts.kinds[str(int(cid))] = kind
    # Lines nobody can be given to: about a tenth of the invoices, as in such exports.
    for _ in range(max(3, n_customers // 10)):
        lines = order(None, when(0, span), int(rng.integers(1, 4)), (1, 10), "United Kingdom")
        rows += lines
        facts.no_customer_lines += len(lines)
    # Orders at any time of the last day: none of them is in the future.
    last_cid = float(12346)
    rows += order(last_cid, end.replace(hour=12, minute=50), 2, (2, 5), "United Kingdom")
    rows += order(last_cid, end.replace(hour=23, minute=59), 1, (2, 5), "United Kingdom")
    # A customer with nothing but a cancellation.
    only = float(99999)
    invoice += 1
    rows.append({"InvoiceNo": f"C{invoice}", "StockCode": "22633",
                 "Description": "HAND WARMER UNION JACK", "Quantity": -6,
                 "InvoiceDate": _mdyy(start + dt.timedelta(days=40)), "UnitPrice": 1.85,
                 "CustomerID": only, "Country": "United Kingdom"})
    facts.only_returns.add("99999")
    # Exact duplicates: the same lines exported twice.
    picked = rng.choice(len(rows), size=5, replace=False)
    rows += [dict(rows[int(k)]) for k in picked]
    facts.duplicate_lines = 5
    frame = pd.DataFrame(rows)
    facts.lines = len(frame)
    return frame, facts


def order_export(n_customers: int = 180, seed: int = 1) -> tuple[pd.DataFrame, Facts]:
    rng = np.random.default_rng(seed)
    start = dt.date(2015, 1, 3)
    end = dt.date(2017, 12, 30)
    span = (end - start).days
    facts = Facts(last_day=end)
    categories = {"Furniture": [("FUR-CH-10000454", "Chairs", 180.0),
                                ("FUR-TA-10000577", "Tables", 420.0)],
                  "Office Supplies": [("OFF-PA-10002365", "Paper", 15.0),
                                      ("OFF-BI-10003910", "Binders", 9.0),
                                      ("OFF-ST-10000760", "Storage", 60.0)],
                  "Technology": [("TEC-PH-10002275", "Phones", 260.0),
                                 ("TEC-AC-10002167", "Accessories", 70.0)]}
    rows: list[dict[str, object]] = []
    kinds = ["tech_regular"] * 3 + ["office_regular"] * 4 + ["furniture_lapsed"] * 3 + \
        ["new_once"] * 2 + ["deal_hunter"] * 3
    number = 100000
    for i in range(n_customers):
        kind = kinds[i % len(kinds)]
        cid = f"{'ABCDEFGHJK'[i % 10]}{'LMNPRSTW'[i % 8]}-{10000 + i * 7}"
        segment = str(rng.choice(["Consumer", "Corporate", "Home Office"]))
        if kind == "tech_regular":
            n, days, cats, disc = int(rng.integers(6, 12)), (0, span), ["Technology"], 0.0
        elif kind == "office_regular":
            n, days, cats, disc = int(rng.integers(8, 14)), (0, span), ["Office Supplies"], 0.0
        elif kind == "furniture_lapsed":
            n, days, cats, disc = int(rng.integers(3, 6)), (0, 300), ["Furniture"], 0.0
        elif kind == "new_once":
            n, days, cats, disc = 1, (span - 40, span), list(categories), 0.0
        else:
            n, days, cats, disc = int(rng.integers(5, 9)), (0, span), list(categories), 0.2
        order_days = sorted(int(rng.integers(days[0], days[1] + 1)) for _ in range(n))
        if kind in ("tech_regular", "office_regular"):
            order_days[-1] = int(rng.integers(span - 60, span + 1))
        for day in order_days:
            number += int(rng.integers(1, 40))
            placed = start + dt.timedelta(days=day)
            region = "CA" if rng.random() < 0.3 else "US"
            order_id = f"{region}-{placed.year}-{number}"
            for _ in range(int(rng.integers(1, 4))):
                category = str(rng.choice(cats))
                pid, sub, price = categories[category][int(rng.integers(
                    0, len(categories[category])))]
                qty = int(rng.integers(1, 6))
                discount = disc if disc and rng.random() < 0.7 else 0.0
                rows.append({
                    "Row ID": len(rows) + 1, "Order ID": order_id,
                    "Order Date": f"{placed.month}/{placed.day}/{placed.year}",
                    "Ship Date": (lambda d: f"{d.month}/{d.day}/{d.year}")(
                        placed + dt.timedelta(days=int(rng.integers(1, 7)))),
                    "Ship Mode": str(rng.choice(["Standard Class", "Second Class"])),
                    "Customer ID": cid, "Segment": segment, "Country": "United States",
                    "Category": category, "Sub-Category": sub, "Product ID": pid,
                    "Sales": round(qty * price * float(rng.uniform(0.9, 1.1)) * (1 - discount),
                                   2),
                    "Quantity": qty, "Discount": discount,
                })
        facts.customers.add(cid)
        facts.kinds[cid] = kind
    frame = pd.DataFrame(rows)
    facts.lines = len(frame)
    return frame, facts


def cdnow_text(n_customers: int = 300, seed: int = 2) -> tuple[str, Facts]:
    """Whitespace-aligned text as CDNOW_master.txt is: ' 00001 19970101  1   11.77'."""
    rng = np.random.default_rng(seed)
    start = dt.date(1997, 1, 1)
    facts = Facts(last_day=None)
    lines = [" customer_id  date number_of_cds  dollar_value"]
    records = []
    for i in range(1, n_customers + 1):
        first = int(rng.integers(0, 90))  # a cohort acquired in the first quarter
        kind = ["once", "once", "repeat", "heavy"][i % 4]
        n = {"once": 1, "repeat": int(rng.integers(2, 5)), "heavy": int(rng.integers(6, 20))}[kind]
        days = sorted([first] + [int(rng.integers(first, 545)) for _ in range(n - 1)])
        for day in days:
            cds = int(rng.integers(1, 4 if kind != "heavy" else 8))
            value = round(cds * float(rng.uniform(9, 16)), 2)
            records.append((i, start + dt.timedelta(days=day), cds, value))
        facts.customers.add(f"{i:05d}")
        facts.kinds[f"{i:05d}"] = kind
    records.sort(key=lambda r: (r[0], r[1]))
    for cid, day, cds, value in records:
        lines.append(f" {cid:05d} {day:%Y%m%d} {cds:>2d} {value:>8.2f}")
    facts.last_day = max(r[1] for r in records)
    facts.lines = len(records)
    return "\r\n".join(lines) + "\r\n", facts


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def steady_orders(n_customers: int = 240, seed: int = 3) -> tuple[pd.DataFrame, Facts]:
    """A shop whose customers do not change: every one joined in the second half of 2010 and
    buys on its own cadence (every 2 weeks to 3 months, a random phase) with its own basket
    until the end of 2011, nobody new, nobody leaving. Month to month only the calendar
    moves: a backfill of 2011 should see no drift but its tenure ageing."""
    rng = np.random.default_rng(seed)
    first_day, end = dt.date(2010, 7, 1), dt.date(2011, 12, 31)
    facts = Facts(last_day=end)
    rows: list[dict[str, object]] = []
    order = 1000
    for i in range(n_customers):
        cid = f"C{i:04d}"
        cadence = int(rng.integers(14, 91))
        basket = float(rng.choice([20.0, 60.0, 150.0])) * float(rng.uniform(0.8, 1.2))
        day = first_day + dt.timedelta(days=int(rng.integers(0, 184)))
        while day <= end:
            order += 1
            rows.append({"Order ID": f"SO-{order}", "Order Date": day.isoformat(),
                         "Customer ID": cid,
                         "Sales": round(basket * float(rng.uniform(0.9, 1.1)), 2)})
            day += dt.timedelta(days=cadence + int(rng.integers(-3, 4)))
        facts.customers.add(cid)
        facts.kinds[cid] = f"every {cadence} days"
    facts.lines = len(rows)
    return pd.DataFrame(rows), facts
