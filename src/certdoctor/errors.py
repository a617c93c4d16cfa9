"""certdoctor's exception hierarchy: one root, two kinds, mapped to exit codes in one place (``cli``).

::

    CertdoctorError                 anything certdoctor raises on purpose
    ├── InputError                  the caller's input is unusable: a target, a date, an option, a file, a key
    │   ├── CertificateParseError   (certdoctor.collect.files) a file holds no readable certificate
    │   ├── KeyLoadError            (certdoctor.collect.keys) a key or PKCS#12 file cannot be read
    │   ├── StoreUnavailable        (certdoctor.collect.stores) an explicitly requested trust store is missing
    │   └── FixError                (certdoctor.fixer) the files cannot be made into a chain
    └── CollectError                the target could not be checked: nothing to judge was obtained
        ├── ResolveError            (certdoctor.collect.handshake) the name does not resolve
        └── LabStartError           (certdoctor.lab) the lab cannot start (a port in use, a bad port base)

A failed connection to *one* address of a name that has others is not an exception but a finding
(``connection-failed``); these exceptions mean no diagnosis could be made at all.
"""

from __future__ import annotations


class CertdoctorError(Exception):
    """Root of every error certdoctor raises on purpose; its message is one line, fit for a terminal."""


class InputError(CertdoctorError):
    """The input given to certdoctor is unusable (the command line exits with status 2)."""


class CollectError(CertdoctorError):
    """Nothing could be collected about the target, so it could not be checked (exit status 3)."""


# The name the public API used before the hierarchy existed.
DiagnoseError = InputError
