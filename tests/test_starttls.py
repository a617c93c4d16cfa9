"""STARTTLS in the collector: SMTP, IMAP and POP3 upgraded to TLS before the chain is collected.

Real servers (tests/mailservers.py): Debian's Postfix (SMTP with STARTTLS on a 587-like port, implicit TLS on a
465-like one) and Dovecot (IMAP and POP3, STARTTLS and implicit TLS), each serving a good lab chain, one without
its intermediate and an expired one; verdicts asserted finding by finding and confirmed with real clients
(``openssl s_client -starttls … -verify_return_error`` and ``curl --ssl-reqd``). Servers that misbehave in the
plaintext phase (refusing STARTTLS, dripping their banner, another protocol, a 1 MB line) are protocol-faithful
asyncio servers of this file: no real server can be made to misbehave that way on purpose.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

import jsonschemas
from certdoctor.api import diagnose
from certdoctor.cli import main
from certdoctor.collect.starttls import MAX_LINE, PROTOCOLS, STARTTLS_PORTS, Channel, UpgradeFailed
from certdoctor.errors import InputError
from certdoctor.lab import Lab
from certdoctor.pipeline import parse_target, starttls_for
from certdoctor.scan.targets import BadLine, ScanTarget, parse_line
from conftest import MAIL_CHAINS
from mailservers import Dovecot, Postfix
from starttls_expect import ACCEPTED, EXPECTED, assert_verdict, check_json, ids, lab_argv

# What each lab chain must give, finding by finding (the lab scenarios' own expectations), and whether a client
# that verifies (openssl -verify_return_error, curl) accepts it.


def test_expectations_are_the_lab_scenarios(lab: Lab) -> None:
    for name in MAIL_CHAINS:
        assert set(EXPECTED[name]) == set(lab.endpoints[name].scenario.expected)


# --- targets ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "given", "host", "port", "protocol"),
    [
        ("smtp://mx.example.com", None, "mx.example.com", 25, "smtp"),
        ("smtp://mx.example.com:587", None, "mx.example.com", 587, "smtp"),
        ("smtps://mx.example.com", None, "mx.example.com", 465, None),
        ("imap://mail.example.com", None, "mail.example.com", 143, "imap"),
        ("imaps://mail.example.com", None, "mail.example.com", 993, None),
        ("pop3://mail.example.com", None, "mail.example.com", 110, "pop3"),
        ("pop3s://mail.example.com", None, "mail.example.com", 995, None),
        ("mx.example.com:25", None, "mx.example.com", 25, "smtp"),
        ("mx.example.com:587", None, "mx.example.com", 587, "smtp"),
        ("mx.example.com:465", None, "mx.example.com", 465, None),
        ("mail.example.com:143", None, "mail.example.com", 143, "imap"),
        ("mail.example.com:110", None, "mail.example.com", 110, "pop3"),
        ("mail.example.com:993", None, "mail.example.com", 993, None),
        ("mail.example.com", None, "mail.example.com", 443, None),
        ("mx.example.com:2525", "smtp", "mx.example.com", 2525, "smtp"),
        ("mx.example.com:587", "none", "mx.example.com", 587, None),
        ("smtp://mx.example.com:587", "IMAP", "mx.example.com", 587, "imap"),  # --starttls wins
    ],
)
def test_which_protocol_a_target_speaks(spec: str, given: str | None, host: str, port: int, protocol: str) -> None:
    assert parse_target(spec) == (host, port)
    assert (starttls_for(spec, port) if given is None else starttls_for(spec, port, given)) == protocol


def test_unknown_protocols_are_input_errors() -> None:
    with pytest.raises(InputError, match="one of smtp, imap, pop3"):
        starttls_for("mx.example.com", 25, "gopher")
    with pytest.raises(InputError, match="smtp://"):
        parse_target("gopher://mx.example.com")


@pytest.mark.parametrize(
    ("line", "protocol", "port"),
    [
        ("mx.example.com:587", "smtp", 587),  # the fast path
        ("mx.example.com:587,addr=192.0.2.1", "smtp", 587),
        ("mx.example.com:2525,starttls=smtp", "smtp", 2525),
        ("mx.example.com,port=143", "imap", 143),
        ("smtp://mx.example.com:587,addr=192.0.2.1", "smtp", 587),
        ("imap://mail.example.com", "imap", 143),
        ("pop3://mail.example.com,sni=pop.example.com", "pop3", 110),
        ("mx.example.com:587,starttls=none", None, 587),
        ("smtps://mx.example.com", None, 465),
        ("mx.example.com", None, 443),
    ],
)
def test_scan_lines_name_the_protocol(line: str, protocol: str | None, port: int) -> None:
    target = parse_line(1, line)
    assert isinstance(target, ScanTarget)
    assert (target.starttls, target.port) == (protocol, port)


def test_a_bad_protocol_is_a_bad_line_and_old_wire_tuples_still_read() -> None:
    bad = parse_line(3, "mx.example.com:25,starttls=gopher")
    assert isinstance(bad, BadLine) and "one of smtp, imap, pop3" in bad.reason
    # A target sent between processes by a version without the field: its protocol is None.
    old = (1, "mx.example.com:2525", "mx.example.com", 2525, "mx.example.com", "mx.example.com", (), ())
    assert ScanTarget.from_wire(old).starttls is None
    new = ScanTarget(1, "smtp://mx:2525", "mx", 2525, "mx", "mx", starttls="smtp")
    assert ScanTarget.from_wire(new.to_wire()) == new and new.to_wire()[8] == "smtp"  # labels follow it
    assert {p: STARTTLS_PORTS[p] for p in (25, 587, 143, 110)} == {25: "smtp", 587: "smtp", 143: "imap", 110: "pop3"}


def test_csv_inputs_have_a_starttls_column() -> None:
    from certdoctor.scan.targets import read_targets

    rows = ["host,port,starttls,addr", "mx.example.com,2525,smtp,192.0.2.1", "mail.example.com,993,,"]
    rows.append("x.example,25,none,")
    got = [(t.host, t.port, t.starttls) for t in read_targets(rows) if isinstance(t, ScanTarget)]
    assert got == [("mx.example.com", 2525, "smtp"), ("mail.example.com", 993, None), ("x.example", 25, None)]


def test_watch_store_round_trips_the_protocol(tmp_path: Path) -> None:
    from certdoctor.watch.store import Store

    specs = ["mx.example.com:2525,starttls=smtp", "imap://mail.example.com", "mx.example.com:587", "web.example.com"]
    with Store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        store.add(specs)
    with Store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        got = {t.spec: t.scan_target().starttls for t in store.targets()}
    assert got == dict(zip(specs, ["smtp", "imap", "smtp", None], strict=True))


# --- the negotiators, line by line (RFC examples and edge cases) --------------------------------------------------


async def converse(
    protocol: str, greeting: bytes, replies: dict[str, bytes], local: str = "192.0.2.7", nudge_after: float = 5.0
) -> tuple[list[str], UpgradeFailed | None, Channel]:
    """Run ``protocol``'s negotiator against a scripted server: ``greeting`` first, then for each command sent the
    reply of the first key it starts with. Returns the commands sent, the failure (None: upgraded) and the
    channel."""
    loop = asyncio.get_running_loop()
    sent: list[str] = []

    def write(data: bytes) -> None:
        line = data.decode().removesuffix("\r\n")
        sent.append(line)
        for key, reply in replies.items():
            if line.upper().startswith(key):
                loop.call_soon(channel.feed, reply)
                return
        loop.call_soon(channel.feed_eof)

    channel = Channel(protocol, write, local_address=local)
    channel.feed(greeting)
    try:
        await asyncio.wait_for(PROTOCOLS[protocol].negotiate(channel, nudge_after), 5)
    except UpgradeFailed as exc:
        return sent, exc, channel
    return sent, None, channel


EHLO_OK = b"250-mx.test greets you\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"


def test_smtp_multiline_replies_and_address_literals() -> None:
    greeting = b"220-mx.test ESMTP\r\n220 no UCE\r\n"
    sent, failed, ch = asyncio.run(
        converse("smtp", greeting, {"EHLO": EHLO_OK, "STARTTLS": b"220 2.0.0 Ready to start TLS\r\nleftover"})
    )
    assert failed is None and sent == ["EHLO [192.0.2.7]", "STARTTLS"]
    assert ch.banner == "220 mx.test ESMTP | 220 no UCE" and ch.offered == ("PIPELINING", "STARTTLS", "8BITMIME")
    assert ch.discard() == len(b"leftover")  # what came after the 220 is dropped before TLS (RFC 3207 §4.2)
    sent, failed, _ = asyncio.run(
        converse("smtp", b"220 mx\r\n", {"EHLO": EHLO_OK, "STARTTLS": b"220 go\r\n"}, local="2001:db8::7")
    )
    assert failed is None and sent[0] == "EHLO [IPv6:2001:db8::7]"  # RFC 5321 §4.1.3


@pytest.mark.parametrize(
    ("greeting", "replies", "kind", "stage", "code"),
    [
        (b"554 5.7.1 go away\r\n", {}, "refused", "greeting", "554"),
        (b"220 mx\r\n", {"EHLO": b"502 5.5.1 HELO only\r\n"}, "refused", "ehlo", "502"),
        (b"220 mx\r\n", {"EHLO": b"250-mx\r\n251 mixed codes\r\n"}, "protocol", "ehlo", None),
        (b"220 mx\r\n", {"EHLO": b"250 mx\r\n"}, "refused", "ehlo", "250"),  # no extension at all
        (b"220 mx\r\n", {"EHLO": EHLO_OK, "STARTTLS": b"501 5.5.4 Syntax\r\n"}, "refused", "starttls", "501"),
        (b"220 mx\r\n", {"EHLO": EHLO_OK}, "refused", "starttls", None),  # hangs up after STARTTLS
        (b"SSH-2.0-OpenSSH_9.2\r\n", {}, "protocol", "greeting", None),
        (b"\x16\x03\x03\x00\x2a\x02", {}, "protocol", "greeting", None),  # a TLS record
    ],
)
def test_smtp_failures(greeting: bytes, replies: dict[str, bytes], kind: str, stage: str, code: str | None) -> None:
    _, failed, _ = asyncio.run(converse("smtp", greeting, replies))
    assert failed is not None and (failed.kind, failed.stage, failed.code) == (kind, stage, code), failed


def test_imap_capabilities_in_the_greeting_or_asked() -> None:
    greeting = b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"
    sent, failed, ch = asyncio.run(converse("imap", greeting, {"A2 STARTTLS": b"a2 OK Begin TLS\r\n"}))
    assert failed is None and sent == ["a2 STARTTLS"] and "STARTTLS" in ch.offered  # RFC 3501 §7.1 response code
    replies = {
        "A1 CAPABILITY": b"* OK [ALERT] noise\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK done\r\n",
        "A2 STARTTLS": b"* OK still noise\r\na2 OK Begin TLS negotiation now\r\n",
    }
    sent, failed, ch = asyncio.run(converse("imap", b"* OK ready\r\n", replies))
    assert failed is None and sent == ["a1 CAPABILITY", "a2 STARTTLS"] and ch.offered == ("IMAP4REV1", "STARTTLS")


@pytest.mark.parametrize(
    ("greeting", "replies", "kind", "stage", "code"),
    [
        (b"* PREAUTH logged in already\r\n", {}, "refused", "greeting", "PREAUTH"),  # RFC 3501 §6.2.1
        (b"* BYE too busy\r\n", {}, "refused", "greeting", "BYE"),
        (b"* OK [CAPABILITY IMAP4rev1 STARTTLS] x\r\n", {"A2": b"a2 BAD no\r\n"}, "refused", "starttls", "BAD"),
        (b"* OK x\r\n", {"A1": b"a1 NO no\r\n"}, "refused", "capability", "NO"),
        (b"220 mx ESMTP\r\n", {}, "protocol", "greeting", None),
    ],
)
def test_imap_failures(greeting: bytes, replies: dict[str, bytes], kind: str, stage: str, code: str | None) -> None:
    _, failed, _ = asyncio.run(converse("imap", greeting, replies))
    assert failed is not None and (failed.kind, failed.stage, failed.code) == (kind, stage, code), failed


@pytest.mark.parametrize(
    ("protocol", "replies", "sent"),
    [
        (
            "smtp",
            {"EHLO": b"220 slow ESMTP\r\n250-slow\r\n250 STARTTLS\r\n", "STARTTLS": b"220 go\r\n"},
            ["EHLO certdoctor.invalid", "STARTTLS"],
        ),
        (
            "imap",
            {"A0": b"* OK slow\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na0 OK done\r\n", "A2": b"a2 OK go\r\n"},
            ["a0 CAPABILITY", "a2 STARTTLS"],
        ),
        (
            "imap",  # capabilities in the greeting, and the nudge's answer before the STARTTLS one
            {
                "A0": b"* OK [CAPABILITY IMAP4rev1 STARTTLS] slow\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\na0 OK\r\n",
                "A2": b"a2 OK\r\n",
            },
            ["a0 CAPABILITY", "a2 STARTTLS"],
        ),
        ("pop3", {"CAPA": b"+OK slow\r\n+OK\r\nSTLS\r\n.\r\n", "STLS": b"+OK go\r\n"}, ["CAPA", "STLS"]),
    ],
)
def test_a_server_slow_to_greet_answers_the_nudge(protocol: str, replies: dict[str, bytes], sent: list[str]) -> None:
    """Silent for longer than the nudge delay: the command sent then is not sent again, its answer is read."""
    got, failed, channel = asyncio.run(converse(protocol, b"", replies, nudge_after=0.05))
    assert failed is None and got == sent and channel.nudged


def test_pop3_capa_is_optional_and_byte_stuffed() -> None:
    sent, failed, _ = asyncio.run(converse("pop3", b"+OK hi\r\n", {"CAPA": b"-ERR what\r\n", "STLS": b"+OK go\r\n"}))
    assert failed is None and sent == ["CAPA", "STLS"]  # no CAPA (RFC 2449 is an extension): STLS all the same
    capa = b"+OK list follows\r\nUSER\r\n..DOTTED\r\nSTLS\r\n.\r\n"
    sent, failed, ch = asyncio.run(converse("pop3", b"+OK hi\r\n", {"CAPA": capa, "STLS": b"+OK go\r\n"}))
    assert failed is None and ch.offered == ("USER", ".DOTTED", "STLS")
    _, failed, _ = asyncio.run(converse("pop3", b"-ERR busy\r\n", {}))
    assert failed is not None and (failed.kind, failed.stage, failed.code) == ("refused", "greeting", "-ERR")


# --- real servers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MAIL_CHAINS)
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_postfix(lab: Lab, postfix_server: Postfix, capsys: pytest.CaptureFixture[str], name: str, mode: str) -> None:
    port = postfix_server.ports[(name, mode)]
    scheme = "smtp" if mode == "starttls" else "smtps"
    code, doc = check_json(capsys, lab_argv(lab, scheme, name, port))
    assert_verdict(doc, code, name, "smtp" if mode == "starttls" else None)
    if mode == "starttls":
        info = doc["endpoints"][0]["starttls"]
        assert info["banner"] == "220 mail.certdoctor.test ESMTP certdoctor test"
        assert "STARTTLS" in info["offered"] and "PIPELINING" in info["offered"]


@pytest.mark.parametrize("name", MAIL_CHAINS)
@pytest.mark.parametrize("service", ["imap", "imaps", "pop3", "pop3s"])
def test_dovecot(
    lab: Lab, dovecot_server: Dovecot, capsys: pytest.CaptureFixture[str], name: str, service: str
) -> None:
    code, doc = check_json(capsys, lab_argv(lab, service, name, dovecot_server.ports[service]))
    protocol = None if service.endswith("s") else service
    assert_verdict(doc, code, name, protocol)
    if protocol is not None:
        info = doc["endpoints"][0]["starttls"]
        assert "certdoctor test mail ready" in info["banner"]
        assert ("STARTTLS" if protocol == "imap" else "STLS") in info["offered"]


def test_starttls_option_on_a_port_of_no_protocol(
    lab: Lab, postfix_server: Postfix, dovecot_server: Dovecot, capsys: pytest.CaptureFixture[str]
) -> None:
    """--starttls on check, with a bare HOST:PORT; and the text report names the protocol."""
    host = lab.endpoints["good-rsa"].hostname
    port = postfix_server.ports[("good-rsa", "starttls")]
    common = ["--resolve", f"{host}:{port}:127.0.0.1", "--ca-file", str(lab.root_path), "--no-revocation"]
    code = main(["check", f"{host}:{port}", "--starttls", "smtp", *common])
    out = capsys.readouterr().out
    assert code == 0 and "via SMTP STARTTLS" in out and "greeting: 220 mail.certdoctor.test" in out
    # without it, the same port is taken for TLS from the first byte: Postfix greets in plaintext instead
    code, doc = check_json(capsys, ["check", f"{host}:{port}", *common])
    assert code == 3 and ids(doc) == ("handshake-failed",)
    assert doc["endpoints"][0]["error_kind"] == "not-tls"


def test_inspect_and_fix_speak_starttls(
    lab: Lab, dovecot_server: Dovecot, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    name = "incomplete-no-aia"
    host, port = lab.endpoints[name].hostname, dovecot_server.ports["pop3"]
    resolve = ["--resolve", f"{host}:{port}:127.0.0.1"]
    assert main(["inspect", f"{host}:{port}", "--starttls", "pop3", *resolve, "--json"]) == 0
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert [(c["position"], c["subject"]) for c in doc["certificates"]] == [(0, f"CN={host}")]
    # fix HOST: the chain the POP3 server sends, completed from the intermediate given
    intermediates = str(lab.endpoints["good-rsa"].chain_path)
    code = main(
        [
            "fix",
            f"pop3://{host}:{port}",
            *resolve,
            "--intermediates",
            intermediates,
            "-d",
            str(tmp_path),
            "--ca-file",
            str(lab.root_path),
            "--json",
        ]
    )
    fixed = jsonschemas.loads(capsys.readouterr().out)
    assert fixed["plan"]["complete"] and fixed["plan"]["leaf"]["subject"] == f"CN={host}", fixed
    assert [c["subject"] for c in fixed["plan"]["intermediates"]] == ["CN=certdoctor Lab RSA CA,O=certdoctor Lab"]
    assert (tmp_path / "fullchain.pem").exists() and code == 0, fixed


def test_scan_lines_with_protocols(lab: Lab, postfix_server: Postfix, dovecot_server: Dovecot, tmp_path: Path) -> None:
    good, expired = lab.endpoints["good-rsa"].hostname, lab.endpoints["expired"].hostname
    lines = [
        f"smtp://{good}:{postfix_server.ports[('good-rsa', 'starttls')]},addr=127.0.0.1",
        f"{expired}:{dovecot_server.ports['imap']},addr=127.0.0.1,starttls=imap",
        f"pop3://{good}:{dovecot_server.ports['pop3']},addr=127.0.0.1",
        f"smtps://{expired}:{postfix_server.ports[('expired', 'implicit')]},addr=127.0.0.1",
    ]
    src, out = tmp_path / "targets.txt", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    main(["scan", str(src), "--ca-file", str(lab.root_path), "--no-revocation", "-o", str(out), "--no-progress", "-q"])
    records = sorted(
        (jsonschemas.validate(json.loads(x)) for x in out.read_text().splitlines()), key=lambda r: r["line"]
    )
    got = [
        (r.get("starttls"), r["verdict"], tuple(f["id"] for f in r["findings"] if f["severity"] == "error"))
        for r in records
    ]
    assert got == [
        ("smtp", "valid", ()),
        ("imap", "invalid", ("expired",)),
        ("pop3", "valid", ()),
        (None, "invalid", ("expired",)),
    ]


def test_watch_checks_mail_servers(
    lab: Lab, postfix_server: Postfix, dovecot_server: Dovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", f"sqlite:///{tmp_path / 'watch.db'}"]
    good, expired = lab.endpoints["good-rsa"].hostname, lab.endpoints["expired"].hostname
    specs = [
        f"smtp://{good}:{postfix_server.ports[('good-rsa', 'starttls')]},addr=127.0.0.1",
        f"{expired}:{dovecot_server.ports['pop3']},addr=127.0.0.1,starttls=pop3",
    ]
    assert main(["watch", "add", *specs, *db]) == 0
    capsys.readouterr()
    code, doc = check_json(capsys, ["watch", "run", *db, "--ca-file", str(lab.root_path), "--no-revocation"])
    assert code == 1 and doc["verdicts"] == {"valid": 1, "invalid": 1}, doc
    code, doc = check_json(capsys, ["watch", "status", *db])
    assert {r["target"]: r["verdict"] for r in doc["targets"]} == dict(zip(specs, ["valid", "invalid"], strict=True))


# --- real clients agree ------------------------------------------------------------------------------------------

OPENSSL_STARTTLS = {"smtp": "smtp", "imap": "imap", "pop3": "pop3"}


def openssl_accepts(root: Path, host: str, port: int, protocol: str | None) -> tuple[bool, str]:
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", host, "-verify_hostname", host]
    argv += ["-CAfile", str(root), "-verify_return_error", "-brief"]
    if protocol is not None:
        argv += ["-starttls", OPENSSL_STARTTLS[protocol]]
    done = subprocess.run(argv, input="", capture_output=True, text=True, timeout=30)
    return done.returncode == 0, done.stderr


def curl_accepts(root: Path, scheme: str, host: str, port: int) -> tuple[int, str]:
    """curl's exit code: 0 (TLS accepted, session completed), 60 (certificate refused), ..."""
    argv = ["curl", "-sS", "--ssl-reqd", "--cacert", str(root), "--resolve", f"{host}:{port}:127.0.0.1", "-m", "20"]
    if scheme.startswith("smtp"):
        argv += ["-X", "NOOP", f"{scheme}://{host}:{port}/"]
    else:  # Dovecot lets any user in: list the (empty) mailbox
        argv += ["-u", "certdoctor:any", f"{scheme}://{host}:{port}/"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr.strip()


@pytest.mark.parametrize("name", MAIL_CHAINS)
@pytest.mark.parametrize(
    ("server", "service"),
    [
        ("postfix", "smtp"),
        ("postfix", "smtps"),
        ("dovecot", "imap"),
        ("dovecot", "imaps"),
        ("dovecot", "pop3"),
        ("dovecot", "pop3s"),
    ],
)
def test_real_clients_agree(
    lab: Lab, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], name: str, server: str, service: str
) -> None:
    if server == "postfix":
        postfix: Postfix = request.getfixturevalue("postfix_server")
        port = postfix.ports[(name, "implicit" if service == "smtps" else "starttls")]
    else:
        dovecot: Dovecot = request.getfixturevalue("dovecot_server")
        port = dovecot.ports[service]
    host = lab.endpoints[name].hostname
    protocol = None if service.endswith("s") else service
    code, doc = check_json(capsys, lab_argv(lab, service, name, port))
    valid = doc["verdict"] == "valid"
    assert valid == ACCEPTED[name] and code == (0 if valid else 1)
    accepted, said = openssl_accepts(lab.root_path, host, port, protocol)
    assert accepted == valid, said
    curl_code, curl_said = curl_accepts(lab.root_path, service, host, port)
    assert (curl_code == 0) == valid and curl_code in (0, 60), (curl_code, curl_said)
    if not valid:  # curl's own words (its first line) are the ones certdoctor predicts for it
        [curl] = [c for c in doc["clients"] if c["client"] == "curl"]
        assert curl["error"] == curl_said.splitlines()[0], (curl["error"], curl_said)


