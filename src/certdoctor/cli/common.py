"""What every command shares: option groups declared once, the console, exit codes and argument checks.

Each command module (``certdoctor.cli.<name>``) has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; the option groups below give one name and one meaning to each idea across commands.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..collect.starttls import PROTOCOLS
from ..errors import InputError
from ..model import (
    DEFAULT_AIA_TIMEOUT,
    DEFAULT_CAA_TIMEOUT,
    DEFAULT_REVOCATION_TIMEOUT,
    DEFAULT_TIMEOUT,
    DEFAULT_WARN_DAYS,
    DiagnoseOptions,
    ExitCode,
)

EXIT_CODES_HELP = (
    "exit status: 0 no problem (warnings allowed unless --fail-on warning), 1 problems found, 2 usage error or "
    "unusable input, 3 could not check (unreachable, no certificate), 130 interrupted"
)


class UsageError(InputError):
    """A command line that cannot be carried out (exit status 2, one line on stderr)."""


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help text as written (examples keep their lines), wrapped to the terminal's width on a terminal and not
    wrapped at all when stdout is not one (a pipe, a file: ``certdoctor scan --help | grep cluster`` finds each
    option's whole description on its line), unless ``COLUMNS`` says how wide to wrap."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        if width is None and "COLUMNS" not in os.environ and not _stdout_is_terminal():
            width = UNWRAPPED
        super().__init__(prog, indent_increment, max_help_position, width)


UNWRAPPED = 1_000_000  # the help width when stdout is not a terminal: no line is ever that long


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


PARSER_KEY = "_certdoctor_parser"  # the namespace attribute naming the parser of the command given


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations, whose usage errors are one line on stderr (exit status 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kwargs)
        # the innermost command's parser sets it last (argparse copies a subparser's defaults over its parent's)
        self.set_defaults(**{PARSER_KEY: self})

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """As argparse's, but an argument no parser recognises is reported by the innermost command's parser
        (``certdoctor watch run: unrecognized arguments: --bogus``), not the top-level one."""
        ns, extras = self.parse_known_args(args, namespace)
        owner = getattr(ns, PARSER_KEY, None) or self
        if extras:
            owner.error(f"unrecognized arguments: {' '.join(extras)}")
        if hasattr(ns, PARSER_KEY):
            delattr(ns, PARSER_KEY)
        return ns

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(int(ExitCode.USAGE), f"{self.prog}: {message} (see {self.prog} --help)\n")


TASK_HELP = "with --cluster: targets per task (200); a worker that dies loses its tasks in progress, run again"


def add_cluster_options(
    g: Any, *, cluster_help: str, timeout_help: str, task_help: str = TASK_HELP, timeout_metavar: str = "S"
) -> None:
    """--cluster ADDRESS, --task-targets N (200), --cluster-timeout S (10): scan, watch run and watch serve on a
    Dask cluster (see :mod:`certdoctor.scan.cluster`); each command says what they mean for it. The values are
    checked by :func:`check_cluster_options`."""
    g.add_argument("--cluster", metavar="ADDRESS", help=cluster_help)
    g.add_argument("--task-targets", type=positive_int, default=200, metavar="N", help=task_help)
    g.add_argument("--cluster-timeout", type=float, default=10.0, metavar=timeout_metavar, help=timeout_help)


def check_cluster_options(ns: argparse.Namespace) -> None:
    """With ``--cluster``: a malformed address or a ``--cluster-timeout`` that is not a finite number of seconds
    above 0 (Dask cannot parse ``inf``) is a usage error before anything starts. Raises UsageError."""
    if getattr(ns, "cluster", None) is None:
        return
    from ..scan.cluster import parse_address

    parse_address(ns.cluster)
    timeout = getattr(ns, "cluster_timeout", None)
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise UsageError(f"--cluster-timeout must be a number of seconds more than 0: {timeout:g}")


# --- argument types: a bad value is a one-line usage error -------------------------------------------------


def seconds(text: str) -> float:
    """A positive, finite number of seconds (below a day)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and 0 < value < 86_400):
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 seconds and less than a day")
    return value


