"""Text rendering of `certdoctor inspect` (every string from a certificate goes through clean())."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from .. import certinfo
from .escape import clean

ROLE_STYLE = {"leaf": "magenta", "intermediate": "magenta", "root": "magenta", "unrelated": "red"}


def _row(key: str, value: str, style: str = "") -> Text:
    return Text(f"    {key:<10}", style="dim").append(clean(value, 2000), style=style)


def _issuer_text(d: dict[str, Any]) -> tuple[str, str]:
    if d["self_signed"]:
        stores = d["issuer_in_stores"]
        return (
            f"self-signed; in trust store(s): {', '.join(stores)}" if stores else "self-signed; in no selected store",
            "green" if stores else "yellow",
        )
    parts = [f"#{i}" for i in d["issued_by"]]
    if d["issuer_in_stores"]:
        parts.append(f"a root in {', '.join(d['issuer_in_stores'])}")
    if parts:
        return ("issued by " + " and ".join(parts), "green")
    return ("issuer not in the input and not a root of the selected stores", "red")


def _days(left: float) -> str:
    return certinfo.days_phrase(left)


def render_inspect(sources: list[tuple[str, list[dict[str, Any]]]], console: Console, *, quiet: bool = False) -> None:
    """Every certificate of every source; ``quiet``: one line each (position, role, subject, days left)."""
    for source, certs in sources:
        if not quiet:
            console.print(Text(f"{clean(source)} — {len(certs)} certificate(s)", style="bold underline"))
        for d in certs:
            head = Text(f"  #{d['index']} ", style="bold").append(f"{d['role']:<13}", style=ROLE_STYLE[d["role"]])
            head.append(clean(d["subject"] or "<empty subject>"), style="bold")
            if d["duplicate_of"] is not None:
                head.append(f"  (duplicate of #{d['duplicate_of']})", style="yellow")
            if quiet:
                console.print(Text(f"{clean(source)}").append(head).append(f"  {_days(d['days_left'])}"))
                continue
            console.print(head)
            link, style = _issuer_text(d)
            console.print(_row("issuer", d["issuer"]))
            console.print(_row("", link, style))
            console.print(_row("serial", d["serial"]))
            left = d["days_left"]
            state = _days(left)
            console.print(
                _row(
                    "valid",
                    f"{d['not_before'][:19]} → {d['not_after'][:19]} UTC  "
                    f"({state}; {int(d['validity_days'])} days in all)",
                    "red" if left < 0 else "",
                )
            )
            names = [
                *d["dns_names"],
                *(f"IP:{i}" for i in d["ip_addresses"]),
                *(f"email:{e}" for e in d["email_addresses"]),
                *(f"URI:{u}" for u in d["uris"]),
            ]
            if names or d["role"] == "leaf":
                console.print(
                    _row("names", ", ".join(names) if names else "(no subjectAltName)", "" if names else "red")
                )
            console.print(
                _row("key", f"{d['key']['type']} {d['key']['bits']} bits · signed {d['signature_algorithm']}")
            )
            usage = [d["basic_constraints"]]
            if d["key_usage"] is not None:
                usage.append("KU " + ", ".join(d["key_usage"]))
            if d["extended_key_usage"] is not None:
                usage.append("EKU " + ", ".join(d["extended_key_usage"]))
            console.print(_row("usage", " · ".join(usage)))
            for key, values in (
                ("caIssuers", d["ca_issuers"]),
                ("OCSP", d["ocsp_urls"]),
                ("CRL", d["crl_urls"]),
                ("policies", d["policies"]),
            ):
                if values:
                    console.print(_row(key, ", ".join(values)))
            if d["subject_key_id"] or d["authority_key_id"]:
                console.print(
                    _row("key ids", f"SKI {d['subject_key_id'] or '-'}  AKI {d['authority_key_id'] or '-'}", "dim")
                )
            console.print(_row("sha256", d["sha256"], "dim"))
            console.print(_row("sha1", d["sha1"], "dim"))
        if not quiet:
            console.print()


def render_pem_issues(issues: list[dict[str, Any]], console: Console) -> None:
    """The files' PEM formatting problems, one line each (after the certificates)."""
    for item in issues:
        where = f":{item['line']}" if item["line"] else ""
        console.print(
            Text(
                f"pem-format {clean(item['file'])}{where}: {clean(item['detail'])} (see certdoctor check --file)",
                style="yellow",
            )
        )
