"""The file parsers under a mutation fuzzer (issue 15, "the campaign as tests").

Seeds are real files built in memory (a root, an intermediate and two leaves from ``pki_builder``): PEM chains,
DER certificates, PKCS#7 bundles (DER, PEM, nested), OpenSSL's TRUSTED CERTIFICATE armour, private keys in
every format (encrypted too) and PKCS#12 bundles. Hypothesis mutates them byte by byte and block by block: bit
flips, truncations, insertions, deletions, splices of PEM/DER pieces of other seeds, corrupted and huge DER
lengths, repeated blocks, CRLF and whitespace noise, deep nesting, re-armouring, PKCS#7 wrapping and
certificates re-signed after their TBS was mutated (so that the chain still links and every check runs).

The oracle: each entry point raises nothing but what it documents (``CertificateParseError`` from the
certificate parsers, ``KeyLoadError`` from the key and PKCS#12 loaders, ``FixError``/``InputError`` from
``read_inputs``; ``chain_from_bytes``, ``lint_pem``, ``looks_like_pkcs12``, ``certinfo.summary``, ``judge``,
the renderers and ``to_dict`` raise nothing), and no text output or error message holds a raw ESC or C1
control character. A mutated PKCS#12 file must not make the key derivation run long: the per-example deadline
fails the test if the iteration-count guard (``collect.pem.pkcs12_iteration_counts``) is bypassed.

Sizes: the CI profile runs 1,000 examples per parser entry point (certificate parsers, key loaders, PKCS#12,
fix's ``read_inputs``) and 500 for the whole judgement and rendering (4,500 in all), derandomized (the same
inputs on every run), with a 3 s deadline per example; the file takes about 20 s on 2 cores. For a longer,
randomized campaign: ``CERTDOCTOR_FUZZ_EXAMPLES=20000 python3 -m pytest tests/test_fuzz_parsers.py`` (N random
examples per test); add ``CERTDOCTOR_FUZZ_KEEP=1`` to have a crashing input written to ``tests/fuzz-regressions/``.

Every crashing input found is kept in ``tests/fuzz-regressions/`` and replayed through every oracle by
``test_regression_files``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tempfile
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs7, pkcs12
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from rich.console import Console

from certdoctor import certinfo
from certdoctor.api import judge
from certdoctor.collect.files import (
    CertificateParseError,
    chain_from_bytes,
    parse_certificates,
    parse_certificates_lenient,
)
from certdoctor.collect.keys import KeyLoadError, keys_in, load_pkcs12, load_private_key
from certdoctor.collect.pem import looks_like_pkcs12, pkcs12_iteration_counts
from certdoctor.collect.pemlint import lint_pem
from certdoctor.errors import InputError
from certdoctor.fixer import read_inputs
from certdoctor.inspection import Entry, describe
from certdoctor.model import Evidence, PresentedChain, Target, TrustStore
from certdoctor.paths import StoreIndex
from certdoctor.render.inspect_text import render_inspect
from certdoctor.render.json import dumps
from certdoctor.render.text import render
from hostile_der import tlv
from pki_builder import AT, Issued, intermediate, leaf, root, rsa_key

REGRESSIONS = Path(__file__).parent / "fuzz-regressions"
PASSWORD = b"fuzz"
NAME = "fuzz.test"
MAX_INPUT = 256 * 1024  # mutations that grow an input stop growing it here

# --- profiles -------------------------------------------------------------------------------------------------

_LONG = int(os.environ.get("CERTDOCTOR_FUZZ_EXAMPLES") or 0)


def fuzz_settings(examples: int) -> Callable[[Any], Any]:
    """CI: ``examples`` derandomized examples. With CERTDOCTOR_FUZZ_EXAMPLES=N: N random examples per test."""
    return settings(
        max_examples=_LONG or examples,
        deadline=timedelta(seconds=3),
        derandomize=not _LONG,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# --- seeds ----------------------------------------------------------------------------------------------------


def _pem(label: str, der: bytes, headers: bytes = b"") -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN " + label.encode() + b"-----\n" + headers + lines + b"\n-----END " + label.encode() + b"-----\n"


def _signed_data(*items: bytes, content: bytes = b"") -> bytes:
    """A PKCS#7 SignedData ContentInfo whose certificates are ``items`` (raw DER) and whose encapsulated data is
    ``content`` (e.g. another PKCS#7: nesting)."""
    signed_data_oid = tlv(0x06, bytes.fromhex("2a864886f70d010702"))
    data_oid = tlv(0x06, bytes.fromhex("2a864886f70d010701"))
    encap = tlv(0x30, data_oid + (tlv(0xA0, tlv(0x04, content)) if content else b""))
    body = tlv(0x02, b"\x01") + tlv(0x31, b"") + encap + tlv(0xA0, b"".join(items)) + tlv(0x31, b"")
    return tlv(0x30, signed_data_oid + tlv(0xA0, tlv(0x30, body)))


@cache
def pki() -> dict[str, Issued]:
    r = root("Fuzz Root")
    ca = intermediate(
        "Fuzz CA",
        r,
        name_constraints=x509.NameConstraints(permitted_subtrees=[x509.DNSName("test")], excluded_subtrees=None),
        ocsp_url="http://ocsp.fuzz.test/",
    )
    lf = leaf(
        NAME,
        ca,
        sans=[NAME, "*.fuzz.test"],
        ocsp_url="http://ocsp.fuzz.test/",
        aia_ca_issuers="http://aia.fuzz.test/ca.cer",
        must_staple=True,
        extensions=[
            (
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier("http://crl.fuzz.test/ca.crl")], None, None, None
                        )
                    ]
                ),
                False,
            ),
            (x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), False),
        ],
    )
    rsa_leaf = leaf("rsa.fuzz.test", ca, key=rsa_key("fuzz rsa leaf"), not_after=AT + timedelta(days=10))
    return {"root": r, "ca": ca, "leaf": lf, "rsa": rsa_leaf}


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@cache
def cert_seeds() -> tuple[bytes, ...]:
    p = pki()
    lf, ca, r, rl = (_der(p[k].cert) for k in ("leaf", "ca", "root", "rsa"))
    chain_pem = _pem("CERTIFICATE", lf) + _pem("CERTIFICATE", ca)
    p7 = pkcs7.serialize_certificates([p["leaf"].cert, p["ca"].cert], serialization.Encoding.DER)
    key_pem = p["leaf"].key.private_bytes(serialization.Encoding.PEM, PrivateFormat.PKCS8, serialization.NoEncryption())
    return (
        chain_pem,
        chain_pem + _pem("CERTIFICATE", r),
        _pem("CERTIFICATE", rl) + _pem("CERTIFICATE", ca),
        lf,
        lf + ca + b"\n",
        rl,
        p7,
        _pem("PKCS7", p7),
        _signed_data(lf, ca, content=_signed_data(r)),  # nested PKCS#7
        _pem("TRUSTED CERTIFICATE", lf + tlv(0x30, tlv(0x06, bytes.fromhex("2b06010505070301")))),
        _pem("X509 CERTIFICATE", ca),
        key_pem + chain_pem,
        base64.encodebytes(lf),  # base64 without armour
        chain_pem.replace(b"\n", b"\r\n"),
        b"subject=CN = fuzz.test\n" + _pem("CERTIFICATE", lf, headers=b"Proc-Type: 4,CRL\n\n"),
    )


