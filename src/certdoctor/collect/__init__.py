"""Collection: gather the evidence (presented chains, AIA downloads, trust stores) the checks judge.

Names are re-exported lazily so that importing one submodule (say, file parsing) does not pay for
pyOpenSSL or httpx at CLI start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import CollectError

if TYPE_CHECKING:
    from .aia import AiaFetcher, ca_issuer_urls
    from .files import CertificateParseError, load_certificate_files, load_chain_file, parse_certificates
    from .handshake import ResolveError, fetch_chain, resolve
    from .stores import (
        DEFAULT_STORES,
        STORE_NAMES,
        StoreUnavailable,
        custom_store,
        list_stores,
        load_store,
    )

_EXPORTS = {
    "AiaFetcher": "aia",
    "ca_issuer_urls": "aia",
    "CertificateParseError": "files",
    "load_certificate_files": "files",
    "load_chain_file": "files",
    "parse_certificates": "files",
    "ResolveError": "handshake",
    "fetch_chain": "handshake",
    "resolve": "handshake",
    "DEFAULT_STORES": "stores",
    "STORE_NAMES": "stores",
    "StoreUnavailable": "stores",
    "custom_store": "stores",
    "list_stores": "stores",
    "load_store": "stores",
}

__all__ = [
    "DEFAULT_STORES",
    "STORE_NAMES",
    "AiaFetcher",
    "CertificateParseError",
    "CollectError",
    "ResolveError",
    "StoreUnavailable",
    "ca_issuer_urls",
    "custom_store",
    "fetch_chain",
    "list_stores",
    "load_certificate_files",
    "load_chain_file",
    "load_store",
    "parse_certificates",
    "resolve",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
