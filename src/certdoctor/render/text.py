"""Human output with rich. Only rich ``Text`` objects are printed (no markup parsing), and every string that
comes from a certificate or a server goes through :func:`clean`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .. import certinfo
from ..clients.engine import ClientVerdict
from ..clients.verdict import client_name
from ..ct import report_for
from ..diagnosis import ChainReport, Diagnosis
from ..model import Evidence, Finding, Severity
from .escape import clean

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
SEVERITY_MARK = {Severity.ERROR: "✗", Severity.WARNING: "!", Severity.INFO: "i"}


def _days(cert: x509.Certificate, at: datetime) -> tuple[str, str]:
    left = certinfo.days_until(certinfo.not_after(cert), at)
    if certinfo.not_before(cert) > at:
        return (f"not valid for {int(certinfo.days_until(certinfo.not_before(cert), at))} more days", "red")
    return (certinfo.days_phrase(left), "red" if left < 0 else ("yellow" if left < 30 else "green"))


def _role(report: ChainReport, index: int, cert: x509.Certificate) -> str:
    fp = certinfo.fingerprint(cert)
    first = report.analysis.position(cert)
    if index == 0:
        return "leaf"
    if first is not None and first != index:
        return f"duplicate of #{first}"
    if certinfo.is_self_signed(cert):
        return "root"
    if fp in report.analysis.on_any_path():
        return "intermediate"
    return "unrelated"


def _kv(key: str, value: str | Text, style: str = "") -> Text:
    t = Text(f"       {key:<8}", style="dim")
    t.append(value if isinstance(value, Text) else Text(clean(value), style=style))
    return t


def _cert_block(report: ChainReport, index: int, cert: x509.Certificate, at: datetime) -> list[Text]:
    role = _role(report, index, cert)
    head = Text(f"  #{index} ", style="bold")
    head.append(f"{role:<13}", style="magenta" if role != "unrelated" else "red")
    head.append(clean(certinfo.subject(cert) or "<empty subject>"), style="bold")
    days, style = _days(cert, at)
    validity = Text(f"{certinfo.not_before(cert):%Y-%m-%d} → {certinfo.not_after(cert):%Y-%m-%d}  ", style="").append(
        f"({days})", style=style
    )
    lines = [head, _kv("issuer", certinfo.issuer(cert)), _kv("valid", validity)]
    names = [*certinfo.dns_names(cert), *(f"IP:{ip}" for ip in certinfo.ip_addresses(cert))]
    if index == 0 or names:
        shown = ", ".join(names[:10]) + (f", … ({len(names)} names)" if len(names) > 10 else "")
        lines.append(_kv("names", shown or "(no subjectAltName)", "" if names else "red"))
    lines.append(_kv("key", f"{certinfo.key_str(cert)} · signed {certinfo.signature_algorithm(cert)}"))
    lines.append(_kv("sha256", certinfo.fingerprint(cert), "dim"))
    return lines


def _path_line(report: ChainReport) -> Text:
    best = report.analysis.best
    t = Text("  path   ", style="bold")
    for i, node in enumerate(best.nodes):
        if i:
            t.append(" → ")
        if node.origin == "presented":
            t.append(f"#{node.position}")
        else:
            where = "AIA" if node.origin == "aia" else f"store: {node.detail}"
            t.append(f"{clean(certinfo.display_name(node.cert), 80)} [{where}]", style="cyan")
    ending = {
        "anchor": (f"  ✓ ends at a trust anchor ({', '.join(best.anchored_in)})", "green"),
        "untrusted-root": ("  ✗ ends at a root no selected store trusts", "red"),
        "unknown-issuer": ("  ✗ issuer not found", "red"),
    }[best.end]
    t.append(ending[0], style=ending[1])
    return t


def _trust_line(report: ChainReport, extra: bool) -> Text:
    """Whether the whole chain verifies (path, dates, names, usages) against each store: unlike the path line,
    which only says where the path ends."""
    t = Text("  verify ", style="bold")
    for v in report.analysis.verdicts:
        label = v.store + ("+ca-file" if extra and v.store != "custom" else "")
        if v.ok:
            t.append(f"✓ {label}  ", style="green")
        elif v.ok_with_aia:
            t.append(f"~ {label} (only with AIA fetching)  ", style="yellow")
        else:
            t.append(f"✗ {label}", style="red")
            t.append(f" ({clean(v.error)})  " if v.error else "  ", style="dim")
    return t


_REVOCATION_STYLE = {
    "revoked": ("✗ revoked", "red"),
    "good": ("✓ good", "green"),
    "unknown": ("? unknown", "yellow"),
    "unchecked": ("not checked (--no-revocation)", "dim"),
    "no-issuer": ("not checkable (issuer unknown)", "dim"),
    "no-source": ("no OCSP or CRL URL", "dim"),
}
_ANSWER_SOURCE = {"staple": "stapled OCSP", "ocsp": "OCSP", "crl": "CRL"}


def _ct_line(report: ChainReport, ev: Evidence) -> Text | None:
    """``  CT     2 SCT(s) (embedded) from 2 log(s) · signatures ✓ 2 verified · Chrome ✓ · Firefox ✓ · Apple ✓``:
    only for a leaf with SCTs or a publicly trusted one (None otherwise)."""
    ct = report_for(ev, report.chain, report.analysis)
    if ct is None or (not ct.scts and not ct.public):
        return None
    t = Text("  CT     ", style="bold")
    sources = ", ".join(sorted({s.source for s in ct.scts})) or "none embedded, by TLS or OCSP"
    t.append(f"{len(ct.scts)} SCT(s) ({sources}) from {len({s.log_id for s in ct.scts})} log(s)")
    if ct.verified_against is None:
        t.append(" · signatures not verified (no --ct-log-list)", style="dim")
    else:
        good = sum(1 for s in ct.scts if s.verified)
        bad = len(ct.invalid)
        t.append(f" · signatures ✓ {good} verified", style="green" if good else "dim")
        if bad:
            t.append(f" ✗ {bad} invalid", style="red")
        unknown = len(ct.scts) - good - bad
        if unknown:
            t.append(f" ? {unknown} from unlisted logs", style="yellow")
    if ct.public:
        failed = {f.client for f in ct.failures}
        for client, name in (("chrome", "Chrome"), ("firefox", "Firefox"), ("safari", "Apple")):
            t.append(f" · {name} ", style="bold")
            t.append("✗" if client in failed else "✓", style="red" if client in failed else "green")
    else:
        t.append(" · not publicly trusted: browsers do not enforce CT", style="dim")
    return t


def _revocation_line(report: ChainReport) -> Text | None:
    if not report.revocation:
        return None
    t = Text("  revoc. ", style="bold")
    if all(s.status == "no-source" for s in report.revocation):
        return t.append("no OCSP or CRL URL in the chain (nothing to check)", style="dim")
    for i, status in enumerate(report.revocation):
        if i:
            t.append(" · ")
        position = report.analysis.position(status.cert)
        t.append(f"#{position} " if position is not None else f"{clean(certinfo.display_name(status.cert), 60)} ")
        text, style = _REVOCATION_STYLE[status.status]
        decided = status.decided_by
        if decided is not None:
            text += f" ({_ANSWER_SOURCE[decided.source]}"
            if decided.revoked_at is not None:
                text += f" {decided.revoked_at:%Y-%m-%d}, {clean(decided.reason or 'unspecified')}"
            text += ")"
        t.append(text, style=style)
    return t


def _finding(f: Finding, verbose: bool = True) -> list[Text | Padding]:
    head = Text(f"{SEVERITY_MARK[f.severity]} {f.severity.value.upper():<7} ", style=SEVERITY_STYLE[f.severity])
    head.append(f.id, style="bold")
    if verbose:
        head.append(f"  {f.title}")
    where = []
    if f.cert_position is not None:
        where.append(f"certificate #{f.cert_position}")
    if f.sources:
        where.append(", ".join(f.sources))
    if not verbose:
        if where:
            head.append(f"  [{clean(' · '.join(where))}]", style="dim")
        return [head]
    out: list[Text | Padding] = [head]
    if where:
        out.append(Padding(Text(clean(" · ".join(where)), style="dim"), (0, 0, 0, 10), expand=False))
    out.append(Padding(Text(clean(f.detail, 4000)), (0, 0, 0, 10), expand=False))
    if f.rejected_by:  # from the finding x client table and the predictions: the one source of client claims
        refused = Text("Refused by: ", style="bold red").append(", ".join(client_name(c) for c in f.rejected_by))
        out.append(Padding(refused, (0, 0, 0, 10), expand=False))
    out.append(Padding(Text("Fix: ", style="bold green").append(clean(f.fix, 4000)), (0, 0, 0, 10), expand=False))
    if f.citation and f.citation != "—":
        out.append(Padding(Text(f"See: {f.citation}", style="dim"), (0, 0, 0, 10), expand=False))
    return out


def clients_table(verdicts: Sequence[ClientVerdict], *, verbose: bool = True) -> Table:
    """One row per client family: accepts or not, and what it will print."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # a client's message wraps on a narrow terminal, never cut
    for v in verdicts:
        if v.accepts:
            mark = Text("✓", style="green")
            said = Text("accepts", style="green")
            if v.note:
                said.append(f" ({clean(v.note)})", style="dim")
        else:
            mark = Text("✗", style="red")
            said = Text(clean(v.error or "rejects"))
            if v.note:
                said.append(f"\n{clean(v.note)}", style="yellow")
            if verbose and v.because:
                said.append(f"\nbecause: {clean(', '.join(v.because))}", style="dim")
        table.add_row(mark, Text(clean(v.name), style="bold"), said)
    return table


