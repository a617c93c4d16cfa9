"""PEM and DER containers: where the armoured blocks and DER SEQUENCEs of a byte string are, and the
certificates of a PKCS#7 bundle. Reading certificate files is :mod:`.files`; their formatting facts,
:mod:`.pemlint`.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
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


# What cryptography raises for input it cannot load besides ValueError: a certificate version other than v1-v3
# (x509.InvalidVersion) and a PKCS#7 content type other than SignedData (UnsupportedAlgorithm).
_LOAD_ERRORS = (x509.InvalidVersion, UnsupportedAlgorithm)


def load_der_certificate(der: bytes) -> x509.Certificate:
    """One DER certificate; raises ValueError (only) when ``der`` is not one cryptography can load."""
    try:
        return x509.load_der_x509_certificate(der)
    except _LOAD_ERRORS as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


def load_pkcs7_certificates(der: bytes) -> list[x509.Certificate]:
    """The certificates of a DER PKCS#7 (CMS SignedData) bundle; raises ValueError (only) when it holds none or
    cannot be loaded."""
    with warnings.catch_warnings():  # OpenSSL writes unsorted SETs (BER); cryptography warns, we accept
        warnings.simplefilter("ignore")
        try:
            certs = pkcs7.load_der_pkcs7_certificates(der)
        except _LOAD_ERRORS as exc:
            raise ValueError(str(exc) or type(exc).__name__) from None
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


# --- PKCS#12 key-derivation work, read before anything derives a key -----------------------------------------

# AlgorithmIdentifiers whose parameters are SEQUENCE { salt OCTET STRING, iterations INTEGER, ... }: the PKCS#12
# PBE schemes (1.2.840.113549.1.12.1.*) and PKCS#5 PBES1 and PBKDF2 (1.2.840.113549.1.5.*; PBES2 and PBMAC1
# carry a PBKDF2 AlgorithmIdentifier inside).
_PBE_OID_PREFIXES = (bytes.fromhex("2a864886f70d010c01"), bytes.fromhex("2a864886f70d0105"))
_MAX_DER_NODES = 100_000
_MAX_ENCAPSULATION = 6
_HUGE = 1 << 64


class _Node:
    __slots__ = ("children", "tag", "value")

    def __init__(self, tag: int, value: bytes) -> None:
        self.tag = tag
        self.value = value  # the content octets (primitive), b"" for constructed
        self.children: list[_Node] = []


def _parse_der(data: bytes, budget: list[int], depth: int = 0) -> list[_Node]:
    """The TLV elements of ``data`` as trees: constructed elements hold their children, and an OCTET STRING
    whose content is itself DER (PKCS#12 nests its ContentInfos so) is parsed too. BER indefinite lengths and
    constructed OCTET STRINGs are accepted. Iterative; ``budget[0]`` elements at most, across nested calls.
    Raises ValueError for malformed input or too many elements."""
    roots: list[_Node] = []
    frames: list[tuple[list[_Node], int | None]] = [(roots, len(data))]  # (children, end; None: indefinite)
    pos = 0
    while frames:
        children, end = frames[-1]
        if end is not None:
            if pos == end:
                frames.pop()
                continue
            if pos > end:
                raise ValueError("a DER element overruns its parent")
        elif data[pos : pos + 2] == b"\0\0":
            pos += 2  # end-of-contents of an indefinite-length element
            frames.pop()
            continue
        if pos + 2 > len(data):
            raise ValueError("truncated DER")
        tag, first = data[pos], data[pos + 1]
        if tag & 0x1F == 0x1F:
            raise ValueError("high-tag-number form")
        pos += 2
        length: int | None
        if first < 0x80:
            length = first
        elif first == 0x80:
            if not tag & 0x20:
                raise ValueError("indefinite length on a primitive element")
            length = None
        else:
            count = first & 0x7F
            if count > 4 or pos + count > len(data):
                raise ValueError("bad DER length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        if length is not None and pos + length > len(data):
            raise ValueError("truncated DER")
        budget[0] -= 1
        if budget[0] < 0:
            raise ValueError("too many DER elements")
        if tag & 0x20:
            node = _Node(tag, b"")
            children.append(node)
            frames.append((node.children, None if length is None else pos + length))
            continue
        assert length is not None
        node = _Node(tag, data[pos : pos + length])
        children.append(node)
        pos += length
        if tag == 0x04 and node.value[:1] == b"\x30" and depth < _MAX_ENCAPSULATION:
            try:
                node.children = _parse_der(node.value, budget, depth + 1)
            except ValueError:
                node.children = []  # an OCTET STRING that merely starts like DER (a salt, a digest)
    for node in _constructed_octet_strings(roots):
        content = b"".join(c.value for c in node.children if c.tag == 0x04)
        if content[:1] == b"\x30" and depth < _MAX_ENCAPSULATION:
            with contextlib.suppress(ValueError):
                node.children = _parse_der(content, budget, depth + 1)
    return roots


def _constructed_octet_strings(roots: list[_Node]) -> list[_Node]:
    found, todo = [], list(roots)
    while todo:
        node = todo.pop()
        if node.tag == 0x24:
            found.append(node)
        else:
            todo.extend(node.children)
    return found


def _integer(node: _Node) -> int:
    if len(node.value) > 8:
        return _HUGE
    return int.from_bytes(node.value, "big", signed=True)


def pkcs12_iteration_counts(data: bytes) -> list[int]:
    """Every key-derivation iteration count a PKCS#12 file asks for that can be read without a password: its
    MAC's and those of the PBE / PBES2 (PBKDF2) AlgorithmIdentifiers outside encrypted content. A bounded,
    non-recursive DER walk, to refuse a hostile count before any KDF runs. Raises ValueError when ``data`` is
    not DER (or BER) that can be walked."""
    roots = _parse_der(bytes(data), [_MAX_DER_NODES])
    if not roots or roots[0].tag != 0x30:
        raise ValueError("not a DER SEQUENCE")
    counts: list[int] = []
    pfx = roots[0].children
    if len(pfx) >= 3 and pfx[2].tag == 0x30:  # MacData ::= SEQUENCE { mac, macSalt, iterations INTEGER DEFAULT 1 }
        mac = pfx[2].children
        if len(mac) >= 3 and mac[1].tag == 0x04 and mac[2].tag == 0x02:
            counts.append(_integer(mac[2]))
    todo = list(roots)
    while todo:
        node = todo.pop()
        todo.extend(node.children)
        kids = node.children
        if node.tag != 0x30 or len(kids) < 2 or kids[0].tag != 0x06 or kids[1].tag != 0x30:
            continue
        if not kids[0].value.startswith(_PBE_OID_PREFIXES):
            continue
        params = kids[1].children
        if len(params) >= 2 and params[0].tag == 0x04 and params[1].tag == 0x02:
            counts.append(_integer(params[1]))
    return counts
