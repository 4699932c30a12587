"""Checks a SEPA credit transfer file as a bank would, independently of Kopilka's code.

Usage: python sepa_check.py FILE VERSION
Validates FILE against the pain.001 XSD shipped in the `sepaxml` package, then against the
SEPA rules the XSD does not check (EPC Latin character set, EUR with 2 decimals, SvcLvl SEPA,
ChrgBr SLEV, NbOfTxs and CtrlSum at both levels, ids of at most 35 characters, execution date
on a TARGET business day), parses it back with the standard library's ElementTree, and prints
what it found as JSON. Exits 1 with the broken rules on stderr.
"""

import datetime
import decimal
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

import sepaxml
from dateutil.easter import easter
from lxml import etree

path, version = sys.argv[1], sys.argv[2]
raw = open(path, "rb").read()
problems = []

xsd = os.path.join(os.path.dirname(sepaxml.__file__), "schemas", version + ".xsd")
schema = etree.XMLSchema(etree.parse(xsd))
document = etree.fromstring(raw)
if not schema.validate(document):
    problems += ["xsd: " + str(e) for e in schema.error_log]

ns = {"p": "urn:iso:std:iso:20022:tech:xsd:" + version}
root = ET.fromstring(raw)
latin = re.compile(r"^[A-Za-z0-9/\-?:().,'+ ]*$")
for element in root.iter():
    if element.text and element.text.strip() and not latin.match(element.text):
        problems.append(f"text outside the SEPA Latin set: {element.tag} {element.text!r}")


def one(node, path):
    found = node.find(path, ns)
    if found is None:
        problems.append("missing " + path)
        return ""
    return found.text or ""


def target_day(day):
    if day.weekday() >= 5:
        return False
    if (day.month, day.day) in [(1, 1), (5, 1), (12, 25), (12, 26)]:
        return False
    e = easter(day.year)
    return day not in (e - datetime.timedelta(days=2), e + datetime.timedelta(days=1))


group = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", ns)
msg_id = one(group, "p:MsgId")
blocks = root.findall("p:CstmrCdtTrfInitn/p:PmtInf", ns)
all_amounts = []
transactions = []
for block in blocks:
    amounts = []
    if one(block, "p:PmtTpInf/p:SvcLvl/p:Cd") != "SEPA":
        problems.append("SvcLvl is not SEPA")
    if one(block, "p:ChrgBr") != "SLEV":
        problems.append("ChrgBr is not SLEV")
    date = block.find("p:ReqdExctnDt/p:Dt", ns) if version.endswith(".09") else block.find("p:ReqdExctnDt", ns)
    if date is None or not target_day(datetime.date.fromisoformat(date.text)):
        problems.append("execution date missing or not a TARGET business day")
    for tx in block.findall("p:CdtTrfTxInf", ns):
        amount = tx.find("p:Amt/p:InstdAmt", ns)
        if amount.get("Ccy") != "EUR" or not re.match(r"^\d+\.\d{2}$", amount.text):
            problems.append(f"amount not EUR with 2 decimals: {amount.get('Ccy')} {amount.text}")
        amounts.append(decimal.Decimal(amount.text))
        transactions.append({
            "end_to_end_id": one(tx, "p:PmtId/p:EndToEndId"),
            "amount": amount.text,
            "iban": one(tx, "p:CdtrAcct/p:Id/p:IBAN"),
            "name": one(tx, "p:Cdtr/p:Nm"),
        })
    if int(one(block, "p:NbOfTxs")) != len(amounts):
        problems.append("PmtInf NbOfTxs does not count its transactions")
    if decimal.Decimal(one(block, "p:CtrlSum")) != sum(amounts):
        problems.append("PmtInf CtrlSum is not the sum of its amounts")
    if len(one(block, "p:PmtInfId")) > 35:
        problems.append("PmtInfId longer than 35")
    all_amounts += amounts
if int(one(group, "p:NbOfTxs")) != len(all_amounts):
    problems.append("GrpHdr NbOfTxs does not count the transactions")
if decimal.Decimal(one(group, "p:CtrlSum")) != sum(all_amounts):
    problems.append("GrpHdr CtrlSum is not the sum of the amounts")
for identifier in [msg_id] + [t["end_to_end_id"] for t in transactions]:
    if not 1 <= len(identifier) <= 35:
        problems.append(f"id not 1-35 characters: {identifier!r}")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(json.dumps({"msg_id": msg_id, "ctrl_sum": str(sum(all_amounts)), "transactions": transactions}))
