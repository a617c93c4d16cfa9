"""Chains as PEM text (``check --pem``, ``inspect --pem``): what ``openssl s_client -showcerts`` prints, without
the rest."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..diagnosis import Diagnosis
from .escape import clean


def certs_pem(certs: Iterable[x509.Certificate]) -> str:
    """The certificates as concatenated PEM blocks, in the order given."""
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certs)


def groups_pem(groups: Sequence[tuple[str, Sequence[x509.Certificate]]]) -> str:
    """Several chains: each preceded by a ``# source`` comment line (PEM readers skip text between blocks);
    one chain alone: only its blocks, ready to be saved as a chain file."""
    if len(groups) == 1:
        return certs_pem(groups[0][1])
    return "".join(f"# {clean(source, 500)}\n{certs_pem(certs)}" for source, certs in groups)


def chains_pem(d: Diagnosis) -> str:
    """Every distinct chain a diagnosis saw, as presented (leaf first, duplicates kept)."""
    return groups_pem([(", ".join(r.sources), r.chain.certs) for r in d.reports])