# --- servers that misbehave in the plaintext phase -----------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def smtp_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, starttls: str | None) -> None:
    """SMTP as RFC 5321 says, with STARTTLS offered and answered ``starttls`` (a reply), or not offered (None)."""
    writer.write(b"220 refuse.certdoctor.test ESMTP test\r\n")
    while line := await reader.readline():
        command = line.strip().upper()
        if command.startswith(b"EHLO"):
            offer = b"250-STARTTLS\r\n" if starttls is not None else b""
            writer.write(b"250-refuse.certdoctor.test\r\n250-PIPELINING\r\n" + offer + b"250 8BITMIME\r\n")
        elif command == b"STARTTLS" and starttls is not None:
            writer.write(starttls.encode() + b"\r\n")
        elif command == b"QUIT":
            writer.write(b"221 2.0.0 Bye\r\n")
            break
        else:
            writer.write(b"502 5.5.2 Error: command not recognized\r\n")
        await writer.drain()


async def imap_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, starttls: str | None) -> None:
    """IMAP (RFC 3501) greeting without capabilities; CAPABILITY lists STARTTLS when ``starttls`` is the tagged
    status to answer it with."""
    writer.write(b"* OK test IMAP ready\r\n")
    while line := await reader.readline():
        tag, _, command = line.decode().strip().partition(" ")
        if command.upper() == "CAPABILITY":
            offer = " STARTTLS" if starttls is not None else ""
            writer.write(f"* CAPABILITY IMAP4rev1{offer} LOGINDISABLED\r\n{tag} OK CAPABILITY completed\r\n".encode())
        elif command.upper() == "STARTTLS" and starttls is not None:
            writer.write(f"{tag} {starttls}\r\n".encode())
        else:
            writer.write(f"{tag} BAD unknown\r\n".encode())
        await writer.drain()


