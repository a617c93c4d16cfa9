"""Real headless Firefox (Debian's ``firefox-esr``) as a :class:`RealClient`, driven over WebDriver BiDi.

Firefox speaks WebDriver BiDi itself (no geckodriver): started with ``--remote-debugging-port 0`` it prints
``WebDriver BiDi listening on ws://127.0.0.1:N`` and accepts a websocket on ``ws://127.0.0.1:N/session``.
We send ``session.new`` (``acceptInsecureCerts: false``: true would turn every certificate error into a
load), then one ``browsingContext.navigate`` (``wait: "complete"``) per probe, one after the other in the
first top-level context. A certificate or TLS error comes back as an error reply whose message is e.g.
``Error: NS_ERROR_GENERATE_FAILURE(NS_ERROR_MODULE_SECURITY, SEC_ERROR_EXPIRED_CERTIFICATE)``: the outcome's
error text is the code in it (``SEC_ERROR_EXPIRED_CERTIFICATE``, what the error page shows and users paste);
a network error is the bare ``NS_ERROR_…`` name; a successful navigation means Firefox accepted the chain
(the lab servers answer HTTP).

Per launch: a fresh profile directory in a temporary directory, holding an NSS database (made by Debian's
``certutil``, which Firefox's bundled NSS reads) that trusts each distinct ``probe.ca_file`` as a TLS CA
(``-t C,,``), and a ``user.js`` (:data:`PREFS`). ``network.dns.forceResolve`` sends every host name to one
address, so the probes are grouped by address (127.0.0.1, and 127.0.0.2 for the second address of
multi-address): one browser per address, all of that address's probes in it. An IP-literal URL is not
resolved, so it works in any group.

Revocation: ``security.OCSP.enabled`` is 0 — no OCSP fetching. Firefox 137+ does not fetch OCSP for
domain-validated certificates anyway (the lab's leaves carry no EV policy), and it keeps the browser off the
lab's responders, as for a client on a network that cannot reach them. Stapled responses are still
validated (``security.ssl.enable_ocsp_stapling`` and ``..._must_staple`` keep their defaults). CRLite and
the other remote-settings downloads are off (``services.settings.server`` points nowhere); with
``forceResolve`` every name resolves to loopback, so no background request can leave the machine.

Every wait is bounded. Firefox gives no answer for a server that never speaks (neither
``network.http.tls-handshake-timeout`` nor the connection timeout ended a stalled handshake within 60 s),
so a navigation without a reply after ``nav_timeout`` s is reported as ``timeout: …`` and the remaining
probes go on in a fresh browser. The browser's whole process group is killed when a launch ends.

``python tests/realclients/firefox.py`` starts a lab in a temporary directory and prints a table.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    from . import Outcome, Probe
    from ._common import RealClientError, nss_db
except ImportError:  # run as a script: python tests/realclients/firefox.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from realclients import Outcome, Probe
    from realclients._common import RealClientError, nss_db

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

    from certdoctor.lab import Lab

LAUNCHERS = ("firefox-esr", "firefox")

NAV_TIMEOUT = 15.0  # seconds for one browsingContext.navigate
START_TIMEOUT = 30.0  # seconds for the browser to listen and open a session
CALL_TIMEOUT = 10.0  # seconds for any other command

# user.js: offline and quiet. Values are Python bools, ints or strs (written as JS literals).
PREFS: dict[str, bool | int | str] = {
    # no updates, telemetry, studies, first-run pages
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.ping-centre.telemetry": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    # no captive-portal, connectivity, safe-browsing or remote-settings traffic
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "security.remote_settings.crlite_filters.enabled": False,
    "security.remote_settings.intermediates.enabled": False,
    "security.certerrors.mitm.priming.enabled": False,  # its canary request goes to a Mozilla host
    "security.certerrors.mitm.auto_enable_enterprise_roots": False,
    "security.enterprise_roots.enabled": False,
    # no speculative or prefetch connections, no DNS over HTTPS, no proxy
    "network.prefetch-next": False,
    "network.dns.disablePrefetch": True,
    "network.http.speculative-parallel-limit": 0,
    "network.trr.mode": 5,
    "network.proxy.type": 0,
    # revocation: see the module docstring
    "security.OCSP.enabled": 0,
}


class FirefoxError(RuntimeError):
    """The browser could not be set up, started or driven (not a verdict about a certificate)."""


class _NoReply(FirefoxError):
    pass


def find_launcher() -> str | None:
    """The firefox command: ``firefox-esr``, else ``firefox`` on PATH."""
    for name in LAUNCHERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _js(value: bool | int | str) -> str:
    return json.dumps(value)


def write_profile(profile: Path, ca_files: Sequence[str], address: str) -> None:
    """A fresh profile: NSS db trusting each of ``ca_files`` for TLS servers, and :data:`PREFS` in user.js.

    ``address``: where every host name resolves (``network.dns.forceResolve``).
    """
    profile.mkdir(parents=True)
    try:
        nss_db(profile, ca_files)
    except RealClientError as exc:
        raise FirefoxError(str(exc)) from exc
    prefs = {**PREFS, "network.dns.forceResolve": address}
    lines = [f"user_pref({_js(name)}, {_js(value)});" for name, value in prefs.items()]
    (profile / "user.js").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- one browser launch ---------------------------------------------------------------------------------


class _Launch:
    """A running browser (leader of its own process group), its BiDi websocket and its browsing context."""

    def __init__(self, launcher: str, home: Path, profile: Path, log_path: Path) -> None:
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_CACHE_HOME=str(home / ".cache"),
            MOZ_CRASHREPORTER_DISABLE="1",
        )
        argv = [launcher, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port", "0"]
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True
            )
        self.ws: ClientConnection | None = None
        self._closing = contextlib.ExitStack()  # closes the websocket
        self._next_id = 0
        self.context = ""
        try:
            self._connect()
        except Exception as exc:
            self.kill()
            tail = self.log_tail()
            raise FirefoxError(f"firefox did not start: {exc}" + (f" ({tail})" if tail else "")) from exc

    def _connect(self) -> None:
        from websockets.sync.client import connect

        deadline = time.monotonic() + START_TIMEOUT
        url = None
        while url is None:
            match = re.search(r"WebDriver BiDi listening on (ws://[\w.:\[\]]+)", self._log_text())
            if match:
                url = match[1]
            elif self.process.poll() is not None:
                raise FirefoxError(f"exited with status {self.process.returncode}")
            elif time.monotonic() > deadline:
                raise FirefoxError(f"no BiDi endpoint within {START_TIMEOUT:g} s")
            else:
                time.sleep(0.1)
        remaining = max(deadline - time.monotonic(), 1.0)
        # no Origin header: Firefox refuses websocket upgrades that carry one it does not allow
        self.ws = self._closing.enter_context(
            connect(f"{url}/session", open_timeout=remaining, close_timeout=2, max_size=None)
        )
        self.call("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": False}}}, remaining)
        contexts = self.call("browsingContext.getTree", {"maxDepth": 0})["contexts"]
        if not contexts:
            raise FirefoxError("no top-level browsing context")
        self.context = contexts[0]["context"]

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 3) -> str:
        tail = [line.strip() for line in self._log_text().splitlines() if line.strip()][-lines:]
        return " | ".join(tail)

    def send(self, method: str, params: dict[str, Any]) -> int:
        assert self.ws is not None
        self._next_id += 1
        self.ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        return self._next_id

    def wait(self, call_id: int, timeout: float) -> dict[str, Any]:
        """The reply to ``call_id`` (events and other replies are dropped); :class:`_NoReply` after ``timeout``."""
        from websockets.exceptions import ConnectionClosed

        assert self.ws is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _NoReply(f"no reply within {timeout:g} s")
            try:
                raw = self.ws.recv(timeout=remaining)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                raise FirefoxError(f"firefox closed the BiDi connection ({self.log_tail()})") from exc
            message = json.loads(raw)
            if message.get("id") == call_id:
                reply: dict[str, Any] = message
                return reply

    def call(self, method: str, params: dict[str, Any], timeout: float = CALL_TIMEOUT) -> dict[str, Any]:
        """Send a command and return its result; an error reply raises :class:`FirefoxError`."""
        try:
            reply = self.wait(self.send(method, params), timeout)
        except _NoReply as exc:
            raise FirefoxError(f"firefox: {method}: {exc}") from exc
        if reply.get("type") != "success":
            raise FirefoxError(f"firefox: {method} failed: {reply.get('error')}: {reply.get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def navigate(self, url: str, timeout: float) -> Outcome | None:
        """Load ``url`` in the context: accepted, Firefox's error code, or None without a reply in time."""
        params = {"context": self.context, "url": url, "wait": "complete"}
        try:
            reply = self.wait(self.send("browsingContext.navigate", params), timeout)
        except _NoReply:
            return None
        if reply.get("type") == "success":
            landed = str(reply.get("result", {}).get("url", ""))
            if landed.startswith(("about:neterror", "about:certerror")):
                return Outcome(False, error_code(landed))
            return Outcome(True)
        return Outcome(False, error_code(str(reply.get("message", reply))))

    def kill(self) -> None:
        """Close the websocket, then SIGKILL the browser's whole process group and reap it."""
        with contextlib.suppress(Exception):
            self._closing.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


