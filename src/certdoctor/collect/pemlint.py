"""Facts about how a certificate file is written: the small PEM mistakes that break servers and appliances.

Pure observation (no judgement): each fact carries the line it was seen on; the checks decide severity.
"""

from __future__ import annotations

import re

from ..model import PemIssue
from .pem import der_sequence_length, iter_pem_blocks, load_pkcs7_certificates

_GLUED = re.compile(rb"-----END [A-Z0-9 #]{1,64}-----[ \t]*-----BEGIN ")
_LABEL_NOTES = {
    b"TRUSTED CERTIFICATE": "OpenSSL's 'TRUSTED CERTIFICATE' armour (with trust settings appended)",
    b"X509 CERTIFICATE": "the obsolete 'X509 CERTIFICATE' armour",
}


class _Lines:
    """Line numbers for increasing offsets in linear total time (hostile files hold 10,000s of blocks)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset, self.line = data, 0, 1

    def __call__(self, offset: int) -> int:
        if offset < self.offset:  # rare: restart from the top
            self.offset, self.line = 0, 1
        self.line += self.data.count(b"\n", self.offset, offset)
        self.offset = offset
        return self.line


def lint_pem(data: bytes) -> list[PemIssue]:
    """Every formatting problem of a certificate file, in file order (at most one per kind and block)."""
    issues: list[PemIssue] = []
    blocks = list(iter_pem_blocks(data))
    _line = _Lines(data)
    if not blocks:
        if data[:1] == b"\x30" and der_sequence_length(data) is not None:
            try:
                load_pkcs7_certificates(data)
                issues.append(PemIssue("pkcs7", "the file is binary PKCS#7 (.p7b/.p7c), not PEM"))
            except Exception:
                issues.append(PemIssue("der", "the file is binary DER, not PEM text"))
        return issues
    for m in _GLUED.finditer(data):
        issues.append(
            PemIssue("glued", "an END line and the next BEGIN line are glued together on one line", _line(m.start()))
        )
    if b"\r\n" in data:
        issues.append(PemIssue("crlf", "Windows (CRLF) line endings", _Lines(data)(data.index(b"\r\n"))))
    for block in blocks:
        line = _line(block.start)
        label = block.label
        if label.endswith(b"PRIVATE KEY"):
            issues.append(PemIssue("private-key", f"a {label.decode()} block is stored in the certificate file", line))
            continue
        if label in _LABEL_NOTES:
            issues.append(PemIssue("armour", f"block {block.index} uses {_LABEL_NOTES[label]}", line))
        if label in (b"PKCS7", b"PKCS #7 SIGNED DATA"):
            issues.append(PemIssue("pkcs7", f"block {block.index} is a PKCS#7 bundle, not certificates", line))
        if block.body is None:
            issues.append(PemIssue("unterminated", f"block {block.index} ({label.decode()}) has no END line", line))
            continue
        body_lines = block.body.replace(b"\r", b"").split(b"\n")
        for offset, raw in enumerate(body_lines):
            text = raw.strip(b"\r")
            if b":" in text:  # RFC 1421 headers (Proc-Type, DEK-Info) are not base64
                continue
            if b" " in text.strip() or b"\t" in text.strip():
                issues.append(
                    PemIssue("whitespace", f"spaces or tabs inside the base64 of block {block.index}", line + offset)
                )
                break
    if not data.endswith(b"\n"):
        issues.append(PemIssue("no-final-newline", "the file does not end with a newline", _line(len(data))))
    return issues
