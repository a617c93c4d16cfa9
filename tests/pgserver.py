"""A throwaway PostgreSQL server for the tests: its own cluster in a pytest temp directory, on 127.0.0.1 only.

``PostgresServer(base_dir)`` is a context manager: on entry it runs ``initdb`` into ``base_dir/data``, starts
``postgres`` on a free TCP port of 127.0.0.1 (plus a unix socket in ``base_dir/socket``), waits until it accepts
connections and creates the database ``certdoctor_test``; on exit it stops the server (``pg_ctl stop -m fast``,
then signals to the postmaster's process group) so that no process outlives the session, even when a test fails.

Binaries: Debian's ``postgresql`` package puts ``initdb``, ``pg_ctl`` and ``postgres`` in
``/usr/lib/postgresql/<major>/bin`` (not on PATH); the highest major found there is used, else PATH.

Running as root (CI runs ``.ci/run`` as root): ``initdb`` and ``postgres`` refuse to run as root ("cannot be run
as root", src/backend/main/main.c ``check_root``), so they run as the unprivileged ``postgres`` account that the
``postgresql-common`` package creates (``nobody`` if that account does not exist), through ``subprocess``'s
``user=``/``group=``/``extra_groups=`` (set in the forked child before exec; no shell, no ``runuser``, and
``Popen.pid`` is the postmaster itself). The cluster directories are chowned to that account, and the
root-owned ancestors inside the pytest temp root (``/tmp/pytest-of-root``, ``pytest-N``, ``postgresN``) get the
``o+x`` (search only, no listing) bit so that the account can reach its data directory. Another pytest session
started as root meanwhile resets ``/tmp/pytest-of-root`` to 0700 (``_pytest/tmpdir.py``): a running postmaster is
unaffected (it chdirs into its data directory at start and uses relative paths from then on), and stopping falls
back from ``pg_ctl`` (which needs the absolute path) to signalling the postmaster directly (SIGINT is the "fast"
shutdown that ``pg_ctl stop -m fast`` sends, PostgreSQL docs "Shutting Down the Server").

Speed over durability (a test cluster is thrown away): ``initdb --no-sync``, ``fsync=off``,
``synchronous_commit=off``, ``full_page_writes=off`` (PostgreSQL docs "Non-Durable Settings").
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from netutil import free_port

DATABASE = "certdoctor_test"
SUPERUSER = "certdoctor"
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_TOOLS = ("initdb", "pg_ctl", "postgres")
_OS_USERS = ("postgres", "nobody")  # first existing one runs the server when we are root


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``: the highest ``/usr/lib/postgresql/N/bin``
    that has all three, else the directory of ``initdb`` on PATH if all three are there, else None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in _TOOLS):
            return directory
    return None


def unavailable_reason() -> str | None:
    """Why no test server can be started here (one line), or None when it can."""
    if find_pg_bin() is None:
        return (
            f"PostgreSQL is not installed (no initdb/pg_ctl/postgres in {PG_BIN_GLOB} or on PATH;"
            " .ci/run installs Debian's postgresql)"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    if os.geteuid() == 0 and not any(_account(name) for name in _OS_USERS):
        return f"running as root and none of the accounts {', '.join(_OS_USERS)} exists to run postgres as"
    return None


def chmod_boundary(basetemp: Path) -> Path:
    """The highest directory whose search bit PostgresServer may open: ``/tmp/pytest-of-USER`` for pytest's
    default base temp ``/tmp/pytest-of-USER/pytest-N``, else ``basetemp`` itself (``--basetemp``)."""
    basetemp = basetemp.resolve()
    return basetemp.parent if basetemp.parent.name.startswith("pytest-of-") else basetemp


def _account(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


class PostgresServerError(RuntimeError):
    """initdb failed, or the server exited or did not accept connections in time; the message has its log."""


class PostgresServer:
    """One PostgreSQL cluster under ``base_dir`` (an empty directory), started on entry and stopped on exit.

    When root, ``temp_root`` (default: base_dir's parent; the fixture passes ``/tmp/pytest-of-root``) is the
    highest directory whose search bit may be opened for the server's account.

    Attributes once started: ``port`` (int, on 127.0.0.1), ``url`` (SQLAlchemy URL string
    ``postgresql+psycopg://certdoctor@127.0.0.1:PORT/certdoctor_test``), ``data_dir``, ``socket_dir``,
    ``log_path`` (the server's stderr), ``pid`` (the postmaster), ``os_user`` (account it runs as),
    ``startup_seconds`` (initdb to first accepted connection, float seconds, for reporting only).
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        temp_root: Path | None = None,
        ready_timeout: float = 60.0,
        settings: dict[str, str] | None = None,
        data_files: dict[str, Path] | None = None,
    ) -> None:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise PostgresServerError(unavailable_reason() or "PostgreSQL is not installed")
        self.bin_dir = bin_dir
        self.base_dir = base_dir.resolve()
        self.temp_root = (temp_root or self.base_dir.parent).resolve()
        if self.temp_root != self.base_dir and self.temp_root not in self.base_dir.parents:
            raise ValueError(f"temp_root {self.temp_root} does not contain {self.base_dir}")
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_path = self.base_dir / "server.log"
        self.ready_timeout = ready_timeout
        # More server settings (e.g. ssl=on, ssl_cert_file=...), and files copied into the data directory after
        # initdb (name -> source; owned by the server's account, mode 0600, as PostgreSQL wants its key).
        self.settings = dict(settings or {})
        self.data_files = dict(data_files or {})
        self.port = 0
        self.pid = 0
        self.startup_seconds = 0.0
        self.stopped_by = ""  # after stop(): "pg_ctl", "SIGINT", "SIGQUIT" or "SIGKILL"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        if os.geteuid() == 0:
            account = next(a for a in map(_account, _OS_USERS) if a is not None)
            self.os_user = account.pw_name
            self._as_user: dict[str, object] = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            self._owner = (account.pw_uid, account.pw_gid)
        else:
            self.os_user = pwd.getpwuid(os.geteuid()).pw_name
            self._as_user = {}
            self._owner = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the test database (trust authentication: no password)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    # -- lifecycle --------------------------------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """initdb, start postgres (a new port if the chosen one was taken meanwhile), create the database.

        Raises PostgresServerError with the initdb output or the server log."""
        began = time.monotonic()
        for path in (self.data_dir, self.socket_dir):
            path.mkdir(mode=0o700)
            if self._owner:
                os.chown(path, *self._owner)
        self._open_ancestors()
        initdb = self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )
        if initdb.returncode != 0:
            raise PostgresServerError(f"initdb failed (exit {initdb.returncode}):\n{initdb.stdout}")
        for name, source in self.data_files.items():
            target = self.data_dir / name
            shutil.copyfile(source, target)
            os.chmod(target, 0o600)
            if self._owner:
                os.chown(target, *self._owner)
        for attempt in range(3):
            self._spawn(free_port())
            try:
                self._wait_ready(began)
                break
            except PostgresServerError as error:
                if attempt < 2 and self._proc is not None and self._proc.poll() is not None and "in use" in str(error):
                    self._proc = None
                    continue  # another process took the port between free_port() and bind(): pick another
                raise
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{DATABASE}"')
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the server if it runs: ``pg_ctl stop -m fast``, else SIGINT (fast), SIGQUIT (immediate), SIGKILL
        to the postmaster's process group. Idempotent; never raises for a server that is already gone."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(OSError):
                    self._open_ancestors()
                try:
                    stopped = self._run(
                        ["pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30"], timeout=40
                    )
                    pg_ctl_ok = stopped.returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    pg_ctl_ok = False
                for sig, grace in (
                    (None if pg_ctl_ok else signal.SIGINT, 30),
                    (signal.SIGQUIT, 10),
                    (signal.SIGKILL, 10),
                ):
                    if sig is not None:
                        with contextlib.suppress(ProcessLookupError):
                            # start_new_session: the group is the postmaster and its children, which SIGKILL
                            # must take too; SIGINT/SIGQUIT go to the postmaster, which tells its children.
                            (os.killpg if sig == signal.SIGKILL else os.kill)(proc.pid, sig)
                    try:
                        proc.wait(timeout=grace)
                        self.stopped_by = sig.name if sig is not None else "pg_ctl"
                        break
                    except subprocess.TimeoutExpired:
                        continue
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    # -- helpers ----------------------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin_dir}:/usr/bin:/bin", "LC_ALL": "C", "HOME": str(self.base_dir), "TZ": "UTC"}

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool (from bin_dir) as the server's account; stdout and stderr together."""
        return subprocess.run(
            [str(self.bin_dir / argv[0]), *argv[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            env=self._env(),
            cwd=self.base_dir,
            check=False,
            **self._as_user,  # type: ignore[arg-type]
        )

    def _spawn(self, port: int) -> None:
        self.port = port
        if self._log is not None:
            self._log.close()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the server's lifetime
        self._open_ancestors()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            **self.settings,
        }
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env(),
            cwd=self.base_dir,
            start_new_session=True,  # its own process group: a terminal's ^C goes to pytest, which then stops it
            **self._as_user,  # type: ignore[arg-type]
        )
        self.pid = self._proc.pid

    def _wait_ready(self, began: float) -> None:
        """Poll until a connection to the ``postgres`` database succeeds; raise with the log if the server exits
        or ``ready_timeout`` seconds pass."""
        import psycopg

        assert self._proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self._proc.poll() is not None:
                raise PostgresServerError(f"postgres exited with status {self._proc.returncode}:\n{self.log_tail()}")
            try:
                psycopg.connect(
                    host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", connect_timeout=2
                ).close()
                return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    self.stop()
                    raise PostgresServerError(
                        f"postgres did not accept connections on 127.0.0.1:{self.port} within {self.ready_timeout} s "
                        f"({error}); server log:\n{self.log_tail()}"
                    ) from None
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log ('' if none)."""
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _open_ancestors(self) -> None:
        """As root: add o+x (search, not list) to base_dir and each of its ancestors up to ``temp_root``
        inclusive, so the server's account can reach its data directory. Nothing above ``temp_root`` is touched.
        No-op when not root."""
        if self._owner is None:
            return
        for directory in (self.base_dir, *self.base_dir.parents):
            st = directory.stat()
            if not st.st_mode & 0o001:
                os.chmod(directory, (st.st_mode & 0o7777) | 0o001)
            if directory == self.temp_root:
                break
