"""Real headless Chromium as a :class:`RealClient`, driven over the DevTools protocol on a pipe.

Per run: a fresh temporary HOME with an NSS database (``$HOME/.pki/nssdb``) that trusts each distinct
``probe.ca_file``; then one browser launch per host mapping (``--host-resolver-rules``), so a hostname served
on 127.0.0.1 and on 127.0.0.2 gets two launches while everything else shares one. Each probe navigates a
fresh target to ``probe.url``; the ``errorText`` of ``Page.navigate`` (e.g. ``net::ERR_CERT_DATE_INVALID``)
is the outcome, no errorText means Chromium accepted the certificate. Up to ``concurrency`` navigations run at
once (see :func:`_navigate` for why). Every wait is bounded; a navigation that times out is reported as
``timeout: …`` and the remaining probes go on in a fresh browser. The browser's whole process group is killed
when a launch ends.

Only loopback is reachable: names not in the mapping resolve to nothing (``MAP * ~NOTFOUND``), and only the
loopback addresses the probes use (plus 127.0.0.1, where the lab's AIA server lives) are exempt from it.

``python tests/realclients/chromium.py`` starts a lab in a temporary directory and prints a table.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    from . import Outcome, Probe
    from ._common import RealClientError, nss_db
except ImportError:  # run as a script: python tests/realclients/chromium.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from realclients import Outcome, Probe
    from realclients._common import RealClientError, nss_db

if TYPE_CHECKING:
    from certdoctor.lab import Lab

LAUNCHERS = ("/usr/bin/chromium",)
# The Debian launcher is a shell script that sources /etc/chromium.d (extra flags, extensions) and then
# execs this binary; we run the binary directly when it is there, so only our flags apply.
DEBIAN_BINARY = "/usr/lib/chromium/chromium"

NAV_TIMEOUT = 15.0  # seconds for a batch of Page.navigate calls
MIN_NAV_TIMEOUT = 5.0  # a certificate error can legitimately take 3 s to be reported (see _navigate)
START_TIMEOUT = 30.0  # seconds for the browser to answer its first command
CALL_TIMEOUT = 10.0  # seconds for any other command
CONCURRENCY = 8  # navigations in flight at once (each in its own target)
AIA_ADDRESS = "127.0.0.1"  # where the lab's AIA (caIssuers) HTTP server listens

BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--remote-debugging-pipe",
)


class ChromiumError(RuntimeError):
    """The browser could not be set up, started or driven (not a verdict about a certificate)."""


class _BrowserGone(ChromiumError):
    pass


class _CallTimeout(ChromiumError):
    pass


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def find_launcher() -> str | None:
    """The chromium command: /usr/bin/chromium, else ``chromium`` on PATH."""
    for path in LAUNCHERS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def _binary(launcher: str) -> str:
    """The executable to start: the real binary behind Debian's launcher script, else the launcher."""
    if os.path.realpath(launcher) == "/usr/bin/chromium" and os.access(DEBIAN_BINARY, os.X_OK):
        return DEBIAN_BINARY
    return launcher


# --- the DevTools pipe ----------------------------------------------------------------------------------


