"""certdoctor: explain why TLS clients reject a server's certificate chain, and how to fix it.

Public API (imported lazily so that the command line starts fast)::

    from certdoctor import diagnose, diagnose_async, Diagnosis, DiagnoseOptions, Session, Finding, Severity
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "diagnose": "certdoctor.api",
    "diagnose_async": "certdoctor.api",
    "Diagnosis": "certdoctor.api",
    "DiagnoseOptions": "certdoctor.api",
    "Session": "certdoctor.api",
    "CertdoctorError": "certdoctor.api",
    "InputError": "certdoctor.api",
    "CollectError": "certdoctor.api",
    "DiagnoseError": "certdoctor.api",
    "parse_target": "certdoctor.api",
    "judge": "certdoctor.api",
    "Finding": "certdoctor.model",
    "Severity": "certdoctor.model",
    "Evidence": "certdoctor.model",
    "Target": "certdoctor.model",
}

if TYPE_CHECKING:
    from .api import (
        CertdoctorError,
        CollectError,
        DiagnoseError,
        DiagnoseOptions,
        Diagnosis,
        InputError,
        Session,
        diagnose,
        diagnose_async,
        judge,
        parse_target,
    )
    from .model import Evidence, Finding, Severity, Target


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'certdoctor' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CertdoctorError",
    "CollectError",
    "DiagnoseError",
    "DiagnoseOptions",
    "Diagnosis",
    "Evidence",
    "Finding",
    "InputError",
    "Session",
    "Severity",
    "Target",
    "__version__",
    "diagnose",
    "diagnose_async",
    "judge",
    "parse_target",
]