@cache
def key_seeds() -> tuple[bytes, ...]:
    p = pki()
    ec_key, rsa_k = p["leaf"].key, p["rsa"].key
    enc = serialization.BestAvailableEncryption(PASSWORD)
    plain = serialization.NoEncryption()
    return (
        ec_key.private_bytes(serialization.Encoding.PEM, PrivateFormat.PKCS8, plain),
        ec_key.private_bytes(serialization.Encoding.PEM, PrivateFormat.TraditionalOpenSSL, plain),
        ec_key.private_bytes(serialization.Encoding.DER, PrivateFormat.PKCS8, plain),
        ec_key.private_bytes(serialization.Encoding.PEM, PrivateFormat.PKCS8, enc),
        ec_key.private_bytes(serialization.Encoding.PEM, PrivateFormat.TraditionalOpenSSL, enc),
        ec_key.private_bytes(serialization.Encoding.DER, PrivateFormat.PKCS8, enc),
        rsa_k.private_bytes(serialization.Encoding.PEM, PrivateFormat.TraditionalOpenSSL, plain),
        rsa_k.private_bytes(serialization.Encoding.DER, PrivateFormat.TraditionalOpenSSL, plain),
        ec_key.private_bytes(serialization.Encoding.PEM, PrivateFormat.PKCS8, plain) + cert_seeds()[0],
    )


