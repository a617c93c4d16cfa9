"""Events: what changed between a target's previous observation and the new one (observation n vs n-1).

Pure functions of two :class:`Snapshot` values; :mod:`certdoctor.watch.store` loads and stores them. The kinds
and their ``detail`` (JSON objects):

- ``first-seen``: the target's first observation — ``verdict``, ``leaf_sha256``.
- ``unreachable``: no address presented a certificate (first observation included) — ``error``.
- ``reachable-again``: a certificate again after ``unreachable`` — ``verdict``.
- ``certificate-rotated``: another leaf than the last one seen — ``old_sha256``, ``new_sha256``,
  ``old_issuer``, ``new_issuer``, ``issuer_changed``, ``same_key`` (the same SubjectPublicKeyInfo, by SHA-256),
  ``old_not_after``, ``new_not_after``.
- ``finding-appeared`` / ``finding-resolved``: per finding id — ``id``, ``severity``.
- ``client-started-rejecting`` / ``client-stopped-rejecting``: per client family — ``client``.
- ``address-appeared`` / ``address-disappeared``: per address — ``address``.
- ``addresses-disagree``: the addresses started serving different chains — ``leaves`` (address → leaf
  SHA-256).
- ``break-forecast``: the first break of the target's forecast (:mod:`certdoctor.watch.forecasting`) moved —
  ``old_first_break``, ``new_first_break``, ``change`` (``earlier``: a new, nearer break; ``later``: renewed),
  ``days`` (new − old), and of the new first break ``clients``, ``reason_id``, ``reason``, ``certificate``
  (subject). Only between two forecasts that both have a break (a chain every client already rejects has
  none: the finding and client events say it).

Findings, clients, addresses and rotation compare two *reachable* observations (the last one with a
certificate): a target that was unreachable for a while and comes back with the same certificate gets
``reachable-again`` only, not every finding resolved and appeared again; one that comes back with a new
certificate gets ``certificate-rotated`` too. An expired or otherwise invalid certificate is reachable: it is
an observation with all its fields and ``finding-appeared`` events, never ``unreachable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KINDS = (
    "first-seen",
    "unreachable",
    "reachable-again",
    "certificate-rotated",
    "finding-appeared",
    "finding-resolved",
    "client-started-rejecting",
    "client-stopped-rejecting",
    "address-appeared",
    "address-disappeared",
    "addresses-disagree",
    "break-forecast",
)


@dataclass(frozen=True)
class Endpoint:
    address: str  # the IP address, or the source ("127.0.0.1:443") when there is none
    ok: bool
    error: str | None
    chain: tuple[str, ...]  # SHA-256 of each certificate presented, in the order presented


@dataclass(frozen=True)
class FirstBreak:
    """The first break of a target's forecast: when (None: no break forecast within its horizon), the client
    families that break then, why (``reason_id`` and text), the certificate's subject."""

    at: datetime | None
    clients: tuple[str, ...] = ()
    reason_id: str | None = None
    reason: str | None = None
    certificate: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """What events compare of one observation."""

    verdict: str  # "valid", "invalid" or "unreachable"
    leaf_sha256: str | None = None
    leaf_issuer: str | None = None
    leaf_spki_sha256: str | None = None  # "" when the key could not be read
    leaf_not_after: datetime | None = None
    findings: tuple[tuple[str, str], ...] = ()  # (id, severity)
    clients: tuple[tuple[str, bool], ...] = ()  # (client family, accepts)
    endpoints: tuple[Endpoint, ...] = ()
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    first_break: FirstBreak | None = None  # None: no forecast made with this observation (or none stored)

    @property
    def reachable(self) -> bool:
        return self.verdict != "unreachable"

    def disagreeing(self) -> dict[str, str] | None:
        """address → leaf SHA-256 when the addresses that presented a chain present different ones, else None."""
        served = {e.address: e.chain for e in self.endpoints if e.ok and e.chain}
        if len(set(served.values())) < 2:
            return None
        return {address: chain[0] for address, chain in served.items()}