def _whole_number(text: str, lowest: int, highest: int, what: str, rule: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not lowest <= value <= highest:
        raise argparse.ArgumentTypeError(f"{text!r}: {rule}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1, sys.maxsize, "a whole number", "must be 1 or more")


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0, sys.maxsize, "a whole number", "must be 0 or more")


def port_number(text: str) -> int:
    return _whole_number(text, 1, 65535, "a port number", "a port is between 1 and 65535")


# --- option groups ------------------------------------------------------------------------------------------


def add_output_options(p: argparse.ArgumentParser, *, json: bool = True, quiet: str | bool | None = None) -> None:
    """--json, --color/--no-color, -q (``quiet``: its help; False: no -q)."""
    g = p.add_argument_group("output")
    if json:
        g.add_argument("--json", action="store_true", help="one JSON document on stdout (see schemas/)")
    g.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colours: auto (on a terminal, unless NO_COLOR is set), always, never",
    )
    g.add_argument("--no-color", dest="color", action="store_const", const="never", help="same as --color never")
    if quiet is not False:
        g.add_argument("-q", "--quiet", action="store_true", help=quiet or "only the verdict and one line per problem")


def add_connection_options(p: argparse.ArgumentParser, *, sni: bool = True) -> None:
    """--resolve, --sni/--no-sni, --starttls, --timeout."""
    g = p.add_argument_group("connection")
    g.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR[,ADDR...]",
        help="connect to these IP addresses instead of resolving HOST (like curl); SNI and name stay HOST",
    )
    if sni:
        s = g.add_mutually_exclusive_group()
        s.add_argument("--sni", metavar="NAME", help="server name to send in the ClientHello (default: the host)")
        s.add_argument("--no-sni", action="store_true", help="send no SNI (what very old clients do)")
    add_starttls_option(g)
    add_client_cert_options(g)
    add_proxy_options(g)
    add_key_types_option(g, default=True)
    add_timeout_option(g)


def add_client_cert_options(g: Any) -> None:
    """--cert (--client-cert), --client-key: the client certificate sent to servers that ask for one."""
    g.add_argument(
        "--cert",
        "--client-cert",
        dest="client_cert",
        metavar="FILE",
        help="client certificate (PEM) to send when the server asks for one (mutual TLS), as curl --cert: the "
        "certificate first, then its intermediates; its key may follow in the same file",
    )
    g.add_argument(
        "--client-key",
        metavar="FILE",
        help="the client certificate's private key, when not in the --cert file (encrypted: CERTDOCTOR_KEY_PASSWORD "
        "or --password-file). check's --key is the server's key; a --key that belongs to the --cert certificate is "
        "taken as its key, as in curl",
    )


def add_proxy_options(g: Any) -> None:
    """--proxy, --noproxy (curl's)."""
    g.add_argument(
        "--proxy",
        metavar="URL",
        help="HTTP proxy for the handshake (CONNECT) and the AIA/OCSP/CRL downloads: http://[user:password@]host"
        "[:port] (port 1080 by default, as curl); '' for none. Default: https_proxy/HTTPS_PROXY, http_proxy "
        "(downloads of http:// URLs), all_proxy/ALL_PROXY, as curl reads them",
    )
    g.add_argument(
        "--noproxy",
        metavar="LIST",
        help="hosts reached directly, comma-separated: names (each with every name below it), IP addresses, CIDR "
        "ranges, or * for all; replaces no_proxy/NO_PROXY, as curl's --noproxy",
    )


def add_key_types_option(g: Any, *, default: bool) -> None:
    """--all-key-types / --no-all-key-types (on by default for check, inspect and fix; off for scan)."""
    g.add_argument(
        "--all-key-types",
        action=argparse.BooleanOptionalAction,
        default=default,
        help="after the handshake, one more offering only the other key type (RSA or ECDSA), to collect and judge "
        "both certificates of a server that has both (default: "
        + (
            "on; --no-all-key-types saves that connection)"
            if default
            else "off for scan: one more connection per address)"
        ),
    )


