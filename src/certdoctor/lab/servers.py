"""The lab: a generated PKI plus the AIA HTTP server and one TLS (or hostile) server per scenario, on loopback.

:class:`Lab` puts the pieces together. Sockets are bound in the caller's thread first (``listeners.py``), so
a busy port is reported before any work is done, and the AIA port is known before the certificates (whose
AIA URLs contain it) are issued. Then the PKI (``pki.py``) issues everything and each scenario's chain files
and TLS contexts are built (``chains.py``); the servers run on one asyncio event loop in a background daemon
thread (``listeners.ServerThread``).

TLS is the ``ssl`` module's, except for scenarios that staple an OCSP response (``ssl`` cannot): those are
served by OpenSSL through pyOpenSSL, over memory BIOs driven from the same event loop (``memtls.py``).

The AIA server (``aia.py``, on the tiny HTTP server of ``httpd.py``) also publishes revocation status (see
:meth:`Lab.add_revocation_routes` for the routes): an OCSP responder and a CRL for each CA of
:data:`pki.REVOCATION_SLUGS`, plus misbehaving responders.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from cryptography import x509

from ..errors import CollectError
from . import aia, ctlog, pki
from .chains import ChainBuilder
from .endpoint import Endpoint, bracket
from .httpd import HttpRequest, HttpResponse, RouteHandler, Router
from .listeners import Listener, ServerThread, busy_message, listen
from .pkitypes import Revocation
from .scenarios import SCENARIOS, Scenario

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: labs do not lock their state directory
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "SECOND_ADDRESS",
    "Endpoint",
    "HttpRequest",
    "HttpResponse",
    "Lab",
    "LabStartError",
    "RouteHandler",
    "Router",
    "default_state_dir",
]

log = logging.getLogger("certdoctor.lab")

START_TIMEOUT = 30.0
SECOND_ADDRESS = "127.0.0.2"
BIG_CHAIN = 1000  # chains with at least this many filler certificates are built in a worker thread
MAX_PORT = 65535
LOCK_NAME = ".lock"  # in the state directory: held (flock) by the lab that owns it, while it runs


def default_state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "certdoctor" / "lab"


class LabStartError(CollectError):
    """The lab could not start (typically: a port is already in use). The message is one line."""


# --- the lab --------------------------------------------------------------------------------------------


class Lab:
    """The offline badssl: a generated PKI plus one real server per scenario, on loopback.

    ``port_base`` 0 picks free ports; otherwise the AIA server listens on ``port_base`` and scenario *i* of
    :data:`SCENARIOS` on ``port_base + 1 + i`` (a base whose ports do not all fit in 1-65535 is refused with
    :class:`LabStartError` by the constructor). ``bind`` is the listening address (a wildcard is fine; the
    commands then use 127.0.0.1). multi-address additionally listens on 127.0.0.2 when ``bind`` is
    127.0.0.1.

    A started lab owns its ``state_dir`` (an exclusive lock on ``<state_dir>/.lock``, released by stop): it
    alone writes there. A lab started on a state directory that another lab owns (:attr:`owns_state_dir`
    False) only reads it: it reuses the cached keys and root certificate without rewriting them (anything
    missing is generated in memory) and writes its chain files, and its own root when it could not reuse
    the cached one, to a private temporary directory (:attr:`files_dir`) that stop deletes.

    Revocation, once started: :meth:`ocsp_url` and :meth:`crl_url` locate the OCSP responders and CRLs of the
    CAs in :data:`pki.REVOCATION_SLUGS`; :attr:`unreachable_ocsp_url` is a URL whose port refuses
    connections; :meth:`ocsp_response` builds a response the way a responder signs it; :attr:`revoked` lists
    what is revoked. ``lab.pki.ocsp_signer`` is the Revocation CA's delegated OCSP signer.
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        port_base: int = 0,
        include_hostile: bool = True,
        bind: str = "127.0.0.1",
    ) -> None:
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.port_base = port_base
        self.include_hostile = include_hostile
        self.bind = bind
        self.scenarios: tuple[Scenario, ...] = tuple(s for s in SCENARIOS if include_hostile or not s.hostile)
        self.router = Router()
        self.endpoints: dict[str, Endpoint] = {}
        self.root_path = self.state_dir / "lab-root.pem"
        self.files_dir = self.state_dir  # where chains/ is written: state_dir, or a private temporary directory
        self.owns_state_dir = False  # True while started and holding the state directory's lock
        self.aia_base_url = ""
        self.aia_port = 0
        self.pki: pki.LabPKI | None = None
        self.start_seconds: float | None = None
        self.unreachable_ocsp_url = ""  # http://127.0.0.1:PORT/ocsp, PORT bound but not listening
        self._unreachable: socket.socket | None = None
        self._listeners: list[Listener] = []
        self._servers: ServerThread | None = None
        self._addresses: dict[str, tuple[str, ...]] = {}
        self._lock_file: IO[bytes] | None = None
        self._private_dir: Path | None = None
        self._check_port_base()

    @property
    def root(self) -> x509.Certificate:
        """The lab root certificate (the one in ``root_path``); available once started."""
        if self.pki is None:
            raise RuntimeError("lab: not started")
        return self.pki.root.cert

    def _started_pki(self) -> pki.LabPKI:
        if self.pki is None:
            raise RuntimeError("lab: not started")
        return self.pki

    # revocation

    def ocsp_url(self, slug: str, *, route: Literal["ocsp", "ocsp-get-only", "ocsp-slow"] = "ocsp") -> str:
        """The OCSP responder URL of CA ``slug`` (one of :data:`pki.REVOCATION_SLUGS`).

        ``route`` "ocsp-get-only" is the same responder refusing POST (HTTP 405); "ocsp-slow" never answers.
        """
        return f"{self.aia_base_url}/{route}/{slug}"

    def crl_url(self, slug: str, pem: bool = False) -> str:
        """The URL of CA ``slug``'s CRL, DER (``.crl``) or PEM (``.pem``)."""
        return f"{self.aia_base_url}/crl/{slug}.{'pem' if pem else 'crl'}"

    @property
    def ocsp_garbage_url(self) -> str:
        """A "responder" answering 2 KiB of random bytes as application/ocsp-response."""
        return f"{self.aia_base_url}/ocsp-garbage"

    def ocsp_response(
        self,
        cert: x509.Certificate,
        issuer_slug: str,
        *,
        this_update: dt.datetime | None = None,
        next_update: dt.datetime | None = None,
    ) -> bytes:
        """A DER OCSP response for ``cert``, signed as ``issuer_slug``'s responder signs its answers.

        ``this_update`` / ``next_update`` default to now - 1 hour / now + 7 days. See
        :meth:`pki.LabPKI.ocsp_response`.
        """
        return self._started_pki().ocsp_response(cert, issuer_slug, this_update=this_update, next_update=next_update)

    @property
    def revoked(self) -> dict[int, Revocation]:
        """Every revoked serial (any issuer) -> (revocation time, reason); per issuer: ``pki.revocations``."""
        return self._started_pki().revoked()

    @property
    def connect_address(self) -> str:
        """The address clients use: ``bind``, or loopback for a wildcard bind."""
        if self.bind in ("", "0.0.0.0"):
            return "127.0.0.1"
        if self.bind == "::":
            return "::1"
        return self.bind

    # lifecycle

    def start(self) -> Lab:
        if self._servers is not None:
            raise LabStartError("lab: already started")
        began = time.perf_counter()
        try:
            self._bind_all()
            self._claim_state_dir()
            self._build_all()
        except BaseException:
            self._close_sockets()
            self._release_state_dir()
            raise
        self._servers = ServerThread(self._listeners, self.router)
        if not self._servers.start(START_TIMEOUT):
            error = self._servers.error
            self.stop()
            raise LabStartError(f"lab: servers failed to start: {error or 'timeout'}") from error
        self.start_seconds = time.perf_counter() - began
        return self

    def stop(self) -> None:
        if self._servers is not None:
            self._servers.stop()
            self._servers = None
        self._close_sockets()
        self._release_state_dir()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def add_route(self, path: str, handler: RouteHandler) -> None:
        """Serve ``handler`` at ``path`` on the AIA HTTP server (works before or after start)."""
        self.router.add(path, handler)

    def endpoint(self, name: str) -> Endpoint:
        return self.endpoints[name]

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self.endpoints.values())

    # setup (caller's thread)

    def _port_for(self, scenario: Scenario) -> int:
        if not self.port_base:
            return 0
        return self.port_base + 1 + SCENARIOS.index(scenario)

    def _check_port_base(self) -> None:
        """LabStartError unless every port the lab listens on (from ``port_base`` up) is a TCP port."""
        base = self.port_base
        if base == 0:
            return
        if base < 0:
            raise LabStartError(f"lab: port base {base}: ports start at 1 (0 picks free ports)")
        last = max((self._port_for(s) for s in self.scenarios), default=base)
        if last > MAX_PORT:
            raise LabStartError(f"lab: port base {base}: the lab needs ports {base}-{last}, above {MAX_PORT}")

    def _claim_state_dir(self) -> None:
        """Create the state directory and own it (lock it), or, when another lab owns it, get a private
        directory for the files this lab writes."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            lock_file = open(self.state_dir / LOCK_NAME, "ab")  # noqa: SIM115 - held until stop
        except OSError as exc:
            raise LabStartError(
                f"lab: cannot use the state directory {self.state_dir}: {exc.strerror or exc} "
                "(choose another with --state-dir)"
            ) from exc
        owner = True
        if fcntl is not None:
            try:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = False
            except OSError:  # a file system without locks: behave as before locks existed
                log.debug("lab: cannot lock %s", self.state_dir, exc_info=True)
        if owner:
            self._lock_file = lock_file
            self.owns_state_dir = True
            self.files_dir = self.state_dir
            return
        lock_file.close()
        log.debug("lab: %s is in use by another lab; files go to a private directory", self.state_dir)
        try:
            self._private_dir = Path(tempfile.mkdtemp(prefix="certdoctor-lab-"))
        except OSError as exc:
            raise LabStartError(f"lab: cannot create a temporary directory: {exc.strerror or exc}") from exc
        self.files_dir = self._private_dir

    def _release_state_dir(self) -> None:
        """Unlock the state directory (if this lab owns it) and delete the private directory (if any)."""
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None
        self.owns_state_dir = False
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None

    def _bind(self, what: str, address: str, port: int) -> socket.socket:
        try:
            return listen(address, port)
        except OSError as exc:
            raise LabStartError(busy_message(what, address, port, exc)) from exc

    def _bind_all(self) -> None:
        self._listeners = []
        aia_sock = self._bind("the AIA server", self.bind, self.port_base)
        self.aia_port = aia_sock.getsockname()[1]
        self._listeners.append(Listener(None, aia_sock, self.bind, kind="aia"))
        self._addresses = {}
        for scenario in self.scenarios:
            port = self._port_for(scenario)
            wants_second = scenario._spec.second_address is not None and self.bind == "127.0.0.1"
            kind = scenario._spec.kind
            if not wants_second:
                sock = self._bind(f"scenario {scenario.name}", self.bind, port)
                self._listeners.append(Listener(scenario, sock, self.bind, kind=kind))
                self._addresses[scenario.name] = (self.connect_address,)
                continue
            first, second = self._bind_pair(scenario, port)
            self._listeners += [
                Listener(scenario, first, self.bind, kind=kind),
                Listener(scenario, second, SECOND_ADDRESS, kind=kind),
            ]
            self._addresses[scenario.name] = (self.bind, SECOND_ADDRESS)
        self._reserve_unreachable()

    def _reserve_unreachable(self) -> None:
        """Bind, but never listen on, a loopback port: connecting to it is refused for the lab's lifetime.

        No SO_REUSEADDR, so nobody else can bind (and listen on) that port meanwhile.
        """
        address = self.connect_address
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((address, 0))
        except OSError as exc:
            sock.close()
            raise LabStartError(busy_message("the unreachable OCSP responder", address, 0, exc)) from exc
        self._unreachable = sock
        self.unreachable_ocsp_url = f"http://{bracket(address)}:{sock.getsockname()[1]}/ocsp"

    def _bind_pair(self, scenario: Scenario, port: int) -> tuple[socket.socket, socket.socket]:
        """The same port on 127.0.0.1 and 127.0.0.2 (with port 0: retry until one is free on both)."""
        what = f"scenario {scenario.name}"
        for _ in range(50):
            first = self._bind(what, self.bind, port)
            actual = first.getsockname()[1]
            try:
                return first, listen(SECOND_ADDRESS, actual)
            except OSError as exc:
                first.close()
                if port or exc.errno != errno.EADDRINUSE:
                    raise LabStartError(busy_message(what, SECOND_ADDRESS, actual, exc)) from exc
        raise LabStartError(f"lab: no port free on both {self.bind} and {SECOND_ADDRESS} for {what}")

    def _build_all(self) -> None:
        self.aia_base_url = f"http://{bracket(self.connect_address)}:{self.aia_port}"
        self.pki = pki.LabPKI(
            self.state_dir,
            self.aia_base_url,
            url_values={"unreachable": self.unreachable_ocsp_url},
            write=self.owns_state_dir,
        )
        self.root_path = self.state_dir / "lab-root.pem"
        if not self.owns_state_dir and not self.pki.root_reused:
            # Not the root users trust (that one could not be reused): this lab's own, in its own directory.
            self.root_path = self.files_dir / "lab-root.pem"
            pki.write_atomic(self.root_path, pki.cert_pem(self.pki.root.cert))
        if self.owns_state_dir or self.root_path.parent == self.files_dir:
            # the lab CT logs' log list, next to the root (check --ct-log-list; scenarios' "{log_list}")
            pki.write_atomic(self.root_path.with_name(ctlog.LOG_LIST_NAME), ctlog.log_list(self.pki))
        aia.add_ca_files(self.router, self.pki)
        self.add_revocation_routes()
        builder = ChainBuilder(self.pki, self.files_dir / "chains")
        # OpenSSL 3 needs ~0.1 ms to parse each certificate, so loading a huge chain takes over a second.
        # It releases the GIL meanwhile: build the big ones in worker threads while building the rest.
        big = [s for s in self.scenarios if s._spec.filler >= BIG_CHAIN]
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="certdoctor-lab-build") as pool:
            futures = {s.name: pool.submit(builder.build, s, self._addresses[s.name]) for s in big}
            built = {s.name: builder.build(s, self._addresses[s.name]) for s in self.scenarios if s not in big}
            built.update({name: future.result() for name, future in futures.items()})
        for scenario in self.scenarios:
            addresses = self._addresses[scenario.name]
            b = built[scenario.name]
            self.endpoints[scenario.name] = Endpoint(
                scenario=scenario,
                port=self._listener_port(scenario),
                addresses=addresses,
                chain_path=b.chain_path,
                key_path=b.key_path,
            )
        for listener in self._listeners:
            if listener.kind == "tls" and listener.scenario is not None:
                b = built[listener.scenario.name]
                if b.openssl_context is not None:
                    listener.openssl_context = b.openssl_context
                else:
                    listener.ssl_context = b.contexts.get(listener.address) or next(iter(b.contexts.values()))

    def _listener_port(self, scenario: Scenario) -> int:
        for listener in self._listeners:
            if listener.kind != "aia" and listener.scenario is scenario:
                return int(listener.sock.getsockname()[1])
        raise KeyError(scenario.name)

    def _close_sockets(self) -> None:
        for listener in self._listeners:
            listener.sock.close()
        self._listeners = []
        if self._unreachable is not None:
            self._unreachable.close()
            self._unreachable = None

    # revocation routes on the AIA server

    def add_revocation_routes(self) -> None:
        """Add the revocation routes to the AIA server (done by start); see :func:`aia.add_revocation_routes`."""
        aia.add_revocation_routes(self.router, self._started_pki)
