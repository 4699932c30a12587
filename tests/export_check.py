"""Reads an export of ours the way finance's tools do, and prints what it found as JSON.

Usage: export_check.py ledger|journal FILE

Both kinds are read twice, independently: by the standard library's `csv` module (as Excel's
"UTF-8 CSV" would, a BOM allowed) and by pandas. Every amount's decimal string must be its
integer minor units at the currency's ISO 4217 exponent. A ledger export gives each account's
sum of amounts (the two readers must agree); a journal gives each (date, currency) journal's
debits and credits, which must be equal.
"""
import csv
import json
import sys
from decimal import Decimal

import pandas

EXPONENT = {"JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}


def check_amount(minor, text, currency, problems, where):
    exp = EXPONENT.get(currency, 2)
    if Decimal(text) * (10 ** exp) != Decimal(int(minor)):
        problems.append(f"{where}: {text} is not {minor} minor units of {currency}")
    if exp and ("." not in text or len(text.split(".")[1]) != exp):
        problems.append(f"{where}: {text} does not have {exp} decimals")


kind, path = sys.argv[1], sys.argv[2]
raw = open(path, "rb").read()
problems = []
with open(path, newline="", encoding="utf-8-sig") as f:
    rows = list(csv.DictReader(f))
frame = pandas.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
found = {"bom": raw.startswith(b"\xef\xbb\xbf"), "rows": len(rows), "header": list(frame.columns)}
if kind == "ledger":
    sums = {}
    for i, r in enumerate(rows):
        check_amount(r["amount_minor"], r["amount"], r["currency"], problems, f"row {i}")
        sums[r["account_id"]] = sums.get(r["account_id"], 0) + int(r["amount_minor"])
    by_pandas = frame.assign(minor=frame["amount_minor"].astype(int)).groupby("account_id")["minor"].sum()
    if {k: int(v) for k, v in by_pandas.items()} != sums:
        problems.append("pandas and csv disagree on the sums")
    found["sums"] = sums
    found["descriptions"] = sorted({r["description"] for r in rows})
    found["ids"] = [r["entry_id"] for r in rows]
else:
    journals = {}
    for i, r in enumerate(rows):
        check_amount(r["debit_minor"], r["debit"], r["currency"], problems, f"row {i} debit")
        check_amount(r["credit_minor"], r["credit"], r["currency"], problems, f"row {i} credit")
        if (int(r["debit_minor"]) == 0) == (int(r["credit_minor"]) == 0):
            problems.append(f"row {i}: a line is a debit or a credit")
        j = journals.setdefault(r["journal_id"], {"date": r["date"], "currency": r["currency"], "debit": 0, "credit": 0, "lines": {}})
        j["debit"] += int(r["debit_minor"])
        j["credit"] += int(r["credit_minor"])
        j["lines"][r["gl_code"]] = int(r["debit_minor"]) - int(r["credit_minor"])
    totals = frame.assign(d=frame["debit_minor"].astype(int), c=frame["credit_minor"].astype(int)).groupby(["date", "currency"])[["d", "c"]].sum()
    for (date, currency), t in totals.iterrows():
        if int(t["d"]) != int(t["c"]):
            problems.append(f"journal {date} {currency} does not balance: {t['d']} != {t['c']}")
    if len({r["external_id"] for r in rows}) != len(rows):
        problems.append("external ids repeat")
    found["journals"] = journals
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(json.dumps(found))