def reach_fields(ns: argparse.Namespace) -> dict[str, Any]:
    """The :class:`DiagnoseOptions` fields of how servers are reached: the client certificate (see
    :func:`client_cert_fields`) and the proxy (``proxy``, ``no_proxy``; a bad proxy URL is a UsageError)."""
    fields = client_cert_fields(ns)
    if getattr(ns, "all_key_types", None) is not None:
        fields["all_key_types"] = ns.all_key_types
    for name, dest in (("proxy", "proxy"), ("noproxy", "no_proxy")):
        value = getattr(ns, name, None)
        if value is not None:
            fields[dest] = value
    if fields.get("proxy") or fields.get("no_proxy") is not None:
        from ..collect.proxy import ProxyPolicy

        try:
            ProxyPolicy(fields.get("proxy"), fields.get("no_proxy"))
        except InputError as exc:
            raise UsageError(str(exc)) from None
    return fields


def client_cert_fields(ns: argparse.Namespace) -> dict[str, Any]:
    """The client-certificate fields of :class:`DiagnoseOptions` (``client_cert``, ``client_key``,
    ``client_key_password``) for --cert/--client-key; a --key (check's server key) that belongs to the --cert
    certificate is taken as the client key, as curl's --cert/--key pair (``ns.key`` is then cleared). Raises
    UsageError for --client-key without --cert."""
    cert = getattr(ns, "client_cert", None)
    key = getattr(ns, "client_key", None)
    if not cert:
        if key:
            raise UsageError("--client-key goes with --cert FILE (the client certificate)")
        return {}
    password = key_password(ns)
    server_key = getattr(ns, "key", None)
    if not key and server_key and _key_belongs_to(server_key, cert, password):
        key, ns.key = server_key, None
    return {"client_cert": cert, "client_key": key, "client_key_password": password}


def _key_belongs_to(key_path: str, cert_path: str, password: bytes | None) -> bool:
    from ..collect.clientcert import ClientCertificateError, load_client_identity

    try:
        load_client_identity(cert_path, key_path, password)
    except ClientCertificateError:
        return False
    return True


STARTTLS_CHOICES = (*PROTOCOLS, "none")


def starttls_choice(text: str) -> str:
    """A --starttls value: a protocol of :data:`certdoctor.collect.starttls.PROTOCOLS` (smtp, imap, pop3,
    postgres, mysql, ldap...) or none (case-insensitive; postgresql is postgres)."""
    value = text.strip().lower()
    value = "postgres" if value == "postgresql" else value
    if value not in STARTTLS_CHOICES:
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(STARTTLS_CHOICES)}")
    return value


def add_starttls_option(g: Any) -> None:
    g.add_argument(
        "--starttls",
        type=starttls_choice,
        metavar="PROTO",
        help=f"speak PROTO first and upgrade to TLS: {', '.join(PROTOCOLS)}, or none (postgres-direct: "
        "PostgreSQL 17 direct TLS, ALPN postgresql). Default: the URL scheme's (smtp://, imap://, pop3://, "
        "postgres://, mysql://, ldap://...) or the port's (25 and 587: smtp, 143: imap, 110: pop3, 5432: postgres, "
        "3306: mysql, 389: ldap...); 465, 993, 995, 636... speak TLS from the first byte",
    )


def starttls_kwargs(ns: argparse.Namespace) -> dict[str, Any]:
    """``{"starttls": …}`` for :func:`certdoctor.api.diagnose` when --starttls was given, else nothing (the
    scheme or the port decides)."""
    value = getattr(ns, "starttls", None)
    return {} if value is None else {"starttls": value}


def add_timeout_option(g: Any) -> None:
    g.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per-connection timeout in seconds (default {DEFAULT_TIMEOUT:g})",
    )


def add_trust_options(p: argparse.ArgumentParser, *, bundle: bool = True) -> None:
    """--ca-file, --ca-bundle (``bundle``), --trust-store."""
    g = p.add_argument_group("trust")
    add_ca_file_option(g)
    if bundle:
        g.add_argument(
            "--ca-bundle",
            action="append",
            default=[],
            metavar="FILE",
            help="judge against exactly the roots in FILE and nothing else, as curl --cacert and openssl -CAfile "
            "do (e.g. an old certifi, a container image's bundle); repeatable",
        )
    g.add_argument(
        "--trust-store",
        action="append",
        metavar="NAME",
        help="store(s) to judge against: mozilla, system, chrome, microsoft, java (repeatable; default: mozilla "
        "and system; `certdoctor stores` lists them)",
    )


