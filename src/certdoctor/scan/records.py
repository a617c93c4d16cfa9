"""One result record per target: a compact form of the diagnosis (``--full``: the whole ``check --json``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .. import certinfo
from ..ct import report_for
from ..diagnosis import Diagnosis
from ..model import JSON_VERSION, PresentedChain
from .targets import BadLine, ScanTarget

CSV_COLUMNS = (
    "line",
    "target",
    "verdict",
    "errors",
    "warnings",
    "findings",
    "leaf_subject",
    "leaf_issuer",
    "not_after",
    "days_left",
    "leaf_address",
    "addresses",
    "error",
    "elapsed_ms",
)


# Every record is a "scan-record" document: these two keys first (see certdoctor.render.json).
_PREFIX: dict[str, Any] = {"certdoctor": JSON_VERSION, "kind": "scan-record"}
_PREFIX_TEXT = json.dumps(_PREFIX, separators=(",", ":"))[1:-1]


def _finding(f: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f.id, "severity": f.severity.value, "title": f.title, "detail": f.detail}
    if f.sources:
        out["sources"] = list(f.sources)
    if f.rejected_by:
        out["rejected_by"] = list(f.rejected_by)
    if f.cert_fingerprint is not None:
        out["certificate"] = {"position": f.cert_position, "sha256": f.cert_fingerprint, "subject": f.cert_subject}
    return out


def _leaves(chains: Sequence[PresentedChain], endpoints: list[dict[str, Any]], at: datetime) -> dict[str, Any] | None:
    """Give each endpoint the leaf its address presented, and return the record's ``leaf``: the one that expires
    soonest (or expired first) among the addresses, with the ``address`` that presented it (the worst case, so
    that ``select(.leaf.days_left < 30)`` sees an old certificate behind any address)."""
    worst: tuple[datetime, Any, str | None] | None = None
    seen: dict[int, tuple[datetime, dict[str, Any]]] = {}  # by certificate object: one per distinct certificate
    for c, endpoint in zip(chains, endpoints, strict=True):
        if not c.certs:
            continue
        cert = c.certs[0]
        got = seen.get(id(cert))
        if got is None:
            end = certinfo.not_after(cert)
            got = seen[id(cert)] = (
                end,
                {
                    "sha256": certinfo.fingerprint(cert),
                    "subject": certinfo.subject(cert),
                    "not_after": end.isoformat(),
                    "days_left": certinfo.days_until(end, at),
                },
            )
        endpoint["leaf"] = got[1]
        if worst is None or got[0] < worst[0]:
            worst = (got[0], cert, c.address)
    if worst is None:
        return None
    _, cert, address = worst
    short = seen[id(cert)][1]
    return {
        "subject": short["subject"],
        "issuer": certinfo.issuer(cert),
        "dns_names": certinfo.dns_names(cert)[:20],
        "not_after": short["not_after"],
        "days_left": short["days_left"],
        "sha256": short["sha256"],
        "address": address,
    }


def _ct(d: Diagnosis) -> dict[str, Any] | None:
    """The record's ``ct``: SCT counts of the first chain's leaf (None without a chain), see certdoctor.ct."""
    if not d.reports:
        return None
    r = d.reports[0]
    ct = report_for(d.evidence, r.chain, r.analysis)
    if ct is None:
        return None
    return {
        "sct_count": len(ct.scts),
        "distinct_logs": len({s.log_id for s in ct.scts}),
        "signatures_verified": ct.verified_against is not None,
        "invalid": len(ct.invalid),
        "policy_failures": [f.rule for f in ct.failures],
    }


def diagnosis_record(
    target: ScanTarget, d: Diagnosis, *, attempts: int, elapsed: float, full: bool, clients: bool
) -> dict[str, Any]:
    base: dict[str, Any] = {**_PREFIX, "line": target.line, "target": target.text}
    if full:
        doc = d.to_dict()
        del doc["certdoctor"], doc["kind"]  # the record's own
        doc["checked"] = doc.pop("target")
        return {**base, "attempts": attempts, **doc}
    ev = d.evidence
    endpoints = [
        {
            "source": c.source,
            "address": c.address,
            "ok": c.ok,
            "tls_version": c.tls_version,
            "error": c.error,
            "error_kind": c.error_kind,
            "leaf": None,
        }
        for c in ev.chains
    ]
    record = {
        **base,
        "host": target.host,
        "port": target.port,
        "sni": target.sni,
        "name": target.name,
        **({"starttls": target.starttls} if target.starttls else {}),
        "verdict": d.verdict.value,
        "rejected_by": list(d.rejected_by),
        "exit_code": d.exit_code,
        "checked_at": ev.at.isoformat(),
        "endpoints": endpoints,
        "leaf": _leaves(ev.chains, endpoints, ev.at),
        "ct": _ct(d),
        "findings": [_finding(f) for f in d.findings],
        "summary": {"errors": len(d.errors), "warnings": len(d.warnings)},
        "attempts": attempts,
        "elapsed_ms": round(elapsed * 1000, 1),
    }
    if clients:
        record["clients"] = [
            {"client": v.client, "accepts": v.accepts, "error": v.error, "because": list(v.because)} for v in d.clients
        ]
    return record


def error_record(
    target: ScanTarget, error: str, kind: str, *, attempts: int, elapsed: float, at: datetime
) -> dict[str, Any]:
    return {
        **_PREFIX,
        "line": target.line,
        "target": target.text,
        "host": target.host,
        "port": target.port,
        "sni": target.sni,
        "name": target.name,
        **({"starttls": target.starttls} if target.starttls else {}),
        "verdict": "unreachable",
        "rejected_by": [],
        "exit_code": 3,  # ExitCode.UNCHECKED, as for every unreachable target
        "checked_at": at.isoformat(),
        "error": error,
        "error_kind": kind,
        "endpoints": [],
        "leaf": None,
        # the same finding a refused or timed-out address gets, so that every unreachable record has one
        "findings": [
            {
                "id": "connection-failed" if kind == "resolve" else "scan-error",
                "severity": "error",
                "title": "Could not connect to an address" if kind == "resolve" else "The target could not be scanned",
                "detail": error,
            }
        ],
        "summary": {"errors": 1, "warnings": 0},
        "attempts": attempts,
        "elapsed_ms": round(elapsed * 1000, 1),
    }


def bad_line_record(bad: BadLine) -> dict[str, Any]:
    return {
        **_PREFIX,
        "line": bad.line,
        "target": bad.text,
        "verdict": "bad-input",
        "error": bad.reason,
        "endpoints": [],
        "leaf": None,
        "findings": [],
        "summary": {"errors": 0, "warnings": 0},
    }


def to_jsonl(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n"


def serialise(fmt: str, record: dict[str, Any]) -> str:
    """One record as the scan writes it: a CSV row for ``fmt`` "csv", else a JSON line."""
    return to_csv_row(record) if fmt == "csv" else to_jsonl(record)


_VARYING = ("certdoctor", "kind", "line", "attempts", "elapsed_ms")


def middle_of(fmt: str, record: dict[str, Any]) -> str:
    """The serialised record without its line number, attempts and timing (see :func:`splice`)."""
    if fmt == "csv":
        row = to_csv_row(record)
        return row[row.index(",") + 1 : row.rindex(",")]
    rest = {k: v for k, v in record.items() if k not in _VARYING}
    return json.dumps(rest, ensure_ascii=True, separators=(",", ":"))[1:-1]


def splice(fmt: str, line: int, middle: str, attempts: int, elapsed: float) -> str:
    """A record rebuilt from :func:`middle_of` for another line (a repeated target with the same evidence)."""
    ms = round(elapsed * 1000, 1)
    if fmt == "csv":
        return f"{line},{middle},{ms}\n"
    return f'{{{_PREFIX_TEXT},"line":{line},{middle},"attempts":{attempts},"elapsed_ms":{ms}}}\n'


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    """A cell as written: text that a spreadsheet would run as a formula (starting with = + - @, a tab or a
    carriage return) gets a leading single quote, as OWASP's CSV-injection guidance says; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv_row(record: dict[str, Any]) -> str:
    leaf = record.get("leaf") or {}
    findings = record.get("findings") or []
    summary = record.get("summary") or {}
    errors = [e["error"] for e in record.get("endpoints") or [] if e.get("error")]
    row = [
        record.get("line"),
        record.get("target"),
        record.get("verdict"),
        summary.get("errors", ""),
        summary.get("warnings", ""),
        " ".join(dict.fromkeys(f["id"] for f in findings)),
        leaf.get("subject", ""),
        leaf.get("issuer", ""),
        leaf.get("not_after", ""),
        leaf.get("days_left", ""),
        leaf.get("address", ""),
        " ".join(e["source"] for e in record.get("endpoints") or []),
        record.get("error") or "; ".join(errors),
        record.get("elapsed_ms", ""),
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([_csv_cell(v) for v in row])
    return out.getvalue()


def csv_header() -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(CSV_COLUMNS)
    return out.getvalue()
