"""PEM and DER containers: where the armoured blocks and DER SEQUENCEs of a byte string are, and the
certificates of a PKCS#7 bundle. Reading certificate files is :mod:`.files`; their formatting facts,
:mod:`.pemlint`.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

# BEGIN and END markers are found separately and paired in one pass, so that input full of unmatched
# BEGIN lines cannot make the scan quadratic.
_MARKER = re.compile(rb"-----(BEGIN|END) ([A-Z0-9 #]{1,64})-----")


@dataclass(frozen=True, slots=True)
class PemBlock:
    """One ``-----BEGIN X-----`` ... ``-----END X-----`` block; ``body`` is None when END is missing."""

    index: int  # 1-based position among all blocks of the input
    label: bytes
    body: bytes | None
    start: int  # offset of the BEGIN marker
    end: int  # offset just past the END marker (or of the next BEGIN / end of input when unterminated)


def iter_pem_blocks(data: bytes) -> Iterator[PemBlock]:
    """Every armoured block of ``data`` in order, whatever the label; text between blocks is ignored."""
    index = 0
    open_label: bytes | None = None
    open_start = body_start = 0
    for match in _MARKER.finditer(data):
        kind, label = match.group(1), match.group(2).strip()
        if kind == b"BEGIN":
            if open_label is not None:  # the previous block never ended
                index += 1
                yield PemBlock(index, open_label, None, open_start, match.start())
            open_label, open_start, body_start = label, match.start(), match.end()
        elif open_label is not None:
            index += 1
            yield PemBlock(index, open_label, data[body_start : match.start()], open_start, match.end())
            open_label = None
    if open_label is not None:
        index += 1
        yield PemBlock(index, open_label, None, open_start, len(data))


def der_sequence_length(data: bytes | memoryview, offset: int = 0) -> int | None:
    """Total length (header included) of the DER SEQUENCE at ``offset``, or None if there is none."""
    if len(data) < offset + 2 or data[offset] != 0x30:
        return None
    first = data[offset + 1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < offset + 2 + count:
        return None
    return 2 + count + int.from_bytes(data[offset + 2 : offset + 2 + count], "big")


def load_pkcs7_certificates(der: bytes) -> list[x509.Certificate]:
    """The certificates of a DER PKCS#7 (CMS SignedData) bundle; raises ValueError when it holds none."""
    with warnings.catch_warnings():  # OpenSSL writes unsorted SETs (BER); cryptography warns, we accept
        warnings.simplefilter("ignore")
        certs = pkcs7.load_der_pkcs7_certificates(der)
    if not certs:
        raise ValueError("the PKCS#7 bundle holds no certificates")
    return certs


PKCS12_SUFFIXES = (".p12", ".pfx")


def looks_like_pkcs12(path: str | Path, head: bytes) -> bool:
    """By name (.p12/.pfx), or by content: a PFX is SEQUENCE { INTEGER 3, ... } (RFC 7292 §4)."""
    if str(path).lower().endswith(PKCS12_SUFFIXES):
        return True
    if head[:1] != b"\x30" or len(head) < 8:
        return False
    length_octets = head[1] - 0x80 if head[1] & 0x80 else 0
    body = 2 + length_octets
    return head[body : body + 3] == b"\x02\x01\x03"