def add_ca_file_option(g: Any) -> None:
    g.add_argument(
        "--ca-file",
        action="append",
        default=[],
        metavar="FILE",
        help="extra trusted root(s), e.g. your private CA: added to every store (repeatable)",
    )


def add_no_aia_option(g: Any) -> None:
    g.add_argument("--no-aia", action="store_true", help="do not download missing intermediates via AIA")


def add_aia_options(g: Any) -> None:
    """--no-aia, --aia-timeout, --refuse-private-urls."""
    add_no_aia_option(g)
    g.add_argument(
        "--aia-timeout",
        type=seconds,
        default=DEFAULT_AIA_TIMEOUT,
        metavar="SECONDS",
        help=f"time budget for all AIA downloads of one target, every level (default {DEFAULT_AIA_TIMEOUT:g})",
    )
    add_refuse_private_option(g)


def add_refuse_private_option(g: Any) -> None:
    g.add_argument(
        "--refuse-private-urls",
        action="store_true",
        help="refuse AIA, OCSP and CRL downloads from loopback, link-local, private (RFC 1918, RFC 4193), CGNAT "
        "and unspecified addresses, checked on the address connected to (for certdoctor next to internal "
        "services: a certificate cannot make it fetch from them)",
    )


def add_judgement_options(
    p: argparse.ArgumentParser, *, at_default: str = "now", fail_on: bool = True, caa_default: bool | None = False
) -> None:
    """--at, --warn-days, --no-aia, --aia-timeout, --refuse-private-urls, --no-revocation, --revocation-timeout,
    --for, --policy, the CAA options (``caa_default``: see :func:`add_caa_options`), --fail-on."""
    g = p.add_argument_group("judgement")
    g.add_argument(
        "--at",
        metavar="DATE",
        help=f"judge as of this moment: YYYY-MM-DD, ISO 8601 (UTC unless it says otherwise) or epoch seconds "
        f"(default: {at_default})",
    )
    g.add_argument(
        "--warn-days",
        type=non_negative_int,
        default=DEFAULT_WARN_DAYS,
        metavar="N",
        help=f"warn when a certificate expires within N days (default {DEFAULT_WARN_DAYS})",
    )
    add_aia_options(g)
    g.add_argument(
        "--no-revocation",
        action="store_true",
        help="do not query OCSP responders or CRLs (a stapled OCSP response is still checked)",
    )
    g.add_argument(
        "--revocation-timeout",
        type=seconds,
        default=DEFAULT_REVOCATION_TIMEOUT,
        metavar="SECONDS",
        help=f"time budget for all OCSP/CRL lookups of one target (default {DEFAULT_REVOCATION_TIMEOUT:g})",
    )
    g.add_argument(
        "--for",
        dest="verdict_clients",
        type=client_list,
        action="append",
        metavar="CLIENTS",
        help="the clients whose refusal makes the verdict INVALID, comma-separated: chrome, firefox, safari, curl, "
        "python, node, java, go, dotnet, the groups browsers and openssl, or names such as edge, wget, postman, "
        "kubectl (default: all of them; repeatable); an error that none of these clients minds becomes a warning",
    )
    add_policy_option(g)
    add_caa_options(p, g, caa_default)
    add_ct_options(g)
    if fail_on:
        add_fail_on_option(g)


