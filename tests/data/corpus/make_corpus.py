#!/usr/bin/env python3
"""Write the bad-input corpus: small files, each broken in one way (see README.md here).

    python tests/data/corpus/make_corpus.py     rewrite the files in this folder

The files are committed; this script says how each was made, so a case can be regenerated or
a new one added the same way. tests/test_corpus.py holds the expected outcome of each.
"""

from __future__ import annotations

import gzip
import io
import random
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = ["customer_id", "age", "income", "wine_spend", "meat_spend", "web_visits", "joined",
          "region"]
REGIONS = ["North", "South", "East", "West"]


def rows(n: int = 24, seed: int = 7) -> list[list[str]]:
    """A healthy table: n customers, dates dd-mm-yyyy with days above 12 (so they decide)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 3
        out.append([
            f"C{1000 + i}",
            str(rng.randint(22, 35) if kind == 0 else rng.randint(40, 70)),
            str(rng.randint(20, 35) * 1000 if kind == 1 else rng.randint(60, 95) * 1000),
            str(rng.randint(500, 900) if kind == 2 else rng.randint(10, 80)),
            str(rng.randint(300, 600) if kind == 0 else rng.randint(20, 90)),
            str(rng.randint(6, 10) if kind == 1 else rng.randint(1, 4)),
            f"{rng.randint(1, 28):02d}-{rng.randint(1, 12):02d}-{rng.choice([2012, 2013])}",
            REGIONS[i % 4],
        ])
    out[0][6] = "25-03-2013"  # a day above 12: the format is dd-mm-yyyy
    return out


def csv_text(header: list[str], body: list[list[str]], sep: str = ",",
             newline: str = "\n") -> str:
    def cell(value: str) -> str:
        if any(ch in value for ch in (sep, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(sep.join(cell(v) for v in r) + newline for r in [header, *body])


def with_column(index: int, values: list[str]) -> list[list[str]]:
    body = rows()
    for r, v in zip(body, values, strict=False):
        r[index] = v
    return body


def build() -> dict[str, bytes]:
    col = {name: i for i, name in enumerate(HEADER)}
    good = rows()
    files: dict[str, str | bytes] = {}
    files["empty.csv"] = b""
    files["whitespace_only.csv"] = "\n   \n\t\n"
    files["header_only.csv"] = ",".join(HEADER) + "\n"
    rng = random.Random(1)
    files["binary_garbage.csv"] = bytes(rng.randrange(256) for _ in range(4000))
    files["control_characters.csv"] = bytes(rng.randrange(1, 9) for _ in range(2000))
    files["png_named_csv.csv"] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)
    files["pdf_named_csv.csv"] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("customers.csv", csv_text(HEADER, good))
    files["zip_archive.csv"] = buf.getvalue()
    files["old_excel.xls"] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500)
    files["truncated.xlsx"] = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"xl/workbook.xml" + \
        bytes(40)
    files["broken.parquet"] = b"PAR1" + b"not really parquet" * 10 + b"PAR1"
    files["single_column.csv"] = "name\n" + "".join(f"customer {i}\n" for i in range(10))
    files["semicolons.csv"] = csv_text(HEADER, good, sep=";")
    ragged = csv_text(HEADER, good).splitlines(keepends=True)
    ragged[4] = ragged[4].rstrip("\n") + ",extra,cells\n"
    files["ragged_row.csv"] = "".join(ragged)
    quote = csv_text(HEADER, good).splitlines(keepends=True)
    quote[3] = quote[3].replace("North", '"North').replace("South", '"South') \
        .replace("East", '"East').replace("West", '"West')
    files["unclosed_quote.csv"] = "".join(quote)
    dup = [r[:] for r in good]
    dup[5][0] = dup[4][0]
    dup[9][0] = dup[4][0]
    files["duplicated_ids.csv"] = csv_text(HEADER, dup)
    blank_ids = [r[:] for r in good]
    blank_ids[2][0] = ""
    files["blank_ids.csv"] = csv_text(HEADER, blank_ids)
    files["all_blank_column.csv"] = csv_text(HEADER + ["notes"], [r + [""] for r in good])
    files["constant_column.csv"] = csv_text(HEADER + ["country"], [r + ["FR"] for r in good])
    text_num = [r[:] for r in good]
    text_num[3][col["income"]] = "unknown"
    text_num[7][col["income"]] = "ask Bob"
    files["text_in_numeric_column.csv"] = csv_text(HEADER, text_num)
    seps = [r[:] for r in good]
    for r in seps:
        r[col["income"]] = f"${int(r[col['income']]):,}"
    files["thousands_separators.csv"] = csv_text(HEADER, seps)
    neg = [r[:] for r in good]
    neg[6][col["wine_spend"]] = "-250"
    neg[8][col["wine_spend"]] = "-5"
    files["negative_amounts.csv"] = csv_text(HEADER, neg)
    absurd = [r[:] for r in good]
    absurd[10][col["meat_spend"]] = "5e15"
    files["absurd_amounts.csv"] = csv_text(HEADER, absurd)
    inf = [r[:] for r in good]
    inf[1][col["wine_spend"]] = "inf"
    inf[2][col["wine_spend"]] = "1e308"
    inf[3][col["meat_spend"]] = "-inf"
    files["inf_and_1e308.csv"] = csv_text(HEADER, inf)
    future = [r[:] for r in good]
    future[11][col["joined"]] = "01-01-2099"
    files["future_dates.csv"] = csv_text(HEADER, future)
    amb = [r[:] for r in good]
    for r in amb:
        d, m, y = r[col["joined"]].split("-")
        r[col["joined"]] = f"{min(int(d), 12):02d}-{m}-{y}"
    files["ambiguous_dates.csv"] = csv_text(HEADER, amb)
    bad_dates = [r[:] for r in good]
    bad_dates[4][col["joined"]] = "someday"
    bad_dates[20][col["joined"]] = "31-02-2013"
    files["unreadable_dates.csv"] = csv_text(HEADER, bad_dates)
    files["one_row.csv"] = csv_text(HEADER, good[:1])
    files["fewer_rows_than_k.csv"] = csv_text(HEADER, good[:4])
    files["all_features_constant.csv"] = csv_text(
        ["customer_id", "age", "income", "region"],
        [[f"C{i}", "40", "50000", "North"] for i in range(12)])
    files["only_text.csv"] = csv_text(["customer_id", "comment"],
                                      [[f"C{i}", f"said thing number {i}"] for i in range(30)])
    files["huge_cell.csv"] = csv_text(HEADER + ["comment"], [
        r + [("x" * 100_000) if i == 3 else f"comment {i}"] for i, r in enumerate(good)])
    html = [r[:] for r in good]
    for i, r in enumerate(html):
        r[col["region"]] = ["<script>alert('x')</script>", "<b>North</b>", "South & East",
                            "West"][i % 4]
    files["html_in_categories.csv"] = csv_text(HEADER, html)
    formula = [r[:] for r in good]
    for i, prefix in enumerate(["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)",
                                "=1+1"]):
        formula[i][0] = prefix
    files["formula_cells.csv"] = csv_text(HEADER, formula)
    text = csv_text(HEADER, good).encode()
    files["invalid_utf8.csv"] = text.replace(b"North", b"N\xf6rth\xff", 2)
    files["latin1.csv"] = csv_text(HEADER, [r[:7] + [r[7].replace("North", "Nürnberg")]
                                            for r in good]).encode("latin-1")
    files["utf16_bom.csv"] = csv_text(HEADER, good, sep="\t").encode("utf-16")
    files["utf8_bom_crlf.csv"] = b"\xef\xbb\xbf" + csv_text(HEADER, good, newline="\r\n") \
        .encode()
    files["gzip_text.csv.gz"] = gzip.compress(csv_text(HEADER, good).encode(), mtime=0)
    files["duplicate_column_names.csv"] = csv_text(
        HEADER + ["age"], [r + [r[1]] for r in good])
    files["no_id_and_a_row_column.csv"] = csv_text(
        ["row"] + HEADER[1:], [[str(i % 5)] + r[1:] for i, r in enumerate(good)])
    yes_no = csv_text(HEADER + ["churned"], [r + ["maybe" if i == 9 else ["Yes", "No", "no"][i % 3]]
                                             for i, r in enumerate(good)])
    files["yes_no_with_junk.csv"] = yes_no
    files["rate_above_one.csv"] = csv_text(HEADER + ["purchase_frequency"], [
        r + [str([0.2, 0.5, 0.9, 0.1, 0.3, 0.7][i % 6] if i != 5 else 1.7)]
        for i, r in enumerate(good)])
    ages = [r[:] for r in good]
    ages[2][col["age"]] = "212"
    ages[3][col["age"]] = "-4"
    files["impossible_ages.csv"] = csv_text(HEADER, ages)
    files["padded_header_blank_lines.csv"] = "\n" + csv_text(
        [f"  {h} " for h in HEADER], good).replace("\n", "\n\n", 3)
    files.update(hostile(good))
    out = {}
    for name, data in files.items():
        out[name] = data if isinstance(data, bytes) else data.encode("utf-8")
    return out


def xlsx(sheets: dict[str, list[list[object]]], dimension: str | None = None) -> bytes:
    """An .xlsx workbook (openpyxl writes it); ``dimension`` replaces the first sheet's
    declared <dimension ref=...>, as a hostile or sloppy writer would."""
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, table in sheets.items():
        ws = book.create_sheet(title)
        for r in table:
            ws.append(r)
    buf = io.BytesIO()
    book.save(buf)
    if dimension is None:
        return buf.getvalue()
    source = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                import re

                data = re.sub(rb'<dimension ref="[^"]*"/>',
                              f'<dimension ref="{dimension}"/>'.encode(), data)
            z.writestr(info.filename, data)
    return out.getvalue()


def parquet(columns: dict[str, object]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue()


def hostile(good: list[list[str]]) -> dict[str, str | bytes]:
    """Cases from the outside attack of issue 13: each stored file breaks one guard."""
    import pyarrow as pa

    files: dict[str, str | bytes] = {}
    # Excel's "sep=;" first line names the delimiter
    files["excel_sep_line.csv"] = "sep=;\n" + csv_text(HEADER, good, sep=";")
    # a 4 KB workbook declaring every cell of a sheet (A1:XFD1048576)
    typed = [[int(v) if v.isdigit() else v for v in r] for r in good]
    files["declared_dimensions.xlsx"] = xlsx({"Customers": [HEADER, *typed]},
                                            dimension="A1:XFD1048576")
    # the first sheet is a note; the table is on the second
    files["note_first_sheet.xlsx"] = xlsx({"Read me": [["Exported from the CRM"],
                                                        ["Ask Ana for details"]],
                                           "Customers": [HEADER, *typed]})
    # one column name of 100,000 characters
    files["long_column_name.csv"] = csv_text(HEADER[:3] + ["w" * 100_000] + HEADER[4:], good)
    # list, struct and map columns beside the usual ones
    n = len(good)
    cols: dict[str, object] = {h: [r[i] for r in good] for i, h in enumerate(HEADER)}
    for h in ("age", "income", "wine_spend", "meat_spend", "web_visits"):
        cols[h] = [int(v) for v in cols[h]]  # type: ignore[union-attr]
    cols["tags"] = pa.array([[1, 2]] * n, pa.list_(pa.int64()))
    cols["address"] = pa.array([{"city": "Lyon", "zip": "69001"}] * n)
    cols["scores"] = pa.array([[("a", 1)]] * n, pa.map_(pa.string(), pa.int64()))
    files["nested_columns.parquet"] = parquet(cols)
    # a formula as a column name: it heads segments.csv when it names the key
    files["formula_header.csv"] = csv_text(['=HYPERLINK("http://x","y")'] + HEADER[1:], good)
    # terminal escape sequences in column names (a colour, a window title, a bidi override)
    files["terminal_escapes.csv"] = csv_text(
        HEADER[:5] + ["\x1b[31mweb_visits\x1b]0;owned\x07", "joined", "\u202eregion"], good)
    # 26-digit customer ids (a float would make them all 1.2345678901234568e+25), one blank
    ids = [r[:] for r in good]
    for i, r in enumerate(ids):
        r[0] = "" if i == 7 else str(12345678901234567890123456 + i * 7)
    files["long_integer_ids.csv"] = csv_text(HEADER, ids)
    # no date column, birth years up to 1996 and one typo (1893): only the typo is implausible
    years = [r[:1] + [str(1996 - (i * 37) % 45) if i != 4 else "1893"] + r[2:6] + r[7:]
             for i, r in enumerate(good)]
    files["birth_years_no_dates.csv"] = csv_text(["customer_id", "year_birth"] + HEADER[2:6] +
                                                 HEADER[7:], years)
    # one income column, written six ways
    ways = [lambda v: f"{v}", lambda v: f"${v:,}", lambda v: f"USD {v:,}",
            lambda v: f"{v // 1000}k", lambda v: f"$ {v:,}.00",
            lambda v: f"{v:,}".replace(",", " ")]
    mixed = [r[:2] + [ways[i % 6](int(r[2]))] + r[3:] for i, r in enumerate(good)]
    files["mixed_number_formats.csv"] = csv_text(HEADER[:2] + ["yearly_earnings"] + HEADER[3:],
                                                 mixed)
    # a gzip bomb in miniature: 30 MB of valid rows in a 30 KB file (run with [limits] bytes)
    line = b"C1,30,50000,10,10,1,01-01-2013,North\n"
    member = gzip.compress(line * 100_000, compresslevel=9, mtime=0)
    files["gzip_bomb.csv.gz"] = gzip.compress(",".join(HEADER).encode() + b"\n", mtime=0) + \
        member * 8
    return files


def main() -> None:
    for name, data in build().items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