# Chain problems `certdoctor fix` repairs by writing the chain the server should send.
FIXABLE = frozenset({"wrong-order", "missing-intermediate", "extra-cert", "duplicate-cert", "contains-root"})


def fix_command(d: Diagnosis) -> str | None:
    """The `certdoctor fix` command that repairs the chain problems found, or None."""
    if not FIXABLE & set(d.ids()):
        return None
    if d.target.is_files:
        return "certdoctor fix " + " ".join(d.target.files) + " -d fixed/"
    name = d.target.name or ""
    where = f"{name}:{d.target.port}"
    if d.target.starttls:  # the URL says how to reach it, whatever the port
        where = f"{d.target.starttls}://{where}"
    return f"certdoctor fix {where} -d fixed/   (then deploy fixed/fullchain.pem and reload)"


def render(
    d: Diagnosis, console: Console, *, quiet: bool = False, clients: bool = True, forecast: str | None = None
) -> None:
    """A diagnosis for a terminal or a pipe. The answer first: the verdict, then every problem (cause, evidence,
    fix), then what each client will say, then the details (addresses, chains, paths). On a terminal the last
    lines repeat the verdict and the first fix. ``quiet``: the verdict and one line per problem, nothing else.
    ``forecast``: a line printed under the verdict (the break forecast's "First break: …",
    :func:`certdoctor.forecast.first_break_line`)."""
    ev = d.evidence
    if quiet:
        console.print(verdict_line(d))
        for f in d.findings:
            for part in _finding(f, verbose=False):
                console.print(part)
        return
    title = Text("certdoctor ", style="bold").append(clean(d.target.label()), style="bold cyan")
    if d.target.starttls:
        title.append(f"  via {_upgrade_label(d.target.starttls)}", style="cyan")
    title.append(f"   checked as of {ev.at:%Y-%m-%d %H:%M} UTC", style="dim")
    console.print(title)
    console.print(verdict_line(d))
    if forecast:
        console.print(Text(clean(forecast, 4000), style="yellow" if forecast.startswith("First") else "dim"))
    console.print()
    if d.findings:
        console.print(Text("Problems", style="bold underline"))
        for f in d.findings:
            for part in _finding(f):
                console.print(part)
            console.print()
    repair = fix_command(d)
    if repair:
        console.print(Text("Repair the chain: ", style="bold green").append(clean(repair, 4000)))
        console.print()
    if clients and d.evidence.client_stores and d.clients:
        console.print(Text("Clients", style="bold underline"))
        if not d.reachable:
            console.print(Text("  every client fails to connect: no certificate could be obtained", style="red"))
        else:
            console.print(clients_table(d.clients))
            howto = _trust_howto(d.clients)
            if howto:
                console.print(Text("  To trust a private CA:", style="bold"))
                for names, recipe in howto:
                    console.print(Text(f"    {names}: ", style="bold").append(clean(recipe, 4000)))
            if d.evidence.extra_roots:
                console.print(Text("  (predicted as if each client had been given your --ca-file root)", style="dim"))
        console.print()
    console.print(Text("Details", style="bold underline"))
    for c in ev.chains:
        line = Text("  ")
        if c.ok:
            line.append("● ", style="green").append(clean(c.source))
            if c.starttls is not None:
                line.append(f"  {_upgrade_label(c.starttls.protocol)}", style="dim")
            if c.tls_version:
                line.append(f"  {clean(c.tls_version)} {clean(c.cipher or '')}", style="dim")
            line.append(f"  {c.total_received} certificate(s)", style="dim")
            if c.key_type is not None:  # a server with an RSA and an ECDSA certificate (checks.keytypes)
                how = f"offering only {c.key_type}" if c.key_type_only else "offering both"
                line.append(f"  {c.key_type} certificate ({how})", style="dim")
            if c.proxy is not None:
                line.append(f"  via proxy {clean(c.proxy)}", style="dim")
            if c.client_auth is not None:
                sent = "sent" if c.client_auth.sent else "none sent"
                line.append(f"  client certificate requested ({sent})", style="dim")
            if c.elapsed:
                line.append(f"  {c.elapsed * 1000:.0f} ms", style="dim")
        else:
            line.append("● ", style="red").append(clean(c.source)).append(
                f"  {clean(c.error or 'failed')}", style="red"
            )
        console.print(line)
        if c.starttls is not None and c.starttls.banner:
            console.print(Text(f"      greeting: {clean(c.starttls.banner)}", style="dim"))
    for r in d.reports:
        console.print()
        multi = len(d.reports) > 1
        heading = "Chain as presented" + (f" by {clean(', '.join(r.sources))}" if multi or ev.target.is_files else "")
        console.print(Text(heading, style="bold"))
        for i, cert in enumerate(r.chain.certs):
            console.print(Group(*_cert_block(r, i, cert, ev.at)))
        if r.chain.total_received > len(r.chain.certs):
            console.print(Text(f"  … {r.chain.total_received - len(r.chain.certs)} more not analysed", style="yellow"))
        console.print(_path_line(r))
        console.print(_trust_line(r, bool(ev.extra_roots)))
        revocation = _revocation_line(r)
        if revocation is not None:
            console.print(revocation)
        ct = _ct_line(r, ev)
        if ct is not None:
            console.print(ct)
    if ev.deployed:
        console.print()
        console.print(Text("Deployed files", style="bold"))
        for line in _deployed_lines(ev):
            console.print(line)
    caa = caa_lines(d)
    if caa:
        console.print()
        for line in caa:
            console.print(line)
    for note in d.notes:
        console.print(Text(f"note: {clean(note)}", style="dim"))
    if console.is_terminal:  # the answer again where the eye lands after scrolling
        console.print()
        console.print(verdict_line(d))
        first = next((f for f in d.findings if f.severity is Severity.ERROR), None) or (
            d.findings[0] if d.findings else None
        )
        if first is not None:
            console.print(Text(f"First fix ({first.id}): ", style="bold green").append(clean(first.fix, 4000)))