def add_caa_options(p: argparse.ArgumentParser, g: Any, default: bool | None) -> None:
    """--caa/--no-caa, --dns-server, --caa-timeout, --caa-issuer. ``default``: None looks CAA up for servers, not
    for --file chains (``check``); False only when asked (``scan``, ``watch``: one more DNS round trip per name
    and target is not what a fleet sweep wants). A policy with ``caa_required`` looks it up either way."""
    what = "servers (not --file chains)" if default is None else "no target unless asked"
    g.add_argument(
        "--caa",
        action=argparse.BooleanOptionalAction,
        help=f"look up the CAA records of the certificate's DNS names (RFC 8659; informational: clients ignore "
        f"CAA) (default: {what}; the system resolver is not asked about internal names such as *.test)",
    )
    p.set_defaults(caa=default)
    g.add_argument(
        "--dns-server",
        metavar="HOST[:PORT]",
        help="the DNS server to ask for CAA records (an IP address; default: the system resolver)",
    )
    g.add_argument(
        "--caa-timeout",
        type=seconds,
        default=DEFAULT_CAA_TIMEOUT,
        metavar="SECONDS",
        help=f"time budget for all CAA lookups of one target (default {DEFAULT_CAA_TIMEOUT:g})",
    )
    g.add_argument(
        "--caa-issuer",
        action="append",
        default=[],
        metavar="ORG=DOMAIN[,DOMAIN]",
        help="treat the CA whose organisation (issuer O=; its CN= when it has no O=) is ORG as known, with these "
        "CAA issuer domains "
        "(e.g. a private CA, or a public CA missing from the built-in table; repeatable)",
    )