@cache
def p12_seeds() -> tuple[bytes, ...]:
    p = pki()
    lf, ca = p["leaf"], p["ca"]
    small = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(64)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(PASSWORD)
    )
    legacy = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(64)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .build(PASSWORD)
    )
    return (
        pkcs12.serialize_key_and_certificates(b"fuzz", lf.key, lf.cert, [ca.cert], serialization.NoEncryption()),
        pkcs12.serialize_key_and_certificates(b"fuzz", lf.key, lf.cert, [ca.cert], small),
        pkcs12.serialize_key_and_certificates(b"fuzz", lf.key, lf.cert, None, legacy),
        pkcs12.serialize_key_and_certificates(None, None, None, [lf.cert, ca.cert], small),
    )


def all_seeds() -> tuple[bytes, ...]:
    return cert_seeds() + key_seeds() + p12_seeds()


# --- mutations ------------------------------------------------------------------------------------------------

DER_TAGS = frozenset({0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x16, 0x17, 0x18, 0x30, 0x31, 0xA0, 0xA3, 0x80, 0x82})
HUGE_LENGTHS = (
    b"\x00",
    b"\x7f",
    b"\x80",  # indefinite (BER)
    b"\x81\x00",
    b"\x81\xff",
    b"\x82\xff\xff",
    b"\x83\xff\xff\xff",
    b"\x84\xff\xff\xff\xff",
    b"\x84\x7f\xff\xff\xff",
    b"\x84\x00\x00\x00\x01",
    b"\x85\x01\x00\x00\x00\x00",
    b"\x88\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x8f" + b"\xff" * 15,
    b"\xff",
)
TOKENS = (
    b"\r\n",
    b"\r",
    b"\n",
    b" ",
    b"\t",
    b"\x00",
    b"\x1b[31m",
    b"\x1b]8;;http://x\x07",
    b"\x9b",
    "\u202e".encode(),
    b"-----BEGIN CERTIFICATE-----\n",
    b"-----END CERTIFICATE-----\n",
    b"-----BEGIN PKCS7-----\n",
    b"-----BEGIN TRUSTED CERTIFICATE-----",
    b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
    b"-----END PRIVATE KEY-----",
    b"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n",
    b"====",
    b"\x30\x80",
    b"\x00\x00",
    b"\x30\x84\xff\xff\xff\xff",
    b"\x02\x01\x03",
)
LABELS = (
    "CERTIFICATE",
    "TRUSTED CERTIFICATE",
    "X509 CERTIFICATE",
    "PKCS7",
    "PKCS #7 SIGNED DATA",
    "CMS",
    "PRIVATE KEY",
    "EC PRIVATE KEY",
    "RSA PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
)


def der_headers(data: bytes, limit: int = 4000) -> list[tuple[int, int]]:
    """(offset, header length) of the DER elements of ``data`` that a tolerant walk finds (nested too)."""
    found: list[tuple[int, int]] = []
    todo = [(0, len(data))]
    while todo and len(found) < limit:
        pos, end = todo.pop()
        while pos + 2 <= end and len(found) < limit:
            tag, first = data[pos], data[pos + 1]
            if first < 0x80:
                head, length = 2, first
            else:
                n = first & 0x7F
                if n == 0 or n > 4 or pos + 2 + n > end:
                    break
                head, length = 2 + n, int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
            if pos + head + length > end:
                break
            found.append((pos, head))
            if tag & 0x20 or (tag == 0x04 and data[pos + head : pos + head + 1] == b"\x30"):
                todo.append((pos + head, pos + head + length))
            elif tag == 0x03 and data[pos + head + 1 : pos + head + 2] == b"\x30":
                todo.append((pos + head + 1, pos + head + length))
            pos += head + length
    return found


def element(data: bytes | bytearray, offset: int, head: int) -> bytes:
    """The whole DER element (header and content) at ``offset`` whose header is ``head`` bytes long."""
    length = data[offset + 1] if head == 2 else int.from_bytes(data[offset + 2 : offset + head], "big")
    return bytes(data[offset : offset + head + length])


def _at(draw: Any, data: bytearray) -> int:
    return draw(st.integers(0, len(data)))


def m_flip(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    if data:
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
    return data


def m_truncate(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    return data[: _at(draw, data)]


def m_insert(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    i = _at(draw, data)
    data[i:i] = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=12)))
    return data