def _deployed_lines(ev: Evidence) -> list[Text]:
    """One line per --deployed file: path, format, modification time, certificates, the leaf's full SHA-256 and
    notBefore, and the key comparison (or why it could not be read)."""
    lines = []
    for f in ev.deployed:
        line = Text("  ")
        if f.error is not None:
            lines.append(line.append("● ", style="red").append(clean(f.error), style="red"))
            continue
        line.append("● ", style="green").append(clean(f.path))
        line.append(f"  {f.format}", style="dim")
        if f.mtime is not None:
            line.append(f"  modified {f.mtime:%Y-%m-%d %H:%M:%S} UTC", style="dim")
        what = f"{len(f.certs)} certificate(s)" if f.certs else "a private key, no certificate"
        line.append(f"  {what}" + (" + private key" if f.has_key and f.certs else ""), style="dim")
        leaf = f.leaf
        if leaf is not None:
            line.append(f"\n       leaf sha256 {certinfo.fingerprint(leaf)}  valid from ")
            line.append(f"{certinfo.not_before(leaf):%Y-%m-%d %H:%M} UTC")
        if f.key_matches is not None:
            good = f.key_matches
            line.append(f"  key {'matches' if good else 'does NOT match'}", style="green" if good else "red")
        lines.append(line)
    return lines


