"""How a certificate file is written: PEM mistakes that make servers refuse or mangle the chain."""

from __future__ import annotations

from collections.abc import Iterator

from cryptography import x509

from .. import certinfo
from ..model import PemIssue, Severity
from .registry import Hit, TargetContext, check

# code -> (severity, why it matters, how to repair it; {f} is the file name)
PEM_RULES: dict[str, tuple[Severity, str, str]] = {
    "glued": (
        Severity.ERROR,
        "OpenSSL (nginx, Apache, HAProxy, curl) stops with 'bad end line' and loads no chain at all.",
        "Put each -----BEGIN/-----END line on its own line: "
        "`sed -i 's/-----END CERTIFICATE----------BEGIN/-----END CERTIFICATE-----\\n-----BEGIN/' {f}`; "
        "this usually comes from `cat cert.pem chain.pem` where cert.pem lacked a final newline.",
    ),
    "der": (
        Severity.ERROR,
        "nginx, Apache and HAProxy read PEM text only.",
        "Convert it: `openssl x509 -inform DER -in {f} -out cert.pem`.",
    ),
    "pkcs7": (
        Severity.ERROR,
        "A PKCS#7 bundle (.p7b/.p7c, as many CAs and Windows export) is not a certificate chain file; nginx, "
        "Apache and HAProxy cannot read it.",
        "Extract the certificates: `openssl pkcs7 -print_certs -in {f} -out chain.pem` (add -inform DER for a "
        "binary file), then order them leaf first.",
    ),
    "unterminated": (
        Severity.ERROR,
        "The file was truncated (copy/paste or upload cut short); servers reject it.",
        "Download or copy the certificate again completely, including the -----END CERTIFICATE----- line.",
    ),
    "crlf": (
        Severity.WARNING,
        "OpenSSL copes, but some appliances, load balancers, Java tools and Kubernetes secrets reject or "
        "misparse Windows line endings.",
        "Convert to Unix line endings: `sed -i 's/\\r$//' {f}` (or dos2unix).",
    ),
    "whitespace": (
        Severity.WARNING,
        "OpenSSL skips it, but strict parsers (Java keytool, cloud certificate uploads) reject the file.",
        "Remove spaces and tabs from the base64 lines: `sed -i '/^-----/!s/[ \\t]//g' {f}`.",
    ),
    "no-final-newline": (
        Severity.WARNING,
        "Concatenating this file with another (`cat cert.pem chain.pem > fullchain.pem`) glues two blocks on one "
        "line, which breaks the result.",
        "Add the newline: `echo >> {f}`.",
    ),
    "armour": (
        Severity.WARNING,
        "Servers read chain certificates with the plain 'CERTIFICATE' armour only; the chain entry may be "
        "skipped or rejected.",
        "Rewrite it as a plain certificate: `openssl x509 -in {f} -out cert.pem`.",
    ),
}


def _issues(ctx: TargetContext, codes: set[str]) -> Iterator[tuple[str, PemIssue]]:
    for chain in ctx.evidence.chains:
        for issue in chain.pem_issues:
            if issue.code in codes:
                yield issue.file or chain.source, issue


@check(
    "pem-format",
    title="The certificate file is not clean PEM",
    severity=Severity.WARNING,
    citation="RFC 7468 §2-§3 (textual encoding of certificates)",
    scope="target",
)
def pem_format(ctx: TargetContext) -> Iterator[Hit]:
    """Glued blocks, DER or PKCS#7 where PEM is expected, CRLF, whitespace in base64, no final newline, odd armour."""
    for source, issue in _issues(ctx, set(PEM_RULES)):
        severity, why, fix = PEM_RULES[issue.code]
        where = f" (line {issue.line})" if issue.line else ""
        yield Hit(
            f"{source}{where}: {issue.detail}. {why}",
            fix.format(f=source),
            severity=severity,
            sources=(source,),
            evidence={"file": source, "problem": issue.code, "line": issue.line},
        )


@check(
    "key-in-cert-file",
    title="A private key is stored in the certificate file",
    severity=Severity.WARNING,
    citation="CA/B Forum BR §6.1.1.3 (subscriber key protection); operational practice",
    scope="target",
)
def key_in_cert_file(ctx: TargetContext) -> Iterator[Hit]:
    """The chain file also contains a PRIVATE KEY block."""
    for source, issue in _issues(ctx, {"private-key"}):
        yield Hit(
            f"{source} (line {issue.line}): {issue.detail}. Certificate files are shared freely (uploaded to "
            "tickets, copied to load balancers, readable by every user); a key inside one leaks with it.",
            f"Move the key to its own file readable only by the server (`chmod 600`), remove it from {source}, "
            "and if the file has been shared, replace the key and certificate.",
            severity=Severity.WARNING,
            sources=(source,),
            evidence={"file": source, "line": issue.line},
        )


@check(
    "key-mismatch",
    title="The private key does not belong to the server certificate",
    severity=Severity.ERROR,
    citation="RFC 5280 §4.1.2.7 (subjectPublicKeyInfo); RFC 8446 §4.4.3 (CertificateVerify)",
    scope="target",
)
def key_mismatch(ctx: TargetContext) -> Iterator[Hit]:
    """With --key: the key's public half differs from the served certificate's public key. With --deployed, a
    key that belongs to a deployed file's leaf is the deployed pair: when that leaf is not the one served, the
    deployment checks (not-reloaded...) report it, and deployed-file-problem reports a key of no deployed leaf."""
    key = ctx.evidence.key_public
    if key is None:
        return
    if any(f.leaf is not None and _same(f.leaf, key) for f in ctx.evidence.deployed):
        return
    for c in ctx.chains:
        if _same(c.leaf, key):
            continue
        owner = next((cert for cert in c.chain.certs[1:] if _same(cert, key)), None)
        whose = (
            f" It is the key of {certinfo.display_name(owner)}, which is also in the chain: the certificates are "
            "probably in the wrong order."
            if owner is not None
            else " It usually belongs to the previous certificate, or to another CSR."
        )
        yield Hit(
            f"{ctx.evidence.key_source} does not match {certinfo.display_name(c.leaf)} (SHA-256 "
            f"{certinfo.short_fp(c.leaf)}…): a server configured with them fails to start ('key values mismatch' in "
            f"nginx, 'private key does not match the certificate public key' in Apache).{whose}",
            "Use the private key generated together with this certificate's CSR, or re-issue the certificate for "
            "the key you have (certdoctor fix --key checks the pair before writing).",
            cert=c.leaf,
            sources=c.sources,
            evidence={"key": ctx.evidence.key_source, "certificate_sha256": certinfo.fingerprint(c.leaf)},
        )


def _same(cert: x509.Certificate, key: object) -> bool:
    try:
        return bool(cert.public_key() == key)
    except Exception:
        return False
