"""The verdict by client: a chain is INVALID when a client family you care about refuses it.

The checks judge a chain against the standards (RFC 5280, the CA/B Forum requirements, the reference verifier);
the clients are the ground truth for "will it connect". :func:`reconcile` brings the two together, with the
finding × client table (:mod:`certdoctor.clients.reactions`) and, where the table says "depends", the
per-client predictions:

- an error finding that every client of interest accepts becomes a warning, its detail saying so (a standards
  non-conformance that no client minds is not why a client says "invalid");
- a warning or info finding that a client of interest refuses becomes an error naming that client (Java's
  ten-certificate limit, Firefox and a CA:TRUE server certificate);
- each finding records in ``rejected_by`` the clients that refuse the chain because of it.

So "INVALID" (an error finding) means a client of interest fails, and the verdict line can say which.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ..checks import REGISTRY
from ..model import Finding, Severity
from .engine import ClientVerdict
from .reactions import CLIENT_IDS, REACTIONS, Reaction, depends

DEFAULT_CLIENTS = CLIENT_IDS  # the mainstream set: browsers, OpenSSL-based clients, Java, Go, .NET
_UNKNOWN = depends("no entry in the finding × client table")
# Short names for sentences ("rejected by Java, Go"); the client table uses each profile's full name.
SHORT_NAMES = {
    "chrome": "Chrome",
    "firefox": "Firefox",
    "safari": "Safari",
    "curl": "curl",
    "python": "Python",
    "node": "Node.js",
    "java": "Java",
    "go": "Go",
    "dotnet": ".NET",
}


def client_name(client_id: str) -> str:
    """The short display name of a client family (``"java"`` → ``"Java"``)."""
    return SHORT_NAMES.get(client_id, client_id)


# Other names users know these clients by (the profiles' "covers"), and groups.
ALIASES: dict[str, tuple[str, ...]] = {
    "all": CLIENT_IDS,
    "mainstream": CLIENT_IDS,
    "browsers": ("chrome", "firefox", "safari"),
    "openssl": ("curl", "python", "node"),
    "edge": ("chrome",),
    "chromium": ("chrome",),
    "brave": ("chrome",),
    "electron": ("chrome",),
    "wget": ("curl",),
    "git": ("curl",),
    "php": ("curl",),
    "ruby": ("curl",),
    "requests": ("python",),
    "postman": ("node",),
    "kubectl": ("go",),
    "terraform": ("go",),
    "docker": ("go",),
    "powershell": ("dotnet",),
}


def parse_clients(spec: str) -> tuple[str, ...]:
    """``"chrome,java"`` → ``("chrome", "java")``, in the table's order, without repeats; ``"all"`` (or
    ``"mainstream"``) is every client family, ``"browsers"`` and ``"openssl"`` are groups, and other names the
    clients go by (``edge``, ``wget``, ``postman``, ``kubectl``…) stand for their family.

    Raises ValueError naming an unknown id."""
    wanted = [p.strip().lower() for p in spec.split(",") if p.strip()]
    if not wanted:
        raise ValueError("no client named")
    chosen: set[str] = set()
    for w in wanted:
        ids = ALIASES.get(w, (w,))
        for cid in ids:
            if cid not in CLIENT_IDS:
                names = ", ".join((*CLIENT_IDS, "browsers", "openssl", "all"))
                raise ValueError(f"unknown client {w!r} (one of: {names}; or a name such as edge, wget, postman)")
            chosen.add(cid)
    return tuple(c for c in CLIENT_IDS if c in chosen)


def _reactions(finding: Finding, care: Sequence[str]) -> dict[str, Reaction]:
    """The table's row for ``finding``, for the clients of interest. A finding its check reported milder than its
    registered severity is a partial case (a root missing from only some stores): there "rejects" means
    "depends", and the predictions decide."""
    table = REACTIONS.get(finding.id, {})
    row = {cid: table.get(cid, _UNKNOWN) for cid in care}
    info = REGISTRY.get(finding.id)
    if info is not None and finding.severity.rank > info.severity.rank:
        row = {cid: replace(r, kind="depends") if r.kind == "rejects" else r for cid, r in row.items()}
    return row


def _names(ids: Sequence[str]) -> str:
    return ", ".join(client_name(c) for c in ids)


def _with(finding: Finding, severity: Severity, rejected_by: Sequence[str], note: str = "") -> Finding:
    detail = finding.detail
    if note and note not in detail:
        detail = f"{detail.rstrip()} {note}".strip()
    return replace(finding, severity=severity, rejected_by=tuple(rejected_by), detail=detail)


# Errors kept whatever the clients do: revocation is the CA's statement that the certificate must not be
# trusted (most clients check none by default, yet the certificate must be replaced); a chain the reference
# verifier refuses for a reason no check names, or a certificate no strict parser reads, is not known to pass.
NEVER_DOWNGRADED = frozenset({"revoked", "verification-failed", "malformed-certificate"})


def _needs_predictions(f: Finding, rs: dict[str, Reaction]) -> bool:
    """Whether the per-client predictions decide this finding's severity."""
    kinds = [r.kind for r in rs.values()]
    if "depends" not in kinds:
        return False
    if f.severity is Severity.ERROR:
        return "rejects" not in kinds and f.id not in NEVER_DOWNGRADED
    return "rejects" not in kinds