def caa_lines(d: Diagnosis) -> list[Text]:
    """The CAA section: a heading (resolver, time, the issuer and its CAA domains or "unknown: not compared"),
    then one line per name looked up: where its relevant record set is and its records (iodef included), "no CAA
    records: any CA may issue", or the failure. Nothing when no name was looked up."""
    from ..checks.caa import issuer_organisation, known_issuer

    caa = d.evidence.caa
    looked = [lu for lu in (caa.lookups if caa is not None else ()) if lu.skipped is None]
    if not looked:
        return []
    head = Text("CAA", style="bold").append(f"  asked {clean(caa.resolver)}, {caa.elapsed * 1000:.0f} ms", style="dim")
    leaf = next((r.chain.certs[0] for r in d.reports if r.chain.certs), None)
    if leaf is not None:
        known = known_issuer(leaf, caa.issuers)
        if known is None:
            org = issuer_organisation(leaf) or "(no organisation)"
            head.append(f"  issuer {clean(org)}: CAA domain unknown, not compared", style="dim")
        else:
            head.append(f"  issuer {clean(known[0])}: CAA domain {' or '.join(known[2])}", style="dim")
    lines = [head]
    for lu in looked:
        line = Text("  ")
        if lu.error is not None:
            line.append("● ", style="yellow").append(clean(lu.name)).append(
                f"  lookup failed: {clean(lu.error)}", style="yellow"
            )
        elif not lu.records:
            line.append("● ", style="dim").append(clean(lu.name)).append(
                "  no CAA records: any CA may issue", style="dim"
            )
        else:
            line.append("● ", style="green").append(clean(lu.name))
            where = lu.relevant or lu.domain
            line.append(f"  at {clean(where)}" + (f" (alias {clean(lu.alias)})" if lu.alias else ""), style="dim")
            for r in lu.records:
                line.append(f"\n       {clean(str(r), 400)}")
        lines.append(line)
    for note in caa.notes:
        lines.append(Text(f"  {clean(note)}", style="dim"))
    return lines