async def pop3_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, starttls: str | None) -> None:
    """POP3 (RFC 1939, CAPA RFC 2449) listing STLS when ``starttls`` is the answer to it."""
    writer.write(b"+OK test POP3 ready\r\n")
    while line := await reader.readline():
        command = line.decode().strip().upper()
        if command == "CAPA":
            writer.write(b"+OK\r\nUSER\r\n" + (b"STLS\r\n" if starttls is not None else b"") + b".\r\n")
        elif command == "STLS" and starttls is not None:
            writer.write(starttls.encode() + b"\r\n")
        else:
            writer.write(b"-ERR unknown\r\n")
        await writer.drain()


async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A banner that never ends: one byte every 0.2 s."""
    for byte in b"220 slow.certdoctor.test ESMTP " * 1000:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.2)


async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 1 MB banner without a line end."""
    writer.write(b"220 " + b"A" * 1_048_576)
    await writer.drain()
    await asyncio.sleep(30)


async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An HTTP server: silent until it gets a request line, then 400."""
    await reader.readline()
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(60)


FAKES: dict[str, Handler] = {
    "smtp-454": lambda r, w: smtp_server(r, w, starttls="454 4.7.0 TLS not available due to local problem"),
    "smtp-plain": lambda r, w: smtp_server(r, w, starttls=None),
    "imap-no": lambda r, w: imap_server(r, w, starttls="NO [UNAVAILABLE] TLS not available"),
    "imap-plain": lambda r, w: imap_server(r, w, starttls=None),
    "pop3-err": lambda r, w: pop3_server(r, w, starttls="-ERR TLS not available"),
    "pop3-plain": lambda r, w: pop3_server(r, w, starttls=None),
    "smtp-no-tls": lambda r, w: smtp_server(r, w, starttls="220 2.0.0 Ready, but not really"),
    "drip": drip,
    "huge": huge,
    "http": http,
    "silent": silent,
}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, int]]:
    """Every server of FAKES on 127.0.0.1, in one event loop of its own thread: name → port."""
    loop = asyncio.new_event_loop()
    ports: dict[str, int] = {}
    servers: list[asyncio.Server] = []

    async def start() -> None:
        for name, handler in FAKES.items():

            async def guarded(r: asyncio.StreamReader, w: asyncio.StreamWriter, h: Handler = handler) -> None:
                try:
                    await h(r, w)
                except (ConnectionError, asyncio.CancelledError):
                    pass
                finally:
                    w.close()

            server = await asyncio.start_server(guarded, "127.0.0.1", 0)
            servers.append(server)
            ports[name] = server.sockets[0].getsockname()[1]

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    yield ports

    async def stop() -> None:
        for server in servers:
            server.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:  # the drip, huge and silent servers are still talking
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.mark.parametrize(
    ("fake", "scheme", "stage", "code", "said"),
    [
        ("smtp-454", "smtp", "starttls", "454", "454 4.7.0 TLS not available due to local problem"),
        ("smtp-plain", "smtp", "ehlo", "250", "does not offer STARTTLS: its EHLO reply lists PIPELINING, 8BITMIME"),
        ("imap-no", "imap", "starttls", "NO", "a2 NO [UNAVAILABLE] TLS not available"),
        ("imap-plain", "imap", "capability", None, "its capabilities are IMAP4REV1 LOGINDISABLED"),
        ("pop3-err", "pop3", "starttls", "-ERR", "-ERR TLS not available"),
        ("pop3-plain", "pop3", "capability", "+OK", "does not offer STLS: its CAPA lists USER"),
    ],
)
def test_refused_upgrades(
    fakes: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    fake: str,
    scheme: str,
    stage: str,
    code: str | None,
    said: str,
) -> None:
    port = fakes[fake]
    got, doc = check_json(capsys, ["check", f"{scheme}://127.0.0.1:{port}", "--timeout", "5"])
    assert got == 3 and doc["verdict"] == "unreachable" and ids(doc) == ("starttls-refused",)
    [finding] = doc["findings"]
    ev = finding["evidence"]
    assert (ev["protocol"], ev["stage"], ev["code"], ev["error_kind"]) == (scheme, stage, code, "starttls-refused")
    assert said in ev["error"] + " " + (ev["reply"] or "")
    assert (ev["banner"] and "ready" in ev["banner"]) or "ESMTP" in ev["banner"]
    # browsers do not speak mail protocols; curl and the mail libraries of the other families (TLS required) stop
    assert finding["rejected_by"] == ["curl", "python", "node", "java", "go", "dotnet"]
    # curl --ssl-reqd stops there too, with the words certdoctor predicts for it
    curl = subprocess.run(
        ["curl", "-sS", "--ssl-reqd", "-m", "10", "-u", "a:b", f"{scheme}://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    [predicted] = [c["error"] for c in doc["clients"] if c["client"] == "curl"]
    assert curl.returncode == 64 and curl.stderr.strip() == predicted


@pytest.mark.parametrize("scheme", ["smtp", "imap", "pop3"])
def test_a_dripping_banner_is_a_timeout(fakes: dict[str, int], capsys: pytest.CaptureFixture[str], scheme: str) -> None:
    got, doc = check_json(capsys, ["check", f"{scheme}://127.0.0.1:{fakes['drip']}", "--timeout", "1.5"])
    assert got == 3 and ids(doc) == ("starttls-timeout",)
    ev = doc["findings"][0]["evidence"]
    assert ev["stage"] == "greeting" and ev["reply"].startswith("220 slow") and "within 1.5 s" in ev["error"]


def test_a_silent_server_is_a_timeout_that_says_so(fakes: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    got, doc = check_json(capsys, ["check", f"imap://127.0.0.1:{fakes['silent']}", "--timeout", "1.5"])
    assert got == 3 and ids(doc) == ("starttls-timeout",)
    assert "sent nothing" in doc["findings"][0]["detail"] and "imaps://" in doc["findings"][0]["detail"]


def test_a_megabyte_banner_is_cut(fakes: dict[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    got, doc = check_json(capsys, ["check", f"smtp://127.0.0.1:{fakes['huge']}", "--timeout", "10"])
    assert got == 3 and ids(doc) == ("starttls-wrong-protocol",)
    ev = doc["findings"][0]["evidence"]
    assert f"longer than {MAX_LINE} bytes" in ev["error"] and len(ev["reply"]) <= 301


@pytest.mark.parametrize("scheme", ["smtp", "imap", "pop3"])
def test_an_http_server_is_not_the_protocol(
    fakes: dict[str, int], capsys: pytest.CaptureFixture[str], scheme: str
) -> None:
    got, doc = check_json(capsys, ["check", f"{scheme}://127.0.0.1:{fakes['http']}", "--timeout", "3"])
    assert got == 3 and ids(doc) == ("starttls-wrong-protocol",)
    ev = doc["findings"][0]["evidence"]
    assert ev["reply"] == "HTTP/1.1 400 Bad Request" and "an HTTP server" in ev["error"]


def test_starttls_on_an_implicit_tls_port(
    lab: Lab, postfix_server: Postfix, dovecot_server: Dovecot, capsys: pytest.CaptureFixture[str]
) -> None:
    """smtp:// on a 465-like port (and imap:// on 993-like): the server waits for a ClientHello."""
    for spec in (
        f"smtp://127.0.0.1:{postfix_server.ports[('good-rsa', 'implicit')]}",
        f"imap://127.0.0.1:{dovecot_server.ports['imaps']}",
    ):
        got, doc = check_json(capsys, ["check", spec, "--timeout", "3"])
        assert got == 3 and ids(doc) in (("starttls-wrong-protocol",), ("starttls-timeout",)), doc["findings"]
        assert "TLS from the first byte" in doc["findings"][0]["detail"], doc["findings"][0]["detail"]


def test_a_server_that_agrees_and_then_does_not_speak_tls(
    fakes: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    got, doc = check_json(capsys, ["check", f"smtp://127.0.0.1:{fakes['smtp-no-tls']}", "--timeout", "3"])
    assert got == 3 and ids(doc) == ("handshake-failed",)
    [endpoint] = doc["endpoints"]
    assert endpoint["error_kind"] == "not-tls" and "agreed to STARTTLS (SMTP)" in endpoint["error"]
    assert endpoint["starttls"]["protocol"] == "smtp" and endpoint["starttls"]["stage"] is None


def test_api_never_raises_for_a_misbehaving_server(fakes: dict[str, int]) -> None:
    for name, port in fakes.items():
        d = diagnose(f"127.0.0.1:{port}", starttls="smtp", timeout=1.0, clients=False, revocation=False)
        assert not d.reachable and len(d.findings) == 1, (name, d.findings)
        expected = "handshake-failed" if name == "smtp-no-tls" else "starttls-"
        assert d.findings[0].id.startswith(expected), (name, d.findings[0])