def reconcile(
    findings: Sequence[Finding],
    care: Sequence[str] = DEFAULT_CLIENTS,
    predictions: Callable[[], Sequence[ClientVerdict]] | None = None,
    *,
    eager: bool = False,
) -> list[Finding]:
    """The findings with severities by client: see the module docstring.

    ``care``: the client family ids the verdict is about. ``predictions``: computes the per-client verdicts;
    called at most once, only when the table says "depends" for a finding whose severity they decide, or
    always when ``eager`` (the caller shows them anyway). For an error finding: a client of interest that
    rejects it (by the table, or by its prediction when the table says "depends") keeps it an error; when none
    does, it becomes a warning whose detail says so (except :data:`NEVER_DOWNGRADED`). For a warning or info
    finding: a client of interest that rejects it makes it an error naming that client.
    Returns the findings, errors first, in their original order within a severity.
    """
    care = tuple(c for c in care if c in CLIENT_IDS) or DEFAULT_CLIENTS
    table = [(f, _reactions(f, care)) for f in findings]
    needed = eager or any(_needs_predictions(f, rs) for f, rs in table)
    verdicts = list(predictions()) if (needed and predictions is not None) else None
    predicted: dict[str, list[str]] = {}  # finding id -> clients of interest whose prediction cites it
    if verdicts is not None:
        for v in verdicts:
            if v.client in care and not v.accepts:
                for fid in v.because:
                    predicted.setdefault(fid, []).append(v.client)
    out: list[Finding] = []
    for f, rs in table:
        kinds = {r.kind for r in rs.values()}
        static = [c for c, r in rs.items() if r.kind == "rejects"]
        cited = [c for c in predicted.get(f.id, []) if rs[c].kind == "depends"]
        rejected = [c for c in care if c in static or c in cited]
        if kinds == {"unaffected"} or (f.severity is Severity.ERROR and f.id in NEVER_DOWNGRADED):
            out.append(_with(f, f.severity, rejected))
        elif f.severity is Severity.ERROR and not rejected and (kinds == {"accepts"} or verdicts is not None):
            why = "accepts this" if kinds == {"accepts"} else "refuses this chain for it"
            if kinds != {"accepts"}:
                note = f"None of the clients considered ({_names(care)}) {why}."
            else:
                note = (
                    f"Every client considered ({_names(care)}) {why}: a standards non-conformance, not the reason "
                    "a client says the certificate is invalid."
                )
            out.append(_with(f, Severity.WARNING, (), note))
        elif f.severity is not Severity.ERROR and rejected:  # the reports show rejected_by ("Refused by: …")
            out.append(_with(f, Severity.ERROR, rejected))
        else:
            out.append(_with(f, f.severity, rejected))
    if verdicts is not None:
        out.extend(_uncited(out, verdicts, care))
    return sorted(out, key=lambda f: f.severity.rank)


# Predictions for a source that gave no chain: its own finding (connection-failed, unreadable-file…) says so.
_UNREACHABLE = frozenset(
    {
        "handshake",
        "not-tls",
        "timeout",
        "connect",
        "resolve",
        "starttls-denied",
        "starttls-not-offered",
        "starttls-protocol",
        "starttls-timeout",
    }
)


def _uncited(findings: Sequence[Finding], verdicts: Sequence[ClientVerdict], care: Sequence[str]) -> list[Finding]:
    """Clients of interest that refuse the chain for a reason no error finding carries (at the notAfter second
    OpenSSL says "expired" while RFC 5280 says valid, for instance): one error per finding id they cite first,
    naming every such client and what each prints. Never a silent VALID."""
    errors = {f.id for f in findings if f.severity is Severity.ERROR}
    grouped: dict[str, list[ClientVerdict]] = {}
    for v in verdicts:
        if v.client not in care or v.accepts or errors & set(v.because) or v.problem in _UNREACHABLE:
            continue
        grouped.setdefault(v.because[0] if v.because else "verification-failed", []).append(v)
    out: list[Finding] = []
    for fid, refusing in grouped.items():
        info = REGISTRY.get(fid)
        names = _names([v.client for v in refusing])
        said = "; ".join(f"{client_name(v.client)}: {v.error}" for v in refusing)
        out.append(
            Finding(
                id=fid,
                severity=Severity.ERROR,
                title=info.title if info is not None else f"{names} refuse this chain",
                detail=f"{names} refuse this chain although no standard check does ({said}).",
                fix="See those clients' lines in the client table for what they need.",
                citation=info.citation if info is not None else "",
                sources=tuple(dict.fromkeys(s for v in refusing for s in v.sources)),
                rejected_by=tuple(c for c in care if any(v.client == c for v in refusing)),
            )
        )
    return out


def rejected_by(findings: Sequence[Finding]) -> tuple[str, ...]:
    """The client ids that refuse the chain, over every error finding, in the table's client order."""
    ids = {c for f in findings if f.severity is Severity.ERROR for c in f.rejected_by}
    return tuple(c for c in CLIENT_IDS if c in ids)