def _trust_howto(verdicts: Sequence[ClientVerdict]) -> list[tuple[str, str]]:
    """How to make each client that rejects an untrusted or self-signed root trust it: one line per distinct
    recipe, with the clients it is for (instead of the same advice under every client)."""
    recipes: dict[str, list[str]] = {}
    for v in verdicts:
        if not v.accepts and {"untrusted-root", "self-signed"} & set(v.because) and v.trust_howto:
            recipes.setdefault(v.trust_howto, []).append(v.name)
    return [(", ".join(names), recipe) for recipe, names in recipes.items()]


def verdict_line(d: Diagnosis) -> Text:
    """The first line of a report: VALID or INVALID and, by client, who refuses it (see
    :mod:`certdoctor.clients.verdict`), or why nothing could be judged."""
    errors, warnings = len(d.errors), len(d.warnings)
    if not d.reachable and d.target.is_files:
        return Text("✗ UNREADABLE — no certificate could be read from the file(s)", style="bold red")
    if not d.reachable:
        return Text("✗ UNREACHABLE — no certificate could be obtained", style="bold red")
    counts = f"{errors} error(s), {warnings} warning(s)"
    considered = len(d.verdict_clients)
    if d.valid:
        anchors = {s for r in d.reports for s in r.analysis.best.anchored_in}
        if anchors == {"custom"}:
            how = "trusted through the --ca-file root(s) only"
        else:
            how = "trusted by " + (
                ", ".join(sorted({s for r in d.reports for s in r.analysis.trusted_by})) or "no store"
            )
        t = Text("✓ VALID", style="bold green")
        if 0 < considered <= 3:
            accepted = f"accepted by {', '.join(client_name(c) for c in d.verdict_clients)}; "
        else:
            accepted = f"accepted by all {considered} clients considered; " if considered else ""
        t.append(f" — {accepted}{how}; {counts}")
        return t
    t = Text("✗ INVALID", style="bold red")
    rejecting = d.rejected_by
    if rejecting and len(rejecting) == considered and considered > 3:
        t.append(f" — rejected by all {considered} clients considered")
    elif rejecting and considered == 1:
        t.append(f" — rejected by {client_name(rejecting[0])}, the client considered")
    elif rejecting:
        names = ", ".join(client_name(c) for c in rejecting)
        t.append(f" — rejected by {names} ({len(rejecting)} of {considered or len(rejecting)} clients)")
    ids = ", ".join(dict.fromkeys(f.id for f in d.errors))
    if not rejecting and considered:  # revoked: the clients connect, the certificate must still be replaced
        t.append(f" — no client considered refuses it by default, yet {counts}: {ids}")
    else:
        t.append(f" — {counts}: {ids}")
    return t


def _upgrade_label(protocol: str) -> str:
    """How a STARTTLS protocol is named in the report: "SMTP STARTTLS", "POP3 STLS", "LDAP StartTLS"."""
    from ..collect.starttls import PROTOCOLS

    upgrade = PROTOCOLS.get(protocol)
    return f"{protocol.upper()} STARTTLS" if upgrade is None else f"{upgrade.title} {upgrade.command}"
