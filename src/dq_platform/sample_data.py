"""The project's own sample data: contract records with realistic defects, and labelled clauses.

Everything here is generated from templates written for this project, so the demo, the tests and the
sample-trained models work on a fresh clone without `../shared` data. Output is a pure function of
the seed, which keeps tests and the demo reproducible.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

RECORD_FIELDS = [
    "doc_id",
    "title",
    "counterparty",
    "contract_type",
    "effective_date",
    "expiry_date",
    "value_amount",
    "currency",
    "jurisdiction",
    "text",
    "label",
]
LABELS = ("HighRisk", "LowRisk")
CURRENCIES = ("USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "SGD")
JURISDICTIONS = ("US-NY", "US-DE", "US-CA", "UK", "IE", "DE", "FR", "NL", "SG", "CA-ON")
CONTRACT_TYPES = ("MSA", "NDA", "SOW", "License", "Supply", "Services", "Lease", "Distribution")

_PARTY = ("the Supplier", "the Provider", "the Licensor", "the Company", "the Vendor", "the Service Provider")
_OTHER = ("the Customer", "the Client", "the Licensee", "the Buyer", "the Distributor", "the Purchaser")
_PERIOD = ("thirty (30) days", "sixty (60) days", "ninety (90) days", "ten (10) business days", "one (1) year")
_SCOPE = ("the Services", "the Software", "the Products", "the Deliverables", "the Platform", "the Equipment")

_HIGH_RISK = (
    "{party} may terminate this Agreement at any time, for any reason or no reason, without notice and "
    "without liability to {other}.",
    "{party} may modify these terms, including fees, at its sole discretion and such changes take effect "
    "immediately upon posting, whether or not {other} has been notified.",
    "In no event shall {party} be liable for any damages whatsoever arising out of {scope}, even if "
    "advised of the possibility of such damages, and {other} waives all claims against {party}.",
    "{other} shall indemnify and hold harmless {party} against any and all losses, without limitation "
    "as to amount, arising from the use of {scope}.",
    "Any dispute shall be resolved exclusively by binding arbitration chosen by {party}, and {other} "
    "waives any right to a jury trial or to participate in a class action.",
    "{other} shall not, during the term and for five (5) years thereafter, engage in any business that "
    "competes with {party} anywhere in the world.",
    "{other} grants {party} an irrevocable, perpetual, royalty-free licence to any content or "
    "intellectual property it provides in connection with {scope}.",
    "If {other} fails to purchase the minimum annual volume, {other} shall pay liquidated damages equal "
    "to the full contract value for the remaining term.",
    "{party} may remove or suspend access to {scope} at any time, without cause and without refund to {other}.",
    "This Agreement renews automatically for successive terms and {other} may not cancel before the end "
    "of a renewal term without paying all remaining fees.",
    "Upon a change of control of {other}, {party} may immediately terminate this Agreement and accelerate "
    "all amounts payable for the remaining term.",
    "{other} appoints {party} as its exclusive provider and shall not purchase comparable {scope} from "
    "any third party during the term.",
)
_LOW_RISK = (
    "Either party may terminate this Agreement upon {period} written notice to the other party.",
    "All notices under this Agreement shall be in writing and delivered to the addresses set out above.",
    "{other} shall pay each undisputed invoice within {period} of receipt.",
    "Each party shall keep the other party's confidential information secret and use it only to perform "
    "this Agreement.",
    "This Agreement may be executed in counterparts, each of which is deemed an original.",
    "The headings in this Agreement are for convenience only and do not affect its interpretation.",
    "If any provision of this Agreement is held invalid, the remaining provisions remain in full force.",
    "{party} shall maintain commercially reasonable insurance covering its obligations under this Agreement.",
    "{party} warrants that {scope} will perform materially in accordance with the documentation for "
    "{period} after delivery.",
    "Each party's total liability under this Agreement is limited to the fees paid in the twelve months "
    "before the claim, except for breaches of confidentiality.",
    "{other} may audit the relevant records of {party} once per year upon {period} prior notice.",
    "This Agreement constitutes the entire agreement between the parties regarding {scope}.",
    "{party} shall provide {scope} in a professional manner consistent with industry standards.",
    "Neither party is liable for delays caused by events beyond its reasonable control.",
)
_SYLLABLES = ("Ac", "me", "Nor", "th", "wind", "Glo", "bex", "Ster", "ling", "Ori", "on", "Vel", "tra", "Quan")
_SUFFIX = ("Ltd", "LLC", "GmbH", "Inc", "plc", "BV", "SA", "Pte Ltd")


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        party=rng.choice(_PARTY),
        other=rng.choice(_OTHER),
        period=rng.choice(_PERIOD),
        scope=rng.choice(_SCOPE),
    )


def _company(rng: random.Random) -> str:
    name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
    return f"{name.capitalize()} {rng.choice(_SUFFIX)}"


def generate_clauses(n: int, seed: int = 0, high_risk_share: float = 0.3) -> list[dict[str, str]]:
    """Labelled clauses (`text`, `label`, `source_doc`); about 8 clauses share a document."""
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    for i in range(n):
        high = rng.random() < high_risk_share
        text = _fill(rng, rng.choice(_HIGH_RISK if high else _LOW_RISK))
        out.append({"text": text, "label": "HighRisk" if high else "LowRisk", "source_doc": f"sample/doc-{i // 8:05d}"})
    return out


def _clean_record(rng: random.Random, i: int, today: date) -> dict[str, Any]:
    n_clauses = rng.randint(1, 4)
    high = rng.random() < 0.3
    clauses = [_fill(rng, rng.choice(_LOW_RISK)) for _ in range(n_clauses)]
    if high:
        clauses[rng.randrange(n_clauses)] = _fill(rng, rng.choice(_HIGH_RISK))
    effective = today - timedelta(days=rng.randint(0, 900))
    expiry = effective + timedelta(days=rng.choice((180, 365, 730, 1095)))
    ctype = rng.choice(CONTRACT_TYPES)
    counterparty = _company(rng)
    return {
        "doc_id": f"CTR-{i:07d}",
        "title": f"{ctype} with {counterparty}",
        "counterparty": counterparty,
        "contract_type": ctype,
        "effective_date": effective.isoformat(),
        "expiry_date": expiry.isoformat(),
        "value_amount": round(rng.uniform(1_000, 2_000_000), 2),
        "currency": rng.choice(CURRENCIES),
        "jurisdiction": rng.choice(JURISDICTIONS),
        "text": " ".join(clauses),
        "label": "HighRisk" if high else "LowRisk",
    }


def _apply_defect(rng: random.Random, rec: dict[str, Any], previous: list[dict[str, Any]]) -> dict[str, Any]:
    """One realistic defect of the kinds contract feeds really carry."""
    kind = rng.choice(
        (
            "duplicate_id",
            "missing_counterparty",
            "bad_currency",
            "negative_value",
            "expiry_before_effective",
            "empty_text",
            "short_text",
            "unknown_jurisdiction",
            "bad_date",
            "huge_value",
        )
    )
    rec = dict(rec)
    if kind == "duplicate_id" and previous:
        rec["doc_id"] = rng.choice(previous)["doc_id"]
    elif kind == "missing_counterparty":
        rec["counterparty"] = None
    elif kind == "bad_currency":
        rec["currency"] = rng.choice(("usd", "XXX", "US$", ""))
    elif kind == "negative_value":
        rec["value_amount"] = -abs(float(rec["value_amount"]))
    elif kind == "expiry_before_effective":
        rec["expiry_date"] = (date.fromisoformat(rec["effective_date"]) - timedelta(days=30)).isoformat()
    elif kind == "empty_text":
        rec["text"] = ""
    elif kind == "short_text":
        rec["text"] = "TBD."
    elif kind == "unknown_jurisdiction":
        rec["jurisdiction"] = rng.choice(("Mars", "XX", "N/A"))
    elif kind == "bad_date":
        rec["effective_date"] = rng.choice(("31/02/2024", "2024-13-01", "yesterday"))
    elif kind == "huge_value":
        rec["value_amount"] = 5e11
    return rec


def generate_records(
    n: int, seed: int = 0, defect_rate: float = 0.08, today: date | None = None
) -> list[dict[str, Any]]:
    """Contract records; about `defect_rate` of them carry one defect.

    Defects draw from their own generator, so the same seed gives the same clean records at any rate.
    """
    rng = random.Random(seed)
    defect_rng = random.Random(f"defects-{seed}")
    today = today or date.today()
    records: list[dict[str, Any]] = []
    for i in range(n):
        rec = _clean_record(rng, i, today)
        if defect_rate > 0 and defect_rng.random() < defect_rate:
            rec = _apply_defect(defect_rng, rec, records)
        records.append(rec)
    return records


_MALFORMED_CSV = (
    '"CTR-BROKEN-{i},"unterminated quote,MSA',  # broken quoting
    "CTR-SHORT-{i},only three,columns",  # missing columns
    "CTR-TYPE-{i},Title,Party,MSA,2024-01-01,2025-01-01,not-a-number,USD,UK,Some clause text.,LowRisk",
)
_MALFORMED_JSONL = (
    '{{"doc_id": "CTR-TRUNC-{i}", "title": "Supply with Acme", "counterp',  # truncated record
    '["CTR-ARRAY-{i}", "not an object"]',
    '{{"doc_id": "CTR-TYPE-{i}", "value_amount": {{"nested": true}}}}',
)


def records_to_text(
    records: Iterable[dict[str, Any]],
    fmt: Literal["csv", "jsonl"] = "csv",
    malformed_lines: int = 0,
    seed: int = 0,
) -> str:
    """Serialise records, optionally splicing in `malformed_lines` broken lines at seeded positions."""
    rng = random.Random(seed)
    lines: list[str] = []
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        header, _, _ = buf.getvalue().partition("\n")
        body: list[str] = []
        for rec in records:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\n", extrasaction="ignore")
            writer.writerow(rec)
            body.append(buf.getvalue().rstrip("\n"))
        bad = [_MALFORMED_CSV[i % len(_MALFORMED_CSV)].format(i=i) for i in range(malformed_lines)]
        lines = [header, *_splice(rng, body, bad)]
    elif fmt == "jsonl":
        body = [json.dumps(rec, ensure_ascii=False) for rec in records]
        bad = [_MALFORMED_JSONL[i % len(_MALFORMED_JSONL)].format(i=i) for i in range(malformed_lines)]
        lines = _splice(rng, body, bad)
    else:
        raise ValueError(f"unknown format {fmt!r}: expected 'csv' or 'jsonl'")
    return "\n".join(lines) + "\n"


def _splice(rng: random.Random, body: list[str], bad: list[str]) -> list[str]:
    out = list(body)
    for line in bad:
        out.insert(rng.randint(0, len(out)), line)
    return out


def write_records(
    path: str | Path,
    records: Iterable[dict[str, Any]],
    fmt: Literal["csv", "jsonl"] = "csv",
    malformed_lines: int = 0,
    seed: int = 0,
) -> Path:
    """Write records as CSV or JSON lines (UTF-8, one record a line) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(records_to_text(records, fmt, malformed_lines, seed), encoding="utf-8")
    return path
