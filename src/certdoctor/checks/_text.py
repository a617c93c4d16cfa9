"""Small wording helpers shared by the checks (plain text; renderers escape it)."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509

from .. import certinfo


def when(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def ago(later: datetime, earlier: datetime) -> str:
    """'3 days' / '5 hours' between two moments."""
    seconds = abs((later - earlier).total_seconds())
    if seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} days"
    if seconds >= 2 * 3600:
        return f"{int(seconds // 3600)} hours"
    return f"{int(seconds // 60)} minutes"


def label(cert: x509.Certificate) -> str:
    """'"CN" (sha256 ab12cd34…)' for use in sentences."""
    return f'"{certinfo.display_name(cert)}" (SHA-256 {certinfo.short_fp(cert)}…)'


def names_list(cert: x509.Certificate) -> str:
    names = [*certinfo.dns_names(cert), *(f"IP:{ip}" for ip in certinfo.ip_addresses(cert))]
    if not names:
        return "none (no subjectAltName)"
    if len(names) > 8:
        return ", ".join(names[:8]) + f", … ({len(names)} in all)"
    return ", ".join(names)