class _Pipe:
    """DevTools messages over a pipe pair: JSON terminated by NUL, ours to the browser's fd 3, its fd 4 to us."""

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd = write_fd
        self.read_fd = read_fd
        os.set_blocking(write_fd, False)
        os.set_blocking(read_fd, False)
        self._buffer = b""
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}  # replies that arrived while waiting for another

    def close(self) -> None:
        for fd in (self.write_fd, self.read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def send(self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        data = json.dumps(message).encode() + b"\0"
        deadline = time.monotonic() + CALL_TIMEOUT
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _CallTimeout(f"chromium: not reading the DevTools pipe ({method})")
            select.select([], [self.write_fd], [], remaining)
            try:
                data = data[os.write(self.write_fd, data) :]
            except BlockingIOError:
                continue
            except OSError as exc:  # EPIPE: the browser is gone
                raise _BrowserGone(f"chromium: DevTools pipe closed ({exc.strerror})") from exc
        return self._next_id

    def wait(self, call_id: int, timeout: float) -> dict[str, Any]:
        """The reply to ``call_id``; replies to other calls are kept for their own ``wait``, events dropped."""
        deadline = time.monotonic() + timeout
        while call_id not in self._replies:
            remaining = max(deadline - time.monotonic(), 0.0)
            readable, _, _ = select.select([self.read_fd], [], [], remaining)
            if not readable:
                if remaining <= 0:
                    raise _CallTimeout(f"no reply within {timeout:g} s")
                continue
            try:
                chunk = os.read(self.read_fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise _BrowserGone("chromium: the browser closed the DevTools pipe (it exited or crashed)")
            *messages, self._buffer = (self._buffer + chunk).split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    self._replies[message["id"]] = message
        return self._replies.pop(call_id)

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        timeout: float = CALL_TIMEOUT,
    ) -> dict[str, Any]:
        """Send a command and return its result; a protocol error raises :class:`ChromiumError`."""
        try:
            reply = self.wait(self.send(method, params, session_id), timeout)
        except _CallTimeout as exc:
            raise _CallTimeout(f"chromium: {method}: {exc}") from exc
        return _result(method, reply)


def _result(method: str, reply: dict[str, Any]) -> dict[str, Any]:
    if "error" in reply:
        raise ChromiumError(f"chromium: {method} failed: {reply['error'].get('message', reply['error'])}")
    result: dict[str, Any] = reply.get("result", {})
    return result


# --- one browser launch ---------------------------------------------------------------------------------


@dataclass
class _Launch:
    """A running browser: the process (leader of its own process group) and its DevTools pipe."""

    process: subprocess.Popen[bytes]
    pipe: _Pipe
    log_path: Path

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail)

    def kill(self) -> None:
        """Ask the browser to close, then SIGKILL its whole process group whatever happened."""
        if self.process.poll() is None:
            with contextlib.suppress(ChromiumError, OSError, ValueError):
                self.pipe.send("Browser.close")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self.pipe.close()


def host_rules(mapping: dict[str, str], direct: Sequence[str]) -> str:
    """``--host-resolver-rules``: ``mapping`` names to addresses, ``direct`` addresses untouched, nothing else."""
    rules = [f"MAP {name} {address}" for name, address in mapping.items()]
    rules += [f"EXCLUDE {address}" for address in direct if address not in mapping]
    rules.append("MAP * ~NOTFOUND")
    return ", ".join(rules)


# Runs in the child (a fresh interpreter, so nothing of ours is held by another thread, unlike a preexec_fn):
# put the pipe ends on fds 3 and 4, then become chromium (same pid).
_EXEC_SHIM = """
import os, sys
read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
os.dup2(read_fd, 3)
os.dup2(write_fd, 4)
os.close(read_fd)
os.close(write_fd)
os.execv(sys.argv[3], sys.argv[3:])
"""


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number >= 10 (so the child's dup2 onto 3 and 4 cannot clobber the other end)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def _start(binary: str, home: Path, profile: Path, rules: str, log_path: Path) -> _Launch:
    to_browser_r, to_browser_w = (_high_fd(fd) for fd in os.pipe())
    from_browser_r, from_browser_w = (_high_fd(fd) for fd in os.pipe())
    argv = [binary, *BASE_FLAGS, f"--user-data-dir={profile}", f"--host-resolver-rules={rules}", "about:blank"]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", _EXEC_SHIM, str(to_browser_r), str(from_browser_w), *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                pass_fds=(to_browser_r, from_browser_w),
                start_new_session=True,
            )
    except OSError:
        for fd in (to_browser_r, to_browser_w, from_browser_r, from_browser_w):
            os.close(fd)
        raise
    os.close(to_browser_r)
    os.close(from_browser_w)
    launch = _Launch(process, _Pipe(to_browser_w, from_browser_r), log_path)
    try:
        launch.pipe.call("Browser.getVersion", timeout=START_TIMEOUT)
    except ChromiumError as exc:
        launch.kill()
        tail = launch.log_tail()
        raise ChromiumError(f"chromium did not start: {exc}" + (f" ({tail})" if tail else "")) from exc
    return launch


def _navigate(launch: _Launch, urls: Sequence[str], timeout: float) -> list[Outcome | None]:
    """Open each of ``urls`` in a fresh target, all at once, and close the targets again.

    None for a navigation that got no answer within ``timeout`` s (its target is left open: the caller
    replaces the browser). Concurrency matters: before it shows a certificate-error interstitial (which is
    when Page.navigate answers) Chrome waits up to 3 s for its captive-portal check, which is throttled after
    the first couple of errors; run one at a time, every rejection but a date error would take 3 s. (The
    features that gated this wait, CaptivePortalInterstitial and SSLCommonNameMismatchHandling, no longer exist
    in Chromium 156, and turning off the alternate-error-pages pref does not help.) Verdicts are the same as
    one at a time.
    """
    pipe = launch.pipe
    targets = [pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"] for _ in urls]
    sessions = [pipe.call("Target.attachToTarget", {"targetId": t, "flatten": True})["sessionId"] for t in targets]
    calls = [
        pipe.send("Page.navigate", {"url": url}, session_id) for url, session_id in zip(urls, sessions, strict=True)
    ]
    deadline = time.monotonic() + timeout
    outcomes: list[Outcome | None] = []
    for call_id, target_id in zip(calls, targets, strict=True):
        try:
            reply = pipe.wait(call_id, max(deadline - time.monotonic(), 0.0))
        except _CallTimeout:
            outcomes.append(None)
            continue
        error = _result("Page.navigate", reply).get("errorText", "")
        outcomes.append(Outcome(accepted=False, error=error) if error else Outcome(accepted=True))
        pipe.call("Target.closeTarget", {"targetId": target_id})
    return outcomes


# --- planning -------------------------------------------------------------------------------------------


def _mapping_key(probe: Probe) -> str | None:
    """The name this probe needs mapped to its address (None: its hostname is that address, used as is)."""
    if _is_ip(probe.hostname) and probe.hostname == probe.address:
        return None
    return probe.hostname


@dataclass
class _Group:
    """Probes that can share one browser: no hostname in them needs two different addresses."""

    mapping: dict[str, str] = field(default_factory=dict)  # hostname -> address
    indexes: list[int] = field(default_factory=list)

    def accepts(self, probe: Probe) -> bool:
        key = _mapping_key(probe)
        return key is None or self.mapping.get(key, probe.address) == probe.address

    def add(self, index: int, probe: Probe) -> None:
        key = _mapping_key(probe)
        if key is not None:
            self.mapping[key] = probe.address
        self.indexes.append(index)


def plan(probes: Sequence[Probe]) -> list[_Group]:
    """First-fit: one browser for all probes unless a hostname must reach two addresses."""
    groups: list[_Group] = []
    for index, probe in enumerate(probes):
        group = next((g for g in groups if g.accepts(probe)), None)
        if group is None:
            group = _Group()
            groups.append(group)
        group.add(index, probe)
    return groups


def _direct_addresses(probes: Sequence[Probe]) -> list[str]:
    addresses = {AIA_ADDRESS, *(p.address for p in probes), *(p.hostname for p in probes if _is_ip(p.hostname))}
    return sorted(addresses, key=ipaddress.ip_address)


# --- the client -----------------------------------------------------------------------------------------


class ChromiumClient:
    """Headless Chromium (Debian's ``chromium`` package) as a :class:`~realclients.RealClient`."""

    id = "chrome"

    def __init__(self, nav_timeout: float = NAV_TIMEOUT, concurrency: int = CONCURRENCY) -> None:
        if nav_timeout < MIN_NAV_TIMEOUT:
            raise ValueError(f"nav_timeout must be at least {MIN_NAV_TIMEOUT:g} s (rejections can take 3 s)")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.nav_timeout = nav_timeout
        self.concurrency = concurrency
        self._unavailable: tuple[str | None] | None = None  # cached (reason,)
        self._version: str | None = None

    def unavailable(self) -> str | None:
        if self._unavailable is None:
            self._unavailable = (self._check(),)
        return self._unavailable[0]

    def _check(self) -> str | None:
        launcher = find_launcher()
        if launcher is None:
            return "chromium not found (/usr/bin/chromium or chromium on PATH)"
        if shutil.which("certutil") is None:
            return "certutil not found (Debian package libnss3-tools)"
        try:
            with tempfile.TemporaryDirectory(prefix="certdoctor-chromium-", ignore_cleanup_errors=True) as tmp:
                home = Path(tmp)
                launch = _start(_binary(launcher), home, home / "profile", "MAP * ~NOTFOUND", home / "smoke.log")
                launch.kill()
        except (ChromiumError, OSError) as exc:
            return f"chromium smoke start failed: {exc}".splitlines()[0]
        return None

    def version(self) -> str:
        if self._version is None:
            launcher = find_launcher()
            if launcher is None:
                return "chromium (not installed)"
            try:
                out = subprocess.run(
                    [_binary(launcher), "--version"], capture_output=True, text=True, timeout=30, check=False
                ).stdout
            except (OSError, subprocess.TimeoutExpired):
                out = ""
            match = re.search(r"(Chrom\w*) (\d+(?:\.\d+)+)", out)
            self._version = f"{match[1]} {match[2]}" if match else (out.strip() or "chromium (unknown version)")
        return self._version

    def run(self, probes: Sequence[Probe]) -> list[Outcome]:
        if not probes:
            return []
        launcher = find_launcher()
        if launcher is None:
            raise ChromiumError("chromium not found")
        binary = _binary(launcher)
        outcomes: list[Outcome | None] = [None] * len(probes)
        with tempfile.TemporaryDirectory(prefix="certdoctor-chromium-", ignore_cleanup_errors=True) as tmp:
            home = Path(tmp)
            _trust(home, sorted({p.ca_file for p in probes}))
            direct = _direct_addresses(probes)
            launches = 0
            for group in plan(probes):
                pending = list(group.indexes)
                while pending:
                    launches += 1
                    rules = host_rules(group.mapping, direct)
                    profile = home / f"profile-{launches}"
                    launch = _start(binary, home, profile, rules, home / f"chromium-{launches}.log")
                    try:
                        pending = self._run_group(launch, probes, pending, outcomes)
                    finally:
                        launch.kill()
        assert all(o is not None for o in outcomes)
        return [o for o in outcomes if o is not None]

    def _run_group(
        self, launch: _Launch, probes: Sequence[Probe], pending: list[int], outcomes: list[Outcome | None]
    ) -> list[int]:
        """Navigate ``pending`` in batches; return those still to do when the browser must be replaced."""
        for start in range(0, len(pending), self.concurrency):
            batch = pending[start : start + self.concurrency]
            results = _navigate(launch, [probes[i].url for i in batch], self.nav_timeout)
            for index, outcome in zip(batch, results, strict=True):
                outcomes[index] = outcome or Outcome(
                    False, f"timeout: no navigation result within {self.nav_timeout:g} s"
                )
            if None in results:  # a navigation that never finished leaves the browser busy: use a fresh one
                return pending[start + len(batch) :]
        return []


def _trust(home: Path, ca_files: Sequence[str]) -> None:
    """``$HOME/.pki/nssdb`` trusting each of ``ca_files`` as a CA for TLS servers."""
    try:
        nss_db(home / ".pki" / "nssdb", ca_files)
    except RealClientError as exc:
        raise ChromiumError(str(exc)) from exc


CLIENT = ChromiumClient()


# --- standalone check -----------------------------------------------------------------------------------


def _lab_probes(lab: Lab, names: set[str] | None = None, hostile: bool = False) -> Iterator[Probe]:
    for ep in lab:
        if ep.scenario.hostile != hostile or (names is not None and ep.name not in names):
            continue
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
        hostile = list(_lab_probes(lab, {"huge-chain", "many-certs", "evil-fields", "garbage"}, hostile=True))
        stall = list(_lab_probes(lab, {"stall"}, hostile=True))
        rows: list[tuple[Probe, Outcome]] = []
        began = time.perf_counter()
        rows += zip(probes, CLIENT.run(probes), strict=True)
        seconds = time.perf_counter() - began
        print(f"{len(probes)} probes in {seconds:.1f} s ({len(plan(probes))} launches)")
        began = time.perf_counter()
        rows += zip(hostile, CLIENT.run(hostile), strict=True)
        print(f"{len(hostile)} hostile probes in {time.perf_counter() - began:.1f} s")
        began = time.perf_counter()
        rows += zip(stall, ChromiumClient(nav_timeout=MIN_NAV_TIMEOUT).run(stall), strict=True)
        print(f"{len(stall)} stall probe(s) in {time.perf_counter() - began:.1f} s ({MIN_NAV_TIMEOUT:g} s timeout)")
    width = max(len(p.scenario) for p, _ in rows)
    for probe, outcome in rows:
        verdict = "accepted" if outcome.accepted else "rejected"
        print(f"{probe.scenario:<{width}}  {probe.address:<10}  {verdict:<8}  {outcome.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