_GENERATED = re.compile(r"NS_ERROR_GENERATE_FAILURE\(NS_ERROR_MODULE_\w+,\s*(\w+)\)")
_NS_ERROR = re.compile(r"\b(NS_ERROR_\w+)")
_PAGE_CODE = re.compile(r"[?&]e=(\w+)")


def error_code(message: str) -> str:
    """Firefox's error code in a BiDi error message or an ``about:neterror`` URL (else the text itself).

    ``Error: NS_ERROR_GENERATE_FAILURE(NS_ERROR_MODULE_SECURITY, SEC_ERROR_UNKNOWN_ISSUER)`` ->
    ``SEC_ERROR_UNKNOWN_ISSUER``; ``Error: NS_ERROR_CONNECTION_REFUSED`` -> ``NS_ERROR_CONNECTION_REFUSED``.
    """
    for pattern in (_GENERATED, _NS_ERROR, _PAGE_CODE):
        match = pattern.search(message)
        if match:
            return match[1]
    return message.strip()


# --- the client -----------------------------------------------------------------------------------------


class FirefoxClient:
    """Headless Firefox ESR as a :class:`~realclients.RealClient` (certdoctor's ``firefox`` profile)."""

    id = "firefox"

    def __init__(self, nav_timeout: float = NAV_TIMEOUT) -> None:
        self.nav_timeout = nav_timeout
        self._unavailable: tuple[str | None] | None = None  # cached (reason,)
        self._version: str | None = None

    def unavailable(self) -> str | None:
        if self._unavailable is None:
            self._unavailable = (self._check(),)
        return self._unavailable[0]

    def _check(self) -> str | None:
        launcher = find_launcher()
        if launcher is None:
            return "firefox-esr not found on PATH (Debian package firefox-esr)"
        if shutil.which("certutil") is None:
            return "certutil not found (Debian package libnss3-tools)"
        try:
            import websockets.sync.client  # noqa: F401
        except ImportError:
            return "the websockets package is not installed (pip install -e '.[test]')"
        try:
            with tempfile.TemporaryDirectory(prefix="certdoctor-firefox-", ignore_cleanup_errors=True) as tmp:
                home = Path(tmp)
                write_profile(home / "profile", [], "127.0.0.1")
                _Launch(launcher, home, home / "profile", home / "smoke.log").kill()
        except (FirefoxError, OSError) as exc:
            return f"firefox smoke start failed: {exc}".splitlines()[0]
        return None

    def version(self) -> str:
        if self._version is None:
            launcher = find_launcher()
            if launcher is None:
                return "firefox (not installed)"
            try:
                out = subprocess.run(
                    [launcher, "--version"], capture_output=True, text=True, timeout=30, check=False
                ).stdout
            except (OSError, subprocess.TimeoutExpired):
                out = ""
            match = re.search(r"Firefox (\S+)", out)
            self._version = f"Firefox {match[1]}" if match else (out.strip() or "firefox (unknown version)")
        return self._version

    def run(self, probes: Sequence[Probe]) -> list[Outcome]:
        if not probes:
            return []
        launcher = find_launcher()
        if launcher is None:
            raise FirefoxError("firefox-esr not found")
        ca_files = sorted({p.ca_file for p in probes})
        groups: dict[str, list[int]] = {}
        for index, probe in enumerate(probes):
            groups.setdefault(probe.address, []).append(index)
        outcomes: list[Outcome | None] = [None] * len(probes)
        with tempfile.TemporaryDirectory(prefix="certdoctor-firefox-", ignore_cleanup_errors=True) as tmp:
            home = Path(tmp)
            launches = 0
            for address, indexes in groups.items():
                pending = indexes
                while pending:
                    launches += 1
                    profile = home / f"profile-{launches}"
                    write_profile(profile, ca_files, address)
                    launch = _Launch(launcher, home, profile, home / f"firefox-{launches}.log")
                    try:
                        pending = self._run_group(launch, probes, pending, outcomes)
                    finally:
                        launch.kill()
        assert all(o is not None for o in outcomes)
        return [o for o in outcomes if o is not None]

    def _run_group(
        self, launch: _Launch, probes: Sequence[Probe], pending: list[int], outcomes: list[Outcome | None]
    ) -> list[int]:
        """Navigate ``pending`` one by one; return those still to do when the browser must be replaced."""
        for position, index in enumerate(pending):
            outcome = launch.navigate(probes[index].url, self.nav_timeout)
            if outcome is None:  # the context is stuck on a navigation that never ends: use a fresh browser
                outcomes[index] = Outcome(False, f"timeout: no navigation result within {self.nav_timeout:g} s")
                return pending[position + 1 :]
            outcomes[index] = outcome
        return []


CLIENT = FirefoxClient()


# --- standalone check -----------------------------------------------------------------------------------


def _lab_probes(lab: Lab) -> Iterator[Probe]:
    for ep in lab:
        for address in ep.addresses:
            yield Probe(ep.name, ep.hostname, address, ep.port, str(lab.root_path))


def main() -> int:
    from certdoctor.lab import Lab

    reason = CLIENT.unavailable()
    if reason is not None:
        print(f"unavailable: {reason}")
        return 1
    print(CLIENT.version())
    with tempfile.TemporaryDirectory() as tmp, Lab(Path(tmp)) as lab:
        probes = list(_lab_probes(lab))
        began = time.perf_counter()
        outcomes = CLIENT.run(probes)
        print(f"{len(probes)} probes in {time.perf_counter() - began:.1f} s")
    width = max(len(p.scenario) for p in probes)
    for probe, outcome in zip(probes, outcomes, strict=True):
        verdict = "accepted" if outcome.accepted else "rejected"
        print(f"{probe.scenario:<{width}}  {probe.address:<10}  {verdict:<8}  {outcome.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