def m_delete(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    i = _at(draw, data)
    del data[i : i + draw(st.integers(1, 64))]
    return data


def m_splice(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    """A piece of another seed (a whole PEM block, a DER element or any slice) inserted or replacing a piece."""
    other = draw(st.sampled_from(pool))
    pieces = [element(other, o, h) for o, h in der_headers(other, 200)]
    start = other.find(b"-----BEGIN")
    if start >= 0:
        pieces.append(other[start : other.find(b"-----\n", other.find(b"-----END", start)) + 6])
    a = draw(st.integers(0, len(other)))
    pieces.append(other[a : a + draw(st.integers(1, 2048))])
    piece = draw(st.sampled_from(pieces))
    i = _at(draw, data)
    j = i + draw(st.sampled_from((0, 0, len(piece), draw(st.integers(0, 256)))))
    data[i:j] = piece
    return data


def m_der_length(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    """Corrupt the length of a DER element: huge, zero, indefinite, off by a little, or too many octets."""
    headers = der_headers(bytes(data)) or [(i, 2) for i, b in enumerate(data[:-1]) if b in DER_TAGS][:4000]
    if not headers:
        return data
    offset, head = draw(st.sampled_from(headers))
    old = data[offset + 1 : offset + head]
    current = old[0] if head == 2 else int.from_bytes(old[1:], "big")
    delta = draw(st.integers(-3, 3))
    near = max(0, current + delta)
    near_enc = bytes([near]) if near < 0x80 else bytes([0x82]) + (near & 0xFFFF).to_bytes(2, "big")
    data[offset + 1 : offset + head] = draw(st.sampled_from((*HUGE_LENGTHS, near_enc)))
    return data


def m_tag(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    headers = der_headers(bytes(data))
    if headers:
        offset, _ = draw(st.sampled_from(headers))
        data[offset] = draw(st.sampled_from((*sorted(DER_TAGS), 0x1F, 0x24, 0x00, 0xFF)))
    return data


def m_repeat(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    """A block (a PEM block, a DER element or a slice) repeated up to 40 times."""
    blocks = []
    start = data.find(b"-----BEGIN")
    if start >= 0:
        end = data.find(b"-----END", start)
        end = data.find(b"-----", end + 8) + 6 if end >= 0 else len(data)
        blocks.append((start, min(end, len(data))))
    blocks.extend((o, o + h) for o, h in der_headers(bytes(data), 50))
    a = _at(draw, data)
    blocks.append((a, min(len(data), a + draw(st.integers(1, 512)))))
    a, b = draw(st.sampled_from(blocks))
    piece = bytes(data[a:b])
    if piece:
        data[b:b] = piece * draw(st.integers(1, min(40, MAX_INPUT // len(piece))))
    return data


def m_whitespace(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    kind = draw(st.sampled_from(("crlf", "cr", "strip-final", "indent", "trailing", "blank", "tabs")))
    text = bytes(data)
    if kind == "crlf":
        text = text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    elif kind == "cr":
        text = text.replace(b"\n", b"\r")
    elif kind == "strip-final":
        text = text.rstrip()
    elif kind == "indent":
        text = text.replace(b"\n", b"\n  ")
    elif kind == "trailing":
        text = text.replace(b"\n", b" \t\n")
    elif kind == "blank":
        text = text.replace(b"\n", b"\n\n")
    else:
        text = b"\t" + text.replace(b"-----\n", b"-----\t")
    return bytearray(text)


def m_wrap(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    """Nest the input: in SEQUENCEs / [0] / OCTET STRINGs (deeply), or in a PKCS#7 bundle as its certificate."""
    if draw(st.booleans()):
        return bytearray(_signed_data(bytes(data), draw(st.sampled_from(pool))[:4096]))
    out = bytes(data)
    for _ in range(draw(st.sampled_from((1, 2, 50, 600)))):
        out = tlv(draw(st.sampled_from((0x30, 0xA0, 0x04, 0x31))), out)
    return bytearray(out)


def m_armour(draw: Any, data: bytearray, pool: tuple[bytes, ...]) -> bytearray:
    """The bytes as a PEM block (any label), or a PEM block's content as bytes (to mutate DER under PEM)."""
    text = bytes(data)
    start = text.find(b"-----BEGIN")
    if start >= 0 and draw(st.booleans()):
        body_start = text.find(b"-----", start + 10) + 5
        end = text.find(b"-----END", body_start)
        try:
            return bytearray(base64.b64decode(b"".join(text[body_start : end if end > 0 else None].split())))
        except ValueError:
            return data
    headers = draw(st.sampled_from((b"", b"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233\n\n")))
    return bytearray(_pem(draw(st.sampled_from(LABELS)), text, headers))


MUTATIONS = (
    m_flip,
    m_flip,
    m_truncate,
    m_insert,
    m_delete,
    m_splice,
    m_der_length,
    m_der_length,
    m_tag,
    m_repeat,
    m_whitespace,
    m_wrap,
    m_armour,
)


def mutated(pool: tuple[bytes, ...], splice_pool: tuple[bytes, ...] | None = None) -> st.SearchStrategy[bytes]:
    """A seed of ``pool`` after 0 to 5 mutations (pieces spliced in come from ``splice_pool``)."""

    @st.composite
    def build(draw: Any) -> bytes:
        data = bytearray(draw(st.sampled_from(pool)))
        for _ in range(draw(st.integers(0, 5))):
            data = draw(st.sampled_from(MUTATIONS))(draw, data, splice_pool or pool)
            del data[MAX_INPUT:]
        return bytes(data)

    return build()


# --- re-signed certificates: a mutated TBS still linked to its issuer -----------------------------------------


def _children(der: bytes) -> list[bytes] | None:
    """The complete TLVs inside one constructed DER element, or None when it does not walk."""
    found = der_headers(der, 1)
    if not found or found[0] != (0, found[0][1]):
        return None
    head = found[0][1]
    out, pos = [], head
    while pos < len(der):
        inner = der_headers(der[pos:], 1)
        if not inner:
            return None
        out.append(element(der, pos, inner[0][1]))
        pos += len(out[-1])
    return out


def resign(mutated_tbs_cert: bytes, signer: Any) -> bytes:
    """``mutated_tbs_cert`` (a certificate whose TBS was mutated) signed again by ``signer``, when its outer
    SEQUENCE still walks; otherwise unchanged."""
    parts = _children(mutated_tbs_cert)
    if not parts or len(parts) != 3:
        return mutated_tbs_cert
    tbs, algid, _ = parts
    if isinstance(signer, rsa.RSAPrivateKey):
        signature = signer.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = signer.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return tlv(0x30, tbs + algid + tlv(0x03, b"\x00" + signature))


# A DER element as a tree: (tag, content bytes) for a primitive, (tag, [children]) for a constructed element, and
# (tag, [children], prefix) for an OCTET STRING or BIT STRING encapsulating DER (extension values, RSA keys).
Node = tuple[Any, ...]
STRING_TAGS = (0x0C, 0x12, 0x13, 0x14, 0x16, 0x1A, 0x1C, 0x1E, 0x80, 0x81, 0x82, 0x86, 0x87)
VALUES = (
    b"",
    b"\x00",
    b"\x1b[31mred\x1b[0m",
    b"\x1b]8;;http://evil.test\x07link",
    b"\xc2\x9b31m",
    "\u202eevil\u200b".encode(),
    b"\xff\xfe\xfd",
    b"*.",
    b"*.*.test",
    b"xn--zz",
    b"a" * 300,
    b"1.2.3.4",
    b"\x7f\x00\x00\x01",
    b"[red]markup[/red]",
    b"991231235959Z",
    b"00000000000000Z",
    b"99991231235959+9999",
    b"\x80" + b"\xff" * 20,
)


def parse_tree(data: bytes) -> list[Node] | None:
    """The elements of ``data`` as trees, or None when it is not a sequence of whole DER elements."""
    out: list[Node] = []
    pos = 0
    while pos < len(data):
        found = der_headers(data[pos:], 1)
        if not found:
            return None
        whole = element(data, pos, found[0][1])
        tag, content = whole[0], whole[found[0][1] :]
        if tag & 0x20:
            kids = parse_tree(content)
            out.append((tag, kids) if kids is not None else (tag, content))
        elif tag == 0x04 and content[:1] == b"\x30" and (kids := parse_tree(content)) is not None:
            out.append((tag, kids, b""))
        elif tag == 0x03 and content[1:2] == b"\x30" and (kids := parse_tree(content[1:])) is not None:
            out.append((tag, kids, content[:1]))
        else:
            out.append((tag, content))
        pos += len(whole)
    return out


def serialise(nodes: list[Node]) -> bytes:
    out = b""
    for node in nodes:
        tag, body = node[0], node[1]
        inner = body if isinstance(body, bytes) else (node[2] if len(node) == 3 else b"") + serialise(body)
        out += tlv(tag, inner)
    return out


def _paths(nodes: list[Node], prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    found = []
    for i, node in enumerate(nodes):
        found.append((*prefix, i))
        if not isinstance(node[1], bytes):
            found.extend(_paths(node[1], (*prefix, i)))
    return found


def _node(nodes: list[Node], path: tuple[int, ...]) -> Node:
    node = nodes[path[0]]
    for i in path[1:]:
        node = node[1][i]
    return node


def m_tree(draw: Any, nodes: list[Node]) -> None:
    """One structural mutation, lengths kept right: a value or tag replaced, an element dropped, repeated,
    moved or added."""
    kind = draw(st.sampled_from(("value", "value", "value", "value", "tag", "drop", "repeat", "swap", "add")))
    if kind in ("value", "tag"):  # a primitive: a string of a name, a time, an extension's content...
        paths = [q for q in _paths(nodes) if isinstance(_node(nodes, q)[1], bytes)]
    else:  # inside a field (an RDN, an extension), so that the TBS still has its shape
        paths = [q for q in _paths(nodes) if len(q) >= 3]
    if not paths:
        return
    path = draw(st.sampled_from(paths))
    siblings = nodes
    for i in path[:-1]:
        siblings = siblings[i][1]
    i = path[-1]
    node = siblings[i]
    if kind == "value":
        value = draw(st.one_of(st.sampled_from(VALUES), st.binary(max_size=40)))
        if node[0] == 0x02:  # INTEGER: huge, zero, negative
            value = draw(st.sampled_from((b"\x00", b"\xff", b"\x80" + b"\x00" * 30, b"\x7f" * 40, value)))
        siblings[i] = (node[0], value)
    elif kind == "tag":
        siblings[i] = (draw(st.sampled_from((*STRING_TAGS, 0x02, 0x05, 0x06, 0x17, 0x18))), node[1])
    elif kind == "drop":
        del siblings[i]
    elif kind == "repeat":
        siblings[i:i] = [node] * draw(st.sampled_from((1, 2, 200)))
    elif kind == "swap" and len(siblings) > 1:
        j = draw(st.integers(0, len(siblings) - 1))
        siblings[i], siblings[j] = siblings[j], siblings[i]
    else:
        siblings.insert(i, (draw(st.sampled_from(STRING_TAGS)), draw(st.sampled_from(VALUES))))


@st.composite
def resigned_chain(draw: Any) -> bytes:
    """A leaf + CA chain (PEM or DER) where one certificate's TBS was mutated (structurally, or byte by byte)
    and signed again by its issuer, so that the chain still links and every check runs on hostile fields."""
    p = pki()
    which = draw(st.sampled_from(("leaf", "rsa", "ca")))
    parts = parse_tree(_der(p[which].cert))
    assert parts is not None
    (_, (tbs_node, algid, _)) = parts[0]
    if draw(st.integers(0, 3)):
        fields = parse_tree(serialise(tbs_node[1]))  # a fresh copy of the TBS fields, to mutate in place
        assert fields is not None
        for _ in range(draw(st.integers(1, 3))):
            m_tree(draw, fields)
        tbs = tlv(0x30, serialise(fields))
    else:
        tbs = serialise([tbs_node])
        mutation = draw(st.sampled_from((m_flip, m_der_length, m_tag, m_insert, m_delete, m_splice)))
        tbs = bytes(mutation(draw, bytearray(tbs), (tbs, *cert_seeds()[3:6])))
    signer = p["root" if which == "ca" else "ca"].key
    der = resign(tlv(0x30, tbs + serialise([algid]) + tlv(0x03, b"\x00")), signer)
    ders = [der, _der(p["ca"].cert)] if which != "ca" else [_der(p["leaf"].cert), der]
    if draw(st.booleans()):
        return b"".join(_pem("CERTIFICATE", d) for d in ders)
    return b"".join(ders)


# --- the oracles ----------------------------------------------------------------------------------------------


def _event(text: str) -> None:
    """Count an outcome for ``--hypothesis-show-statistics`` (what share of the inputs gets how deep)."""
    if currently_in_test_context():
        event(text)


# Raw ESC and C1 controls: what makes a terminal run a sequence instead of showing text.
_CONTROL = {chr(0x1B), *map(chr, range(0x80, 0xA0))}


def assert_printable(text: str, what: str) -> None:
    bad = sorted({c for c in text if c in _CONTROL})
    assert not bad, f"{what} holds raw control characters {bad!r}: {text[:300]!r}"


def check_cert_parsers(data: bytes) -> list[x509.Certificate]:
    """Every certificate-file entry point on ``data``; returns the certificates parse_certificates found."""
    looks_like_pkcs12("fuzz.pem", data[:64])
    issues = lint_pem(data)
    for issue in issues:
        assert_printable(issue.detail, "a PEM issue")
    certs: list[x509.Certificate] = []
    try:
        certs = parse_certificates(data, max_certs=64)
        assert certs, "parse_certificates returned no certificate without raising"
    except CertificateParseError as exc:
        assert_printable(str(exc), "a parse error")
    try:
        lenient, skipped = parse_certificates_lenient(data, max_certs=64)
        assert lenient or skipped
        assert len(lenient) >= len(certs)
    except CertificateParseError as exc:
        assert_printable(str(exc), "a lenient parse error")
    chain = chain_from_bytes(data, "fuzz.pem", max_certs=64)
    assert not chain.error or not chain.certs
    if chain.error:
        assert not chain.error.startswith("cannot parse fuzz.pem:"), f"a parser bug was caught: {chain.error}"
        assert_printable(chain.error, "a chain error")
    for cert in certs:
        json.dumps(certinfo.summary(cert, AT), default=str)
    _event(f"certificates: {len(certs)}" if certs else f"chain error: {(chain.error or '')[:40]}")
    return certs


def check_judgement(certs: list[x509.Certificate], source: str = "fuzz.pem") -> None:
    """The whole judgement of a parsed chain, its text and JSON renderings, and inspect's description."""
    if not certs:
        return
    p = pki()
    stores = (TrustStore(name="fuzz", description="the fuzz root", roots=(p["root"].cert,)),)
    chain = PresentedChain(source=source, certs=tuple(certs[:32]), total_received=len(certs))
    for name in (NAME, None):
        d = judge(Evidence(target=Target(name, files=(source,)), at=AT, chains=(chain,), stores=stores))
        console = Console(file=io.StringIO(), width=100, color_system=None, force_terminal=False)
        render(d, console)
        render(d, console, quiet=True)
        assert_printable(console.file.getvalue(), "the text rendering")  # type: ignore[attr-defined]
        assert_printable(dumps(d.to_dict()), "the JSON document")
    entries = [Entry(i, source, i, c) for i, c in enumerate(certs[:32])]
    described = describe(entries, AT, StoreIndex(stores))
    console = Console(file=io.StringIO(), width=100, color_system=None, force_terminal=False)
    render_inspect([(source, described)], console)
    assert_printable(console.file.getvalue(), "the inspect rendering")  # type: ignore[attr-defined]
    assert_printable(dumps(described), "the inspect JSON")


def check_keys(data: bytes) -> None:
    for password in (None, PASSWORD):
        try:
            _event(f"keys: {sum(1 for key in keys_in(data, 'fuzz.key', password) if key is not None)}")
        except KeyLoadError as exc:
            assert_printable(str(exc), "a key error")
            _event(f"key error: {str(exc).partition(' (')[0][10:50]}")


def check_pkcs12(data: bytes) -> None:
    try:
        counts = pkcs12_iteration_counts(data)
        assert all(isinstance(c, int) for c in counts)
    except ValueError:
        pass
    for password in (None, PASSWORD):
        try:
            _, certs = load_pkcs12("fuzz.p12", password, data)
        except KeyLoadError as exc:
            assert_printable(str(exc), "a PKCS#12 error")
            _event(f"PKCS#12 error: {str(exc).partition(' (')[0][10:60]}")
            continue
        _event(f"PKCS#12 loaded: {len(certs)} certificates")
        for cert in certs:
            json.dumps(certinfo.summary(cert, AT), default=str)


_TMP = Path(tempfile.mkdtemp(prefix="certdoctor-fuzz-"))


def check_files(data: bytes, suffix: str) -> None:
    """fix's read_inputs and load_private_key on the bytes as a file (named .pem, .key or .p12)."""
    path = _TMP / f"input{suffix}"
    path.write_bytes(data)
    try:
        got = read_inputs([str(path)], password=PASSWORD)
        for line in got.repaired:
            assert_printable(line, "a repair line")
    except InputError as exc:
        assert_printable(str(exc), "a read_inputs error")
    try:
        load_private_key(path, PASSWORD)
    except KeyLoadError as exc:
        assert_printable(str(exc), "a key error")


def check_everything(data: bytes) -> None:
    certs = check_cert_parsers(data)
    check_judgement(certs)
    check_keys(data)
    check_pkcs12(data)
    for suffix in (".pem", ".p12"):
        check_files(data, suffix)


# --- the fuzz tests -------------------------------------------------------------------------------------------


def keeping(name: str, check: Callable[..., Any], data: bytes, *args: Any) -> None:
    """``check(data, *args)``; with CERTDOCTOR_FUZZ_KEEP=1, an input that fails is written to
    ``tests/fuzz-regressions/new-<name>.bin`` (Hypothesis replays the shrunk example last, so that is what stays)."""
    try:
        check(data, *args)
    except Exception:
        if os.environ.get("CERTDOCTOR_FUZZ_KEEP"):
            REGRESSIONS.mkdir(exist_ok=True)
            (REGRESSIONS / f"new-{name}.bin").write_bytes(data)
        raise


def test_seeds_are_valid() -> None:
    """The seeds are what they claim: the fuzzer starts from files that parse."""
    for data in cert_seeds():
        assert parse_certificates(data), data[:60]
    for data in key_seeds():
        assert list(keys_in(data, "seed", PASSWORD))
    for i, data in enumerate(p12_seeds()):
        assert load_pkcs12("seed.p12", None if i == 0 else PASSWORD, data)[1]
    check_judgement(parse_certificates(cert_seeds()[1]))


@fuzz_settings(1000)
@given(mutated(cert_seeds(), all_seeds()))
def test_fuzz_certificate_parsers(data: bytes) -> None:
    keeping("certs", check_cert_parsers, data)


@fuzz_settings(500)
@given(st.one_of(resigned_chain(), mutated(cert_seeds()[:6], cert_seeds())))
def test_fuzz_judgement_and_rendering(data: bytes) -> None:
    keeping("judge", lambda d: check_judgement(check_cert_parsers(d)), data)


@fuzz_settings(1000)
@given(mutated(key_seeds(), all_seeds()))
def test_fuzz_keys(data: bytes) -> None:
    keeping("keys", check_keys, data)


@fuzz_settings(1000)
@given(mutated(p12_seeds()))
def test_fuzz_pkcs12(data: bytes) -> None:
    keeping("pkcs12", check_pkcs12, data)


@fuzz_settings(1000)
@given(mutated(all_seeds()), st.sampled_from((".pem", ".key", ".p12")))
def test_fuzz_fix_inputs(data: bytes, suffix: str) -> None:
    keeping(f"files{suffix.replace('.', '-')}", check_files, data, suffix)


# --- every crash found so far, replayed -----------------------------------------------------------------------


def _regressions() -> list[Path]:
    return sorted(REGRESSIONS.glob("*.bin")) if REGRESSIONS.is_dir() else []


def test_regressions_are_refused_as_documented() -> None:
    """What each crash was, refused now with the documented error (the fix of its kind, not of the file)."""
    v4 = (REGRESSIONS / "der-invalid-x509-version.bin").read_bytes()  # cryptography: x509.InvalidVersion
    with pytest.raises(CertificateParseError, match="not a valid X509 version"):
        parse_certificates(v4)
    with pytest.raises(CertificateParseError, match="not a valid X509 version"):
        parse_certificates(_pem("CERTIFICATE", v4))
    for name in ("pkcs7-data-not-signed-data", "der-pkcs7-data-not-signed-data"):  # UnsupportedAlgorithm
        with pytest.raises(CertificateParseError):
            parse_certificates((REGRESSIONS / f"{name}.bin").read_bytes())
    broken = (REGRESSIONS / "der-key-unencrypted-with-password-broken.bin").read_bytes()  # ValueError on retry
    assert list(keys_in(broken, "k.der", PASSWORD)) == list(keys_in(broken, "k.der", None)) == []


@pytest.mark.parametrize("path", _regressions(), ids=lambda p: p.stem)
def test_regression_files(path: Path) -> None:
    """Each input the fuzzer once crashed on, through every oracle."""
    check_everything(path.read_bytes())
