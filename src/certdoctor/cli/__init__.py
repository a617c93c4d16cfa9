"""The ``certdoctor`` command line: one module per command, dispatched in one place.

Each command module has ``NAME``, ``HELP``, ``DESCRIPTION``, ``EPILOG``, ``add_arguments(parser)`` and
``run(args) -> int``. Library errors become exit codes here, and only here (see :class:`certdoctor.model.ExitCode`):
:class:`~certdoctor.errors.InputError` → 2, :class:`~certdoctor.errors.CollectError` → 3, Ctrl-C/SIGTERM/SIGHUP → 130.
Command modules are imported when their command runs, so that ``certdoctor --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from ..model import ExitCode
from .common import Parser

__all__ = ["COMMANDS", "build_parser", "entry", "main"]

# name -> (module, one-line help); the order is the order of `certdoctor --help`
COMMANDS: dict[str, str] = {
    "check": "diagnose a server or a chain file",
    "scan": "diagnose many servers, streaming one record per target",
    "fix": "turn a pile of certificate files into a correct fullchain.pem",
    "inspect": "describe every certificate in files or a server's chain",
    "explain": "paste a client's TLS error: which client said it, the likely causes, what to run",
    "rules": "list the checks (finding ids) or describe one",
    "clients": "list the client families certdoctor predicts, and what each one models",
    "stores": "list the trust stores certdoctor can judge against",
    "lab": "run the local lab of misconfigured TLS servers (foreground)",
    "demo": "start the lab in-process and diagnose every scenario",
    "watch": "monitor many servers: an inventory, checks stored over time, what changed",
    "policy": "validate a certificate policy file, or print a preset",
}

MAIN_EPILOG = """\
examples:
  certdoctor demo                      # start the local lab and diagnose every scenario
  certdoctor check example.com         # diagnose a server
  certdoctor scan hosts.txt > out.jsonl   # many servers, streaming one JSON line per target
  certdoctor fix cert.crt bundle.crt   # write a correct fullchain.pem from a pile of files
  certdoctor inspect fullchain.pem     # every certificate in a file, with roles and links
  certdoctor explain 'PKIX path building failed'   # what a client's error means
  certdoctor rules                     # every finding id certdoctor can report
  certdoctor lab                       # run the lab in the foreground to test your own clients
  certdoctor watch add example.com && certdoctor watch run   # monitor: store checks, report what changed

exit status (every command): 0 no problem, 1 problems found, 2 usage error or unusable input, 3 could not check
(unreachable, no certificate), 130 interrupted. `certdoctor COMMAND --help` says what each means for it.
"""

# Commands whose work is over when they return: what they write is closed (files) or flushed (stdout, stderr),
# and no thread, child process or temporary file outlives them. After these the console script skips the
# interpreter's teardown, which frees every object of the trust stores and caches one by one (30-50 ms).
FAST_EXIT = frozenset({"check", "scan", "explain", "clients", "inspect", "rules", "stores", "policy"})


def _module(name: str) -> Any:
    return importlib.import_module(f"{__name__}.{name}")


def build_parser(command: str | None = None, *, all_commands: bool = True) -> argparse.ArgumentParser:
    """The parser; with ``command``, only that command's arguments are declared (its module alone imported);
    without one, every command's when ``all_commands``, none otherwise (``certdoctor --help`` and ``--version``
    list the commands without importing them)."""
    from .. import __version__

    parser = Parser(
        prog="certdoctor",
        description="Explain why TLS clients reject a server's certificate chain, and how to fix it.",
        epilog=MAIN_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, help_text in COMMANDS.items():
        if name != command and (command is not None or not all_commands):
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        module = _module(name)
        p = sub.add_parser(name, help=help_text, description=module.DESCRIPTION, epilog=module.EPILOG)
        module.add_arguments(p)
    return parser


def _quiet_library_warnings() -> None:
    """Certificates with RFC violations make cryptography warn; they are findings, not console noise."""
    import warnings

    warnings.filterwarnings("ignore", module=r"certdoctor\..*")
    warnings.filterwarnings("ignore", message=r".*(serial number|RFC 5280).*")


_terminating = False  # a SIGTERM or SIGHUP arrived during this command


def _on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM (and SIGHUP) do what Ctrl-C does: whatever handles SIGINT now (inside ``asyncio.run``, its handler,
    which cancels the main task so that it ends the way Ctrl-C ends it), or KeyboardInterrupt. Once: the command
    is stopping already, and another one would only cut its cleanup short (SIGKILL is the way to insist)."""
    global _terminating
    if _terminating:
        return
    _terminating = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _on_sigterm:
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def entry() -> None:
    """The ``certdoctor`` console script: :func:`main`, then exit."""
    command, code = _run(None, exiting=True)
    if command in FAST_EXIT:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe: what was not written is lost either way
                stream.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]) and return its exit status."""
    return _run(argv)[1]


def _command_of(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def _run(argv: Sequence[str] | None, *, exiting: bool = False) -> tuple[str | None, int]:
    """The command given (None without one) and its exit status."""
    _quiet_library_warnings()
    args = list(sys.argv[1:] if argv is None else argv)
    first = _command_of(args)
    parser = build_parser(first if first in COMMANDS else None, all_commands=False)
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:  # --help, --version (0) or a usage error (argparse printed it: 2)
        return None, int(exc.code or 0)
    if not ns.command:
        parser.print_help(sys.stderr)
        return None, int(ExitCode.USAGE)
    return ns.command, dispatch(ns, exiting=exiting)


def dispatch(ns: argparse.Namespace, *, exiting: bool = False) -> int:
    """Run the parsed command; every error certdoctor raises on purpose becomes one line on stderr and its exit
    status. An unexpected exception is a bug: one line, and the traceback only with CERTDOCTOR_DEBUG=1.

    ``exiting``: the process exits right after (the console script); for the FAST_EXIT commands, SIGINT,
    SIGTERM and SIGHUP are then ignored from the moment the status is known, so that a late one cannot replace
    it (or interrupt the final flush)."""
    global _terminating
    from ..errors import CertdoctorError, CollectError, InputError
    from .common import error

    _terminating = False
    previous: dict[int, Any] = {}
    with contextlib.suppress(ValueError):  # not the main thread
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm)
        if signal.getsignal(signal.SIGHUP) == signal.SIG_DFL:  # a closed terminal; not under nohup
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, _on_sigterm)
    try:
        return int(_module(ns.command).run(ns))
    except InputError as exc:
        error(ns.command, str(exc))
        return int(ExitCode.USAGE)
    except CollectError as exc:
        error(ns.command, str(exc))
        return int(ExitCode.UNCHECKED)
    except CertdoctorError as exc:
        error(ns.command, str(exc))
        return int(ExitCode.UNCHECKED)
    except KeyboardInterrupt:
        print("certdoctor: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # `certdoctor ... | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except Exception as exc:
        if os.environ.get("CERTDOCTOR_DEBUG"):
            raise
        error(ns.command, f"internal error: {type(exc).__name__}: {exc} (CERTDOCTOR_DEBUG=1 shows where)")
        return int(ExitCode.INTERNAL)
    finally:
        if exiting and ns.command in FAST_EXIT:
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(ValueError):
                    signal.signal(signum, signal.SIG_IGN)
        else:
            for signum, handler in previous.items():
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(signum, handler)