Event = tuple[str, dict[str, Any]]  # (kind, detail)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def derive(previous: Snapshot | None, last_reachable: Snapshot | None, new: Snapshot) -> list[Event]:
    """The events of ``new`` given the target's ``previous`` observation and the last one that was reachable
    (``last_reachable``, possibly ``previous`` itself; None when there is none), in a stable order."""
    out: list[Event] = []
    if previous is None:
        out.append(("first-seen", {"verdict": new.verdict, "leaf_sha256": new.leaf_sha256}))
    if not new.reachable:
        if previous is None or previous.reachable:
            out.append(("unreachable", {"error": new.error}))
        return out
    if previous is not None and not previous.reachable:
        out.append(("reachable-again", {"verdict": new.verdict}))
    base = last_reachable
    if base is not None:
        out += _rotation(base, new)
        out += _findings(base, new)
        out += _clients(base, new)
        out += _addresses(base, new)
        out += _break_forecast(base, new)
    leaves = new.disagreeing()
    if leaves is not None and (base is None or base.disagreeing() is None):
        out.append(("addresses-disagree", {"leaves": leaves}))
    return out


def _rotation(old: Snapshot, new: Snapshot) -> list[Event]:
    if not old.leaf_sha256 or not new.leaf_sha256 or old.leaf_sha256 == new.leaf_sha256:
        return []
    return [
        (
            "certificate-rotated",
            {
                "old_sha256": old.leaf_sha256,
                "new_sha256": new.leaf_sha256,
                "old_issuer": old.leaf_issuer,
                "new_issuer": new.leaf_issuer,
                "issuer_changed": old.leaf_issuer != new.leaf_issuer,
                "same_key": bool(old.leaf_spki_sha256) and old.leaf_spki_sha256 == new.leaf_spki_sha256,
                "old_not_after": _time(old.leaf_not_after),
                "new_not_after": _time(new.leaf_not_after),
            },
        )
    ]


def _findings(old: Snapshot, new: Snapshot) -> list[Event]:
    before, after = dict(old.findings), dict(new.findings)
    out: list[Event] = [("finding-appeared", {"id": i, "severity": s}) for i, s in after.items() if i not in before]
    out += [("finding-resolved", {"id": i, "severity": s}) for i, s in before.items() if i not in after]
    return out


def _clients(old: Snapshot, new: Snapshot) -> list[Event]:
    before = dict(old.clients)
    out: list[Event] = []
    for client, accepts in new.clients:
        was = before.get(client, True)  # a client not predicted before: it did not reject
        if was and not accepts:
            out.append(("client-started-rejecting", {"client": client}))
        elif not was and accepts:
            out.append(("client-stopped-rejecting", {"client": client}))
    return out


def _addresses(old: Snapshot, new: Snapshot) -> list[Event]:
    before = [e.address for e in old.endpoints]
    after = [e.address for e in new.endpoints]
    out: list[Event] = [("address-appeared", {"address": a}) for a in after if a not in before]
    out += [("address-disappeared", {"address": a}) for a in before if a not in after]
    return out


def _break_forecast(old: Snapshot, new: Snapshot) -> list[Event]:
    if old.first_break is None or new.first_break is None:
        return []
    before, after = old.first_break.at, new.first_break.at
    if before is None or after is None or before == after:
        return []
    return [
        (
            "break-forecast",
            {
                "old_first_break": before.isoformat(),
                "new_first_break": after.isoformat(),
                "change": "earlier" if after < before else "later",
                "days": round((after - before).total_seconds() / 86400, 2),
                "clients": list(new.first_break.clients),
                "reason_id": new.first_break.reason_id,
                "reason": new.first_break.reason,
                "certificate": new.first_break.certificate,
            },
        )
    ]