def caa_issuers(values: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``--caa-issuer ORG=DOMAIN[,DOMAIN]`` values as (organisation, domains). Raises UsageError."""
    out = []
    for value in values:
        org, sep, domains = value.partition("=")
        names = tuple(d.strip().lower() for d in domains.split(",") if d.strip())
        if not sep or not org.strip() or not names:
            raise UsageError(f"--caa-issuer {value!r}: write ORGANISATION=DOMAIN[,DOMAIN]")
        out.append((org.strip(), names))
    return tuple(out)


def add_ct_options(g: Any) -> None:
    """--ct-log-list FILE, --treat-as-public-root FILE (Certificate Transparency; see certdoctor.ct)."""
    g.add_argument(
        "--ct-log-list",
        metavar="FILE",
        help="verify the signatures of Certificate Transparency SCTs against this log list (the JSON the browsers "
        "publish: Chrome's log_list.json v3); without it SCTs are counted but not verified",
    )
    g.add_argument(
        "--treat-as-public-root",
        dest="public_roots",
        action="append",
        default=[],
        metavar="FILE",
        help="judge leaves under the roots in FILE as publicly trusted for the Certificate Transparency checks "
        "(Chrome's, Mozilla's and Apple's CT policies), e.g. to test CT with a private CA (repeatable)",
    )


def add_policy_option(g: Any) -> None:
    """--policy FILE|PRESET (default: $CERTDOCTOR_POLICY)."""
    g.add_argument(
        "--policy",
        metavar="FILE|PRESET",
        help="apply a certificate policy: a TOML file of rules, or a preset (public-web, internal); reports "
        "policy-* findings (default: $CERTDOCTOR_POLICY; '' for none; see `certdoctor policy`)",
    )


def load_policy_option(ns: argparse.Namespace) -> Any:
    """The :class:`certdoctor.policy.Policy` of --policy (or $CERTDOCTOR_POLICY), or None. Raises InputError for a
    policy file that cannot be read or has a problem (a typo must not silently drop a rule)."""
    spec = getattr(ns, "policy", None)
    if spec is None:
        spec = os.environ.get("CERTDOCTOR_POLICY") or None
    if not spec:
        return None
    from ..policy import load_policy

    return load_policy(spec)


def label_pairs(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--label k=v`` values as (key, value) pairs. Raises UsageError for one without ``=``."""
    pairs = []
    for value in values:
        k, sep, v = value.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise UsageError(f"--label {value!r}: expected KEY=VALUE")
        pairs.append((k.strip(), v.strip()))
    return tuple(pairs)


def _union(lists: Sequence[tuple[str, ...]] | None) -> tuple[str, ...] | None:
    """Several --for: every client any of them names, in the table's order."""
    if not lists:
        return None
    from ..clients.verdict import parse_clients

    return parse_clients(",".join(c for group in lists for c in group))


def client_list(text: str) -> tuple[str, ...]:
    """argparse type of --for: client family ids (see certdoctor.clients.verdict.parse_clients)."""
    from ..clients.verdict import parse_clients

    try:
        return parse_clients(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_fail_on_option(g: Any) -> None:
    g.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        default="error",
        help="exit 1 on problems of this severity or worse (default: error; warning: warnings fail too)",
    )


def add_name_option(p: Any, help: str) -> None:
    """--name (the name the certificate must match); --host is its older spelling."""
    p.add_argument("--name", "--host", dest="name", metavar="NAME", help=help)


def add_key_options(p: Any, *, what: str) -> None:
    """--key, --password, --password-file, --password-env."""
    p.add_argument("--key", metavar="FILE", help=what)
    pw = p.add_mutually_exclusive_group()
    pw.add_argument(
        "--password",
        metavar="PASS",
        help="password of an encrypted key or PKCS#12 file (visible in `ps`: prefer --password-file or "
        "CERTDOCTOR_KEY_PASSWORD; prompted on a terminal)",
    )
    pw.add_argument("--password-file", metavar="FILE", help="read that password from the first line of FILE")
    pw.add_argument("--password-env", metavar="NAME", help="read that password from the environment variable NAME")


def diagnose_options(ns: argparse.Namespace, **overrides: Any) -> DiagnoseOptions:
    """The :class:`DiagnoseOptions` of the trust, connection, judgement and key option groups."""
    from ..pipeline import parse_at

    fields: dict[str, Any] = {
        "timeout": ns.timeout,
        "ca_files": tuple(ns.ca_file),
        "ca_bundle": tuple(getattr(ns, "ca_bundle", ()) or ()),
        "trust_stores": tuple(ns.trust_store) if ns.trust_store else None,
        "at": parse_at(ns.at) if getattr(ns, "at", None) is not None else None,
        "warn_days": getattr(ns, "warn_days", DEFAULT_WARN_DAYS),
        "fetch_aia": not getattr(ns, "no_aia", False),
        "revocation": not getattr(ns, "no_revocation", False),
        "revocation_timeout": getattr(ns, "revocation_timeout", DEFAULT_REVOCATION_TIMEOUT),
        "aia_timeout": getattr(ns, "aia_timeout", DEFAULT_AIA_TIMEOUT),
        "allow_private_fetch": not getattr(ns, "refuse_private_urls", False),
        "verdict_clients": _union(getattr(ns, "verdict_clients", None)),
        **reach_fields(ns),
    }
    if hasattr(ns, "caa"):
        fields.update(
            caa=ns.caa,
            dns_server=ns.dns_server,
            caa_timeout=ns.caa_timeout,
            caa_issuers=caa_issuers(ns.caa_issuer),
        )
    if hasattr(ns, "policy"):
        fields["policy"] = load_policy_option(ns)
    if getattr(ns, "ct_log_list", None):
        fields["ct_log_list"] = ns.ct_log_list
    if getattr(ns, "public_roots", None):
        fields["public_roots"] = tuple(ns.public_roots)
    if fields["ca_bundle"] and fields["trust_stores"]:
        raise UsageError("--ca-bundle replaces the trust stores: give it or --trust-store, not both")
    fields.update(overrides)
    return DiagnoseOptions(**fields)


def fail_on(ns: argparse.Namespace) -> Any:
    from ..model import Severity

    return Severity.WARNING if getattr(ns, "fail_on", "error") == "warning" else Severity.ERROR


# --- arguments that name things ----------------------------------------------------------------------------

# Extensions of certificate, key and bundle files: an argument ending so is a file, never a host name.
FILE_EXTENSIONS = (
    ".pem", ".crt", ".cer", ".der", ".p7b", ".p7c", ".p7", ".p12", ".pfx", ".key", ".csr", ".chain", ".bundle",
    ".ca-bundle", ".txt", ".json", ".jks",
)  # fmt: skip


def looks_like_file(arg: str) -> bool:
    """True when ``arg`` names a file rather than a server: it exists (a dangling symlink or a symlink loop counts:
    it is a file that cannot be read, never a host), has a path separator (outside a URL) or a certificate/key
    file extension. A typo of a file name must never become a DNS query."""
    if os.path.lexists(arg):
        return True
    if "://" in arg:
        return False
    return "/" in arg or os.sep in arg or arg.lower().endswith(FILE_EXTENSIONS)


def parse_resolve(entries: Sequence[str], host: str, port: int) -> list[str]:
    """The addresses of ``--resolve HOST:PORT:ADDR[,ADDR...]`` entries for ``host:port`` (IPv6 may be
    bracketed); raises UsageError for a malformed entry, another host or port, or an ADDR that is not an IP
    address (it is never sent to a resolver)."""
    addresses: list[str] = []
    for entry in entries:
        parts = entry.split(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            raise UsageError(f"--resolve {entry!r}: expected HOST:PORT:ADDR[,ADDR...]")
        r_host, r_port, addrs = parts
        if r_host.lower().rstrip(".") != host.lower().rstrip(".") or int(r_port) != port:
            raise UsageError(f"--resolve {entry!r} does not match the target {host}:{port}")
        for a in addrs.split(","):
            a = a.strip().strip("[]")
            if not a:
                continue
            try:
                ipaddress.ip_address(a)
            except ValueError:
                raise UsageError(f"--resolve {entry!r}: {a!r} is not an IP address") from None
            addresses.append(a)
        if not addresses:
            raise UsageError(f"--resolve {entry!r}: no address")
    return addresses


def key_password(ns: argparse.Namespace, *, prompt_for: str | None = None) -> bytes | None:
    """--password, --password-file, --password-env NAME or CERTDOCTOR_KEY_PASSWORD; on a terminal, a prompt when
    ``prompt_for`` (a file) turns out to need one. Raises UsageError for an unreadable file or unset variable."""
    if getattr(ns, "password", None) is not None:
        return ns.password.encode()
    if getattr(ns, "password_file", None):
        try:
            with open(ns.password_file, "rb") as handle:
                data = handle.read(65536)
        except OSError as exc:
            raise UsageError(f"--password-file {ns.password_file}: {exc.strerror or exc}") from None
        if not data.strip(b"\r\n"):
            raise UsageError(f"--password-file {ns.password_file} is empty")
        return data.splitlines()[0]
    if getattr(ns, "password_env", None):
        value = os.environ.get(ns.password_env)
        if value is None:
            raise UsageError(f"--password-env {ns.password_env}: no such environment variable")
        return value.encode()
    env = os.environ.get("CERTDOCTOR_KEY_PASSWORD")
    if env is not None:
        return env.encode()
    if prompt_for and sys.stdin is not None and sys.stdin.isatty():
        from ..collect.keys import KeyLoadError, load_private_key

        try:
            load_private_key(prompt_for, None)
        except KeyLoadError as exc:
            if "give its password" in str(exc):
                import getpass

                return getpass.getpass(f"password for {prompt_for}: ").encode()
    return None


# --- the console ---------------------------------------------------------------------------------------------


class _TrimmedLines:
    """A text stream that drops trailing spaces from every line (rich pads table cells to their column width)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        if lines:
            self.stream.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.stream.write(self.pending.rstrip(" "))
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()


def console(ns: argparse.Namespace | None = None, *, stderr: bool = False) -> Any:
    """A rich console for stdout (or stderr). On a terminal: colours (per --color and NO_COLOR) and the
    terminal's width. Otherwise: no colours unless --color always, no wrapping, no padding, no truncation."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    color = getattr(ns, "color", "auto") if ns is not None else "auto"
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    no_color = color == "never" or (color == "auto" and ("NO_COLOR" in os.environ or not tty))
    common: dict[str, Any] = {"highlight": False, "emoji": False, "markup": False, "no_color": no_color}
    if tty:
        return Console(file=stream, soft_wrap=False, force_terminal=color == "always" or None, **common)
    return Console(
        file=_TrimmedLines(stream),
        width=100_000,
        soft_wrap=True,
        force_terminal=color == "always",
        color_system="standard" if color == "always" else None,
        **common,
    )


def error(command: str, message: str) -> None:
    """One line on stderr: ``certdoctor COMMAND: message`` (control characters made visible)."""
    from ..render.escape import clean

    print(f"certdoctor {command}: {clean(message, 1000)}", file=sys.stderr)


__all__ = ["EXIT_CODES_HELP", "ExitCode", "Formatter", "UsageError"]
