"""STARTTLS beyond mail: LDAP (StartTLS extended operation), FTP (AUTH TLS), XMPP, Sieve, NNTP and IRC.

Real servers where Debian has a small one (tests/dirservers.py): slapd, vsftpd, Prosody, Dovecot's ManageSieve,
INN2's nnrpd and InspIRCd;
each serves a good lab chain, one without its intermediate and an expired one, asserted finding by finding and
confirmed with a real client of the protocol (``ldapsearch -ZZ``, ``curl --ssl-reqd``, ``openssl s_client
-starttls``). Exchanges no real server can be made to produce on purpose (a refusal, another protocol, silence, a
malformed answer) come from protocol-faithful asyncio servers of this file and scripted conversations.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import ssl
import subprocess
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import jsonschemas
from certdoctor.cli import main
from certdoctor.collect.starttls import PROTOCOLS, STARTTLS_PORTS, Channel, UpgradeFailed
from certdoctor.collect.starttls import ldap as ldap_module
from certdoctor.lab import Lab
from certdoctor.pipeline import parse_target, starttls_for
from certdoctor.scan.targets import ScanTarget, parse_line
from conftest import MAIL_CHAINS
from dirservers import (
    INSPIRCD,
    LDAPSEARCH,
    MANAGESIEVE,
    NNRPD,
    PROSODY,
    SLAPD,
    VSFTPD,
    Daemon,
    InspIRCd,
    ManageSieve,
    Nnrpd,
    Prosody,
    Slapd,
    Vsftpd,
    start_all,
    unavailable_reason,
    with_hosts,
)
from starttls_expect import ACCEPTED, assert_verdict, check_json, ids, lab_argv


def skip_unless(*binaries: str) -> None:
    """Skip (fail under CI=true) when a server or client cannot run here."""
    reason = unavailable_reason(*binaries)
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true but these tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)


# --- targets -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "given", "port", "protocol"),
    [
        ("ldap://dir.example.com", None, 389, "ldap"),
        ("ldaps://dir.example.com", None, 636, None),
        ("dir.example.com:389", None, 389, "ldap"),
        ("dir.example.com:636", None, 636, None),
        ("dir.example.com:10389", "LDAP", 10389, "ldap"),
        ("ftp://dir.example.com", None, 21, "ftp"),
        ("ftps://dir.example.com", None, 990, None),
        ("dir.example.com:21", None, 21, "ftp"),
        ("dir.example.com:990", None, 990, None),
        ("xmpp://dir.example.com", None, 5222, "xmpp"),
        ("xmpp-server://dir.example.com", None, 5269, "xmpp-server"),
        ("xmpps://dir.example.com", None, 5223, None),
        ("xmpps-server://dir.example.com", None, 5270, None),
        ("dir.example.com:5222", None, 5222, "xmpp"),
        ("dir.example.com:5269", None, 5269, "xmpp-server"),
        ("sieve://dir.example.com", None, 4190, "sieve"),
        ("dir.example.com:4190", None, 4190, "sieve"),
        ("nntp://dir.example.com", None, 119, "nntp"),
        ("nntps://dir.example.com", None, 563, None),
        ("dir.example.com:119", None, 119, "nntp"),
        ("irc://dir.example.com", None, 6667, "irc"),
        ("ircs://dir.example.com", None, 6697, None),
        ("dir.example.com:6667", None, 6667, "irc"),
        ("dir.example.com:6697", None, 6697, None),
    ],
)
def test_which_protocol_a_target_speaks(spec: str, given: str | None, port: int, protocol: str | None) -> None:
    assert parse_target(spec) == ("dir.example.com", port)
    assert (starttls_for(spec, port) if given is None else starttls_for(spec, port, given)) == protocol


def test_registry_ports_and_scan_lines() -> None:
    for port, name in {
        389: "ldap",
        21: "ftp",
        5222: "xmpp",
        5269: "xmpp-server",
        4190: "sieve",
        119: "nntp",
        6667: "irc",
    }.items():
        assert STARTTLS_PORTS[port] == name
    assert PROTOCOLS["ldap"].implicit_port == 636 and PROTOCOLS["ldap"].client_first
    for line, protocol, port in [
        ("ldap://dir.example.com,addr=192.0.2.1", "ldap", 389),
        ("dir.example.com:10389,starttls=ldap", "ldap", 10389),
        ("ldaps://dir.example.com", None, 636),
        ("ftp://dir.example.com:2121", "ftp", 2121),
        ("ftps://dir.example.com", None, 990),
        ("xmpp-server://dir.example.com", "xmpp-server", 5269),
        ("dir.example.com:15222,starttls=xmpp", "xmpp", 15222),
    ]:
        target = parse_line(1, line)
        assert isinstance(target, ScanTarget) and (target.starttls, target.port) == (protocol, port), line


def test_starttls_option_lists_the_new_protocols(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "x.example:1", "--starttls", "gopher"]) == 2
    err = capsys.readouterr().err
    assert "one of smtp, imap, pop3," in err and all(
        f" {p}," in err for p in ("ldap", "ftp", "xmpp", "sieve", "irc")
    ), err


# --- scripted conversations ----------------------------------------------------------------------------------------

Script = Callable[[bytes], bytes | None]


async def converse_bytes(
    protocol: str, script: Script, first: bytes = b"", server_name: str | None = "dir.example.com"
) -> tuple[list[bytes], UpgradeFailed | None, Channel]:
    """Run ``protocol``'s negotiator against a scripted server: ``first`` is sent before anything, then each write
    is answered with ``script(data)`` (None: the server closes). Returns the writes, the failure (None: upgraded)
    and the channel."""
    loop = asyncio.get_running_loop()
    sent: list[bytes] = []

    def write(data: bytes) -> None:
        sent.append(data)
        reply = script(data)
        loop.call_soon(channel.feed_eof if reply is None else channel.feed, *(() if reply is None else (reply,)))

    channel = Channel(protocol, write, local_address="192.0.2.7")
    channel.server_name = server_name
    if first:
        channel.feed(first)
    try:
        await asyncio.wait_for(PROTOCOLS[protocol].negotiate(channel, 5.0), 5)
    except UpgradeFailed as exc:
        return sent, exc, channel
    return sent, None, channel


def ber(tag: int, content: bytes) -> bytes:
    assert len(content) < 0x80 or tag == 0x30
    if len(content) < 0x80:
        return bytes([tag, len(content)]) + content
    return bytes([tag, 0x82]) + len(content).to_bytes(2, "big") + content


def extended_response(code: int, diagnostic: bytes = b"", message_id: int = 1, name: bytes | None = None) -> bytes:
    """An LDAPMessage with an ExtendedResponse (RFC 4511 §4.12), as a server would encode it."""
    fields = ber(0x0A, bytes([code])) + ber(0x04, b"") + ber(0x04, diagnostic)
    if name is not None:
        fields += ber(0x8A, name)
    return ber(0x30, ber(0x02, bytes([message_id])) + ber(0x78, fields))


def test_ldap_request_is_rfc_4511_exact() -> None:
    # RFC 4511 §4.14.1: ExtendedRequest, requestName 1.3.6.1.4.1.1466.20037, no requestValue; message 1.
    assert ldap_module.REQUEST.hex() == "301d02010177188016" + b"1.3.6.1.4.1.1466.20037".hex()
    sent, failed, channel = asyncio.run(converse_bytes("ldap", lambda _: extended_response(0)))
    assert failed is None and sent == [ldap_module.REQUEST] and channel.banner == "resultCode 0 (success)"
    # long-form lengths, and an unsolicited message of another id first, are read through
    short = extended_response(0)
    long_form = bytes([0x30, 0x81, short[1]]) + short[2:]
    noise = extended_response(0, b"other", message_id=5)
    _, failed, _ = asyncio.run(converse_bytes("ldap", lambda _: noise + long_form))
    assert failed is None


@pytest.mark.parametrize(
    ("reply", "kind", "code", "said"),
    [
        (extended_response(52, b"Could not initialize TLS"), "refused", "52", "52 (unavailable), 'Could not"),
        (extended_response(2, b"unsupported extended operation"), "refused", "2", "protocolError"),
        (
            extended_response(52, b"going away", message_id=0, name=b"1.3.6.1.4.1.1466.20036"),
            "refused",
            "52",
            "Notice of Disconnection",
        ),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "protocol", None, "an HTTP server"),
        (b"220 mx ESMTP\r\n", "protocol", None, "text protocol"),
        (b"\x15\x03\x03\x00\x02\x02\x46", "protocol", None, "TLS from the first byte"),
        (b"\x30\x80\x00\x00", "protocol", None, "indefinite"),
        (b"\x30\x84\x7f\xff\xff\xff", "protocol", None, "more than any LDAP server"),
        (b"\x30\x03\x02\x01\x01", "protocol", None, "not a valid LDAP message"),
        (ber(0x30, ber(0x02, b"\x01") + ber(0x65, b"")), "protocol", None, "another kind"),
        (None, "protocol", None, "closed the connection without answering in LDAP"),
    ],
)
def test_ldap_failures(reply: bytes | None, kind: str, code: str | None, said: str) -> None:
    _, failed, _ = asyncio.run(converse_bytes("ldap", lambda _: reply))
    assert failed is not None and (failed.kind, failed.stage, failed.code) == (kind, "starttls", code), failed
    assert said in str(failed), failed


def lines(replies: dict[str, bytes | None]) -> Script:
    """A script for a text protocol: the reply of the first key the written line starts with (case-insensitive);
    no key: the server closes."""

    def script(data: bytes) -> bytes | None:
        line = data.decode().upper()
        return next((reply for key, reply in replies.items() if line.startswith(key.upper())), None)

    return script


def test_ftp_multiline_greetings_and_120() -> None:
    greeting = b"220-Welcome\r\n  to this server\r\n220-more\r\n220 ready\r\n"
    sent, failed, ch = asyncio.run(converse_bytes("ftp", lines({"AUTH TLS": b"234 AUTH TLS OK.\r\n"}), greeting))
    assert (
        failed is None
        and sent == [b"AUTH TLS\r\n"]
        and ch.banner == "220 Welcome | 220   to this server | 220 more | 220 ready"
    )
    greeting = b"120 ready in 1 minute\r\n220 ready now\r\n"
    _, failed, ch = asyncio.run(converse_bytes("ftp", lines({"AUTH": b"234 go\r\n"}), greeting))
    assert failed is None and ch.banner == "220 ready now"

    # silent for longer than the nudge: AUTH TLS sent once, its answer read after the greeting
    async def slow() -> tuple[list[bytes], UpgradeFailed | None]:
        loop = asyncio.get_running_loop()
        sent: list[bytes] = []

        def write(data: bytes) -> None:
            sent.append(data)
            loop.call_soon(channel.feed, b"220 slow\r\n234 go\r\n")

        channel = Channel("ftp", write)
        try:
            await asyncio.wait_for(PROTOCOLS["ftp"].negotiate(channel, 0.05), 5)
        except UpgradeFailed as exc:
            return sent, exc
        return sent, None

    assert asyncio.run(slow()) == ([b"AUTH TLS\r\n"], None)


@pytest.mark.parametrize(
    ("greeting", "replies", "kind", "stage", "code"),
    [
        (b"421 Too many connections\r\n", {}, "refused", "greeting", "421"),
        (b"220 ok\r\n", {"AUTH": b"530 Please login with USER and PASS.\r\n"}, "refused", "starttls", "530"),
        (b"220 ok\r\n", {"AUTH": b"500 AUTH not understood\r\n"}, "refused", "starttls", "500"),
        (b"220 ok\r\n", {"AUTH": b"334 ADAT=\r\n"}, "refused", "starttls", "334"),
        (b"220 ok\r\n", {}, "refused", "starttls", None),  # hangs up after AUTH TLS
        (b"220 mx.example ESMTP Postfix\r\n", {}, "protocol", "greeting", "220"),
        (b"* OK IMAP4rev1 ready\r\n", {}, "protocol", "greeting", None),
        (b"\x16\x03\x03\x00\x2a\x02", {}, "protocol", "greeting", None),
    ],
)
def test_ftp_failures(
    greeting: bytes, replies: dict[str, bytes | None], kind: str, stage: str, code: str | None
) -> None:
    _, failed, _ = asyncio.run(converse_bytes("ftp", lines(replies), greeting))
    assert failed is not None and (failed.kind, failed.stage, failed.code) == (kind, stage, code), failed


STREAM = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
    b"id='x1' from='chat.example' version='1.0'>"
)
TLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
FEATURES = b"<stream:features>" + TLS + b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>"


def xmpp_script(features: bytes | None, answer: bytes | None, header: bytes = STREAM) -> Script:
    def script(data: bytes) -> bytes | None:
        if data.startswith(b"<?xml"):
            return header + (features or b"")
        return answer

    return script


def test_xmpp_stream_features_and_proceed() -> None:
    proceed = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    sent, failed, ch = asyncio.run(converse_bytes("xmpp", xmpp_script(FEATURES, proceed), server_name="chat.example"))
    assert failed is None, failed
    assert sent[0].startswith(b"<?xml version='1.0'?><stream:stream to='chat.example' version='1.0'")
    assert b"xmlns='jabber:client'" in sent[0] and sent[1] == b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    assert ch.offered == ("STARTTLS", "MECHANISMS") and ch.banner.startswith("<stream:stream xmlns='jabber:client'")
    # server-to-server: jabber:server; no 'to' without a name; a name with a quote is escaped
    sent, failed, _ = asyncio.run(converse_bytes("xmpp-server", xmpp_script(FEATURES, proceed), server_name=None))
    assert failed is None and b"xmlns='jabber:server'" in sent[0] and b" to=" not in sent[0]
    sent, _, _ = asyncio.run(converse_bytes("xmpp", xmpp_script(FEATURES, proceed), server_name="a'b"))
    assert b"to='a&apos;b'" in sent[0]


@pytest.mark.parametrize(
    ("script", "kind", "stage", "code", "said"),
    [
        (
            xmpp_script(FEATURES, b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"),
            "refused",
            "starttls",
            "failure",
            "answered STARTTLS with <failure/>",
        ),
        (
            xmpp_script(
                b"<stream:features><mechanisms xmlns='x'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
                None,
            ),
            "refused",
            "features",
            None,
            "its stream features are MECHANISMS",
        ),
        (
            xmpp_script(
                b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
                b"</stream:stream>",
                None,
            ),
            "refused",
            "features",
            "host-unknown",
            "does not serve this domain",
        ),
        (xmpp_script(b"</stream:stream>", None), "refused", "features", None, "closed the stream"),
        (xmpp_script(None, None, b"HTTP/1.1 400 Bad Request\r\n\r\n"), "protocol", "stream", None, "an HTTP server"),
        (xmpp_script(None, None, b"220 mx ESMTP\r\n"), "protocol", "stream", None, "text protocol"),
        (
            xmpp_script(None, None, b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x/>"),
            "protocol",
            "stream",
            None,
            "RFC 6120 §11.1",
        ),
        (xmpp_script(None, None, b"<html><body>hi</body></html>"), "protocol", "stream", None, "first element"),
        (xmpp_script(None, None, b"\x15\x03\x03\x00\x02\x02\x46"), "protocol", "stream", None, "TLS from the"),
        (xmpp_script(None, None, b"<stream:stream " + b"a" * 10000), "protocol", "stream", None, "longer than"),
        (lambda _: None, "protocol", "stream", None, "without answering in XMPP"),
    ],
)
def test_xmpp_failures(script: Script, kind: str, stage: str, code: str | None, said: str) -> None:
    _, failed, _ = asyncio.run(converse_bytes("xmpp", script))
    assert failed is not None and (failed.kind, failed.stage, failed.code) == (kind, stage, code), failed
    assert said in str(failed), failed


SIEVE_GREETING = b'"IMPLEMENTATION" "Dovecot Pigeonhole"\r\n"SIEVE" "fileinto"\r\n"STARTTLS"\r\nOK "ready"\r\n'


@pytest.mark.parametrize(
    ("protocol", "greeting", "replies", "sent", "kind", "stage", "code"),
    [
        ("sieve", SIEVE_GREETING, {"STARTTLS": b'OK "Begin TLS negotiation now."\r\n'}, ["STARTTLS"], None, None, None),
        ("sieve", SIEVE_GREETING, {"STARTTLS": b'NO "not now"\r\n'}, ["STARTTLS"], "refused", "starttls", "NO"),
        ("sieve", b'"SIEVE" "x"\r\nOK\r\n', {}, [], "refused", "capability", "OK"),
        ("sieve", b'BYE "Too many connections"\r\n', {}, [], "refused", "greeting", "BYE"),
        ("sieve", b"* OK IMAP4rev1 ready\r\n", {}, [], "protocol", "greeting", None),
        ("sieve", b"OK\r\n", {}, [], "protocol", "greeting", None),
        (
            "nntp",
            b"201 news ready, no posting\r\n",
            {"CAPABILITIES": b"101 list\r\nVERSION 2\r\nSTARTTLS\r\n.\r\n", "STARTTLS": b"382 go\r\n"},
            ["CAPABILITIES", "STARTTLS"],
            None,
            None,
            None,
        ),
        (  # no CAPABILITIES (pre-RFC 3977): STARTTLS all the same
            "nntp",
            b"200 ready\r\n",
            {"CAPABILITIES": b"500 What?\r\n", "STARTTLS": b"382 go\r\n"},
            ["CAPABILITIES", "STARTTLS"],
            None,
            None,
            None,
        ),
        ("nntp", b"400 too busy\r\n", {}, [], "refused", "greeting", "400"),
        (
            "nntp",
            b"200 ready\r\n",
            {"CAP": b"500 x\r\n", "STARTTLS": b"502 no\r\n"},
            ["CAPABILITIES", "STARTTLS"],
            "refused",
            "starttls",
            "502",
        ),
        ("nntp", b"220 mx.example ESMTP\r\n", {}, [], "protocol", "greeting", "220"),
        (
            "irc",
            b"",
            {
                "CAP LS": b":s NOTICE * :hi\r\nPING :1\r\n:s CAP * LS :sasl tls\r\n",
                "PONG": b"",
                "STARTTLS": b":s 670 * :go\r\n",
            },
            ["CAP LS 302", "PONG :1", "STARTTLS"],
            None,
            None,
            None,
        ),
        (  # no capability negotiation: STARTTLS all the same
            "irc",
            b"",
            {"CAP LS": b":s 421 * CAP :Unknown command\r\n", "STARTTLS": b":s 670 * :go\r\n"},
            ["CAP LS 302", "STARTTLS"],
            None,
            None,
            None,
        ),
        (
            "irc",
            b"",
            {"CAP LS": b":s 421 * CAP :Unknown\r\n", "STARTTLS": b":s 421 * STARTTLS :Unknown\r\n"},
            ["CAP LS 302", "STARTTLS"],
            "refused",
            "starttls",
            "421",
        ),
        ("irc", b"", {"CAP LS": b"ERROR :Closing link (banned)\r\n"}, ["CAP LS 302"], "refused", "capability", "ERROR"),
        ("irc", b"", {"CAP LS": b"HTTP/1.1 400 Bad Request\r\n"}, ["CAP LS 302"], "protocol", "greeting", None),
        ("irc", b"", {"CAP LS": b"\x15\x03\x03\x00\x02\x02\x46"}, ["CAP LS 302"], "protocol", "greeting", None),
    ],
)
def test_sieve_nntp_irc_conversations(
    protocol: str,
    greeting: bytes,
    replies: dict[str, bytes | None],
    sent: list[str],
    kind: str | None,
    stage: str | None,
    code: str | None,
) -> None:
    wrote, failed, _ = asyncio.run(converse_bytes(protocol, lines(replies), greeting))
    assert [w.decode().removesuffix("\r\n") for w in wrote] == sent
    if kind is None:
        assert failed is None, failed
    else:
        assert failed is not None and (failed.kind, failed.stage, failed.code) == (kind, stage, code), failed


# --- servers that misbehave (protocol-faithful asyncio servers) ------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def ldap_refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An LDAP server that answers StartTLS with unwillingToPerform (53), as Active Directory does without a
    certificate."""
    await reader.readexactly(len(ldap_module.REQUEST))
    writer.write(extended_response(53, b"00002028: LdapErr: DSID-0C09, no certificate"))
    await writer.drain()
    await reader.read()


async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An HTTP server: a 400 to anything that is not a request."""
    await reader.read(1)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(60)


async def xmpp_drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A stream header that never ends: one byte every 0.05 s."""
    await reader.read(1)
    for byte in b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='" + b"x" * 5000:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.05)


async def xmpp_huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 1 MB stream header (an attribute value without its end)."""
    await reader.read(1)
    writer.write(b"<stream:stream id='" + b"A" * 1_048_576)
    await writer.drain()
    await asyncio.sleep(30)


async def ldap_drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An LDAP answer announced 100 bytes long, sent one byte a second."""
    await reader.read(1)
    for byte in b"\x30\x64\x02\x01\x01" + b"\x00" * 95:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1)


FAKES: dict[str, Handler] = {
    "ldap-53": ldap_refusing,
    "http": http,
    "silent": silent,
    "xmpp-drip": xmpp_drip,
    "xmpp-huge": xmpp_huge,
    "ldap-drip": ldap_drip,
}


@contextlib.contextmanager
def serving(handlers: dict[str, tuple[Handler, ssl.SSLContext | None]]) -> Iterator[dict[str, int]]:
    """Each handler on 127.0.0.1 (behind TLS from the first byte when it has a context), in one event loop of its
    own thread: name → port."""
    loop = asyncio.new_event_loop()
    ports: dict[str, int] = {}
    servers: list[asyncio.Server] = []

    async def start() -> None:
        for name, (handler, context) in handlers.items():

            async def guarded(r: asyncio.StreamReader, w: asyncio.StreamWriter, h: Handler = handler) -> None:
                try:
                    await h(r, w)
                except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError):
                    pass
                finally:
                    w.close()

            server = await asyncio.start_server(guarded, "127.0.0.1", 0, ssl=context)
            servers.append(server)
            ports[name] = server.sockets[0].getsockname()[1]

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    try:
        yield ports
    finally:

        async def stop() -> None:
            for server in servers:
                server.close()
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, int]]:
    """Every server of FAKES on 127.0.0.1: name → port."""
    with serving({name: (handler, None) for name, handler in FAKES.items()}) as ports:
        yield ports


@pytest.mark.parametrize(
    ("fake", "scheme", "finding", "said"),
    [
        ("ldap-53", "ldap", "starttls-refused", "53 (unwillingToPerform), '00002028: LdapErr"),
        ("http", "ldap", "starttls-wrong-protocol", "an HTTP server"),
        (
            "silent",
            "ldap",
            "starttls-timeout",
            "an LDAP server answers StartTLS at once; a port that speaks TLS from the first byte, such as ldaps://",
        ),
        ("http", "ftp", "starttls-wrong-protocol", "an HTTP server"),
        ("silent", "ftp", "starttls-timeout", "an FTP server greets first"),
        ("http", "xmpp", "starttls-wrong-protocol", "an HTTP server"),
        ("silent", "xmpp", "starttls-timeout", "an XMPP server answers STARTTLS at once"),
        ("http", "sieve", "starttls-wrong-protocol", "an HTTP server"),
        ("silent", "sieve", "starttls-timeout", "a ManageSieve server greets first"),
        ("http", "nntp", "starttls-wrong-protocol", "an HTTP server"),
        ("silent", "nntp", "starttls-timeout", "an NNTP server greets first"),
        ("http", "irc", "starttls-wrong-protocol", "an HTTP server"),
        ("silent", "irc", "starttls-timeout", "an IRC server answers STARTTLS at once"),
        ("xmpp-drip", "xmpp", "starttls-timeout", "of an unfinished message so far: \"<?xml version='1.0'?><stream"),
        ("xmpp-huge", "xmpp", "starttls-wrong-protocol", "more than 65536 bytes before the upgrade"),
        ("ldap-drip", "ldap", "starttls-timeout", "its answer to StartTLS within 1.5 s"),
    ],
)
def test_misbehaving_servers(
    fakes: dict[str, int], capsys: pytest.CaptureFixture[str], fake: str, scheme: str, finding: str, said: str
) -> None:
    got, doc = check_json(capsys, ["check", f"{scheme}://127.0.0.1:{fakes[fake]}", "--timeout", "1.5"])
    assert got == 3 and doc["verdict"] == "unreachable" and ids(doc) == (finding,), doc["findings"]
    ev = doc["findings"][0]["evidence"]
    assert ev["protocol"] == scheme and said in ev["error"], ev
    fix = doc["findings"][0]["fix"]
    if finding == "starttls-wrong-protocol":
        # the fix names where this protocol is served (and HTTPS for an HTTP server), not every protocol's ports
        assert f"({scheme}://" in fix and "SMTP" not in fix and "POP3" not in fix, fix
        assert ("https:// on 443" in fix) == (fake == "http"), fix
    else:  # a timeout: the implicit-TLS scheme of this protocol, if it has one
        assert "smtps://" not in fix and ("s://" in fix or "--starttls none" in fix), fix


# --- LDAP: Debian's slapd ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slapd_servers(lab: Lab) -> Iterator[dict[str, Daemon]]:
    """One private slapd per chain of MAIL_CHAINS, and "no-tls": one without any certificate."""
    skip_unless(SLAPD, LDAPSEARCH)
    chains: dict[str, Any] = {n: (lab.endpoints[n].chain_path, lab.endpoints[n].key_path) for n in MAIL_CHAINS}
    chains["no-tls"] = None
    servers = start_all({name: Slapd(pair) for name, pair in chains.items()})
    yield servers
    for server in servers.values():
        server.__exit__()


def ldapsearch_accepts(lab: Lab, name: str, url: str) -> tuple[bool, str]:
    """Whether ``ldapsearch`` (OpenLDAP's client, verifying against the lab root only) reads the root DSE over
    ``url`` (ldap:// with -ZZ: StartTLS required; ldaps://)."""
    argv = [LDAPSEARCH, "-H", url, "-x", "-b", "", "-s", "base", "-o", "nettimeout=10", "-LLL", "namingContexts"]
    if url.startswith("ldap://"):
        argv.insert(1, "-ZZ")
    env = {**os.environ, "LDAPTLS_CACERT": str(lab.root_path), "LDAPTLS_REQCERT": "demand"}
    done = with_hosts(argv, [lab.endpoints[name].hostname], env=env, timeout=30)
    return done.returncode == 0, done.stderr.strip()


@pytest.mark.parametrize("name", MAIL_CHAINS)
@pytest.mark.parametrize("scheme", ["ldap", "ldaps"])
def test_slapd(
    lab: Lab, slapd_servers: dict[str, Daemon], capsys: pytest.CaptureFixture[str], name: str, scheme: str
) -> None:
    port = slapd_servers[name].ports[scheme]
    code, doc = check_json(capsys, lab_argv(lab, scheme, name, port))
    protocol = "ldap" if scheme == "ldap" else None
    assert_verdict(doc, code, name, protocol)
    if protocol:
        assert doc["endpoints"][0]["starttls"]["banner"] == "resultCode 0 (success)"
    # the real client agrees: ldapsearch -ZZ (StartTLS required) or over ldaps://
    accepted, said = ldapsearch_accepts(lab, name, f"{scheme}://{lab.endpoints[name].hostname}:{port}")
    assert accepted == ACCEPTED[name], said
    if not accepted:  # Debian's libldap (GnuTLS) says no more than this
        expected = "ldap_start_tls: Connect error (-11)" if scheme == "ldap" else "Can't contact LDAP server (-1)"
        assert expected in said, said


def test_slapd_without_certificates_refuses(
    lab: Lab, slapd_servers: dict[str, Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    port = slapd_servers["no-tls"].ports["ldap"]
    got, doc = check_json(capsys, ["check", f"ldap://127.0.0.1:{port}", "--timeout", "5"])
    assert got == 3 and ids(doc) == ("starttls-refused",), doc["findings"]
    ev = doc["findings"][0]["evidence"]
    # slapd without TLS settings does not even know the operation (RFC 4511 §4.12: protocolError)
    assert (ev["protocol"], ev["stage"], ev["code"]) == ("ldap", "starttls", "2"), ev
    assert ev["reply"] == "resultCode 2 (protocolError), 'unsupported extended operation'", ev
    # ldapsearch -ZZ stops there too
    env = {**os.environ, "LDAPTLS_CACERT": str(lab.root_path)}
    done = subprocess.run(
        [LDAPSEARCH, "-ZZ", "-H", f"ldap://127.0.0.1:{port}", "-x", "-b", "", "-s", "base", "-o", "nettimeout=10"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode != 0 and "ldap_start_tls" in done.stderr, done.stderr
    # each client's own words: ldapsearch (libldap) and python-ldap name the resultCode alike, curl's LDAP has no
    # StartTLS at all, JNDI raises the NamingException subclass of the resultCode
    said = {c["client"]: c["error"] for c in doc["clients"]}
    assert done.stderr.splitlines()[:2] == [
        "ldap_start_tls: Protocol error (2)",
        "\tadditional info: unsupported extended operation",
    ]
    assert said["python"] == (
        "ldap.PROTOCOL_ERROR: {'result': 2, 'desc': 'Protocol error', 'ctrls': [], 'info': 'unsupported extended "
        "operation'}"
    )
    assert said["java"] == "javax.naming.CommunicationException: [LDAP: error code 2 - unsupported extended operation]"
    assert said["curl"] == curl_ssl_reqd(f"ldap://127.0.0.1:{port}/") == "curl: (1) Unsupported protocol"
    python_ldap = python_ldap_start_tls(f"ldap://127.0.0.1:{port}")
    if python_ldap is not None:
        assert python_ldap == said["python"]
    assert {said[b] for b in ("chrome", "firefox", "safari", "node", "go", "dotnet")} == {f"no TLS: {ev['error']}"}
    assert "`ldapsearch -ZZ`" in doc["findings"][0]["detail"] and "curl" not in doc["findings"][0]["detail"]


def curl_ssl_reqd(url: str) -> str:
    """What ``curl --ssl-reqd URL`` says on stderr (its last line)."""
    done = subprocess.run(["curl", "-sS", "--ssl-reqd", "-m", "10", url], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0, done.stdout
    return done.stderr.strip().splitlines()[-1]


def python_ldap_start_tls(url: str) -> str | None:
    """What python-ldap's ``start_tls_s()`` raises against ``url`` ("module.Class: message"), run by the system's
    Python (Debian's python3-ldap); None when that is not installed."""
    script = (
        "import ldap, sys\nc = ldap.initialize(sys.argv[1])\ntry:\n    c.start_tls_s()\nexcept Exception as e:\n"
        "    print(type(e).__module__ + '.' + type(e).__qualname__ + ': ' + str(e))\n"
    )
    probe = subprocess.run(["/usr/bin/python3", "-c", "import ldap"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true but python-ldap is missing (Debian: python3-ldap; .ci/run installs it)")
        return None
    done = subprocess.run(["/usr/bin/python3", "-c", script, url], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def test_ldap_on_the_ldaps_port(lab: Lab, slapd_servers: dict[str, Daemon], capsys: pytest.CaptureFixture[str]) -> None:
    """ldap:// (StartTLS) on a port that speaks TLS from the first byte: slapd closes, or answers with an alert."""
    port = slapd_servers["good-rsa"].ports["ldaps"]
    got, doc = check_json(capsys, ["check", f"ldap://127.0.0.1:{port}", "--timeout", "3"])
    assert got == 3 and ids(doc) in (("starttls-wrong-protocol",), ("starttls-timeout",)), doc["findings"]
    assert "TLS from the first byte" in doc["findings"][0]["detail"], doc["findings"][0]["detail"]


# --- FTP: Debian's vsftpd ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vsftpd_servers(lab: Lab) -> Iterator[dict[tuple[str, str], Daemon]]:
    """Private vsftpds: (chain, "ftp") with AUTH TLS and (chain, "ftps") with implicit TLS for each chain of
    MAIL_CHAINS, and ("no-tls", "ftp") without TLS."""
    skip_unless(VSFTPD)
    servers: dict[tuple[str, str], Daemon] = {}
    for n in MAIL_CHAINS:
        pair = (lab.endpoints[n].chain_path, lab.endpoints[n].key_path)
        servers[(n, "ftp")] = Vsftpd(pair)
        servers[(n, "ftps")] = Vsftpd(pair, implicit=True)
    servers[("no-tls", "ftp")] = Vsftpd(None)
    started = start_all(servers)
    yield started  # type: ignore[misc]
    for server in started.values():
        server.__exit__()


def curl_ftp(root: str, url: str, host: str, port: int) -> tuple[int, str]:
    """curl's exit code listing ``url`` anonymously (--ssl-reqd: TLS required), trusting only ``root``."""
    argv = ["curl", "-sS", "--ssl-reqd", "--cacert", root, "--resolve", f"{host}:{port}:127.0.0.1", "-m", "20", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr.strip()


@pytest.mark.parametrize("name", MAIL_CHAINS)
@pytest.mark.parametrize("scheme", ["ftp", "ftps"])
def test_vsftpd(
    lab: Lab,
    vsftpd_servers: dict[tuple[str, str], Daemon],
    capsys: pytest.CaptureFixture[str],
    name: str,
    scheme: str,
) -> None:
    port = vsftpd_servers[(name, scheme)].ports["ftp"]
    code, doc = check_json(capsys, lab_argv(lab, scheme, name, port))
    protocol = "ftp" if scheme == "ftp" else None
    assert_verdict(doc, code, name, protocol)
    if protocol:
        info = doc["endpoints"][0]["starttls"]
        assert info["banner"] == "220 certdoctor test FTP ready" and info["offered"] == ["AUTH TLS"], info
    host = lab.endpoints[name].hostname
    # the real client agrees: curl --ssl-reqd (AUTH TLS, or implicit TLS for ftps://), with its own words
    curl_code, curl_said = curl_ftp(str(lab.root_path), f"{scheme}://{host}:{port}/", host, port)
    assert (curl_code == 0) == ACCEPTED[name] and curl_code in (0, 60), (curl_code, curl_said)
    if curl_code:
        [curl] = [c for c in doc["clients"] if c["client"] == "curl"]
        assert curl["error"] == curl_said.splitlines()[0], (curl["error"], curl_said)


def test_vsftpd_without_tls_refuses(
    vsftpd_servers: dict[tuple[str, str], Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    port = vsftpd_servers[("no-tls", "ftp")].ports["ftp"]
    got, doc = check_json(capsys, ["check", f"ftp://127.0.0.1:{port}", "--timeout", "5"])
    assert got == 3 and ids(doc) == ("starttls-refused",), doc["findings"]
    ev = doc["findings"][0]["evidence"]
    assert (ev["protocol"], ev["stage"], ev["banner"]) == ("ftp", "starttls", "220 certdoctor test FTP ready"), ev
    curl_code, curl_said = curl_ftp("/dev/null", f"ftp://127.0.0.1:{port}/", "127.0.0.1", port)
    [predicted] = [c["error"] for c in doc["clients"] if c["client"] == "curl"]
    assert curl_code == 64 and curl_said == predicted, (ev, curl_code, curl_said, predicted)


def test_ftp_on_the_ftps_port(
    vsftpd_servers: dict[tuple[str, str], Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    """ftp:// (AUTH TLS) on a port that speaks TLS from the first byte: vsftpd waits for a ClientHello."""
    port = vsftpd_servers[("good-rsa", "ftps")].ports["ftp"]
    got, doc = check_json(capsys, ["check", f"ftp://127.0.0.1:{port}", "--timeout", "3"])
    assert got == 3 and ids(doc) in (("starttls-wrong-protocol",), ("starttls-timeout",)), doc["findings"]
    assert "ftps:// on 990" in doc["findings"][0]["detail"], doc["findings"][0]["detail"]


# --- XMPP: Debian's Prosody ----------------------------------------------------------------------------------------

NO_TLS_HOST = "no-tls.certdoctor.test"


@pytest.fixture(scope="module")
def prosody_server(lab: Lab) -> Iterator[Daemon]:
    """A private Prosody with a VirtualHost per chain of MAIL_CHAINS (its lab host name) and one without a
    certificate."""
    skip_unless(PROSODY)
    hosts: dict[str, Any] = {
        lab.endpoints[n].hostname: (lab.endpoints[n].chain_path, lab.endpoints[n].key_path) for n in MAIL_CHAINS
    }
    hosts[NO_TLS_HOST] = None
    [server] = start_all({"prosody": Prosody(hosts)}).values()
    yield server
    server.__exit__()


def openssl_xmpp(lab: Lab, host: str, port: int, starttls: str | None) -> tuple[bool, str]:
    """Whether ``openssl s_client`` (-starttls xmpp or xmpp-server with -xmpphost, or direct TLS with SNI)
    verifies the chain against the lab root and the host name."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", host, "-verify_hostname", host]
    argv += ["-CAfile", str(lab.root_path), "-verify_return_error", "-brief"]
    if starttls:
        argv += ["-starttls", starttls, "-xmpphost", host]
    done = subprocess.run(argv, input="", capture_output=True, text=True, timeout=30)
    return done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", MAIL_CHAINS)
@pytest.mark.parametrize("scheme", ["xmpp", "xmpps", "xmpp-server", "xmpps-server"])
def test_prosody(lab: Lab, prosody_server: Daemon, capsys: pytest.CaptureFixture[str], name: str, scheme: str) -> None:
    port = prosody_server.ports[scheme]
    code, doc = check_json(capsys, lab_argv(lab, scheme, name, port))
    protocol = None if scheme.startswith("xmpps") else scheme
    assert_verdict(doc, code, name, protocol)
    host = lab.endpoints[name].hostname
    if protocol:
        info = doc["endpoints"][0]["starttls"]
        assert "STARTTLS" in info["offered"] and f"from='{host}'" in info["banner"], info
    accepted, said = openssl_xmpp(lab, host, port, protocol)
    assert accepted == ACCEPTED[name], said


@pytest.mark.parametrize(
    ("host", "code", "said"),
    [
        # Prosody with c2s_require_encryption and no mod_tls for the host: it offers nothing and ends the stream
        (NO_TLS_HOST, "undefined-condition", "<undefined-condition/> 'No stream features to proceed with'"),
        ("unknown.certdoctor.test", "host-unknown", "'This server does not serve unknown.certdoctor.test'"),
    ],
)
def test_prosody_refuses(
    lab: Lab, prosody_server: Daemon, capsys: pytest.CaptureFixture[str], host: str, code: str | None, said: str
) -> None:
    port = prosody_server.ports["xmpp"]
    argv = ["check", f"xmpp://{host}:{port}", "--resolve", f"{host}:{port}:127.0.0.1", "--timeout", "5"]
    got, doc = check_json(capsys, argv)
    assert got == 3 and ids(doc) == ("starttls-refused",), doc["findings"]
    ev = doc["findings"][0]["evidence"]
    assert (ev["protocol"], ev["stage"], ev["code"]) == ("xmpp", "features", code) and said in ev["error"], ev
    # openssl s_client -starttls xmpp stops there too ("STARTTLS not supported" / a closed stream)
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", "xmpp", "-xmpphost", host, "-brief"],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0, done.stderr
    # curl speaks no XMPP: it stops before connecting, in the words predicted for it
    said = {c["client"]: c["error"] for c in doc["clients"]}
    assert said["curl"] == curl_ssl_reqd(f"xmpp://127.0.0.1:{port}/")
    assert said["curl"] == 'curl: (1) Protocol "xmpp" not supported or disabled in libcurl'
    assert said["python"] == said["java"] == f"no TLS: {ev['error']}"


def test_xmpp_on_the_direct_tls_port(lab: Lab, prosody_server: Daemon, capsys: pytest.CaptureFixture[str]) -> None:
    port = prosody_server.ports["xmpps"]
    host = lab.endpoints["good-rsa"].hostname
    argv = ["check", f"xmpp://{host}:{port}", "--resolve", f"{host}:{port}:127.0.0.1", "--timeout", "3"]
    got, doc = check_json(capsys, argv)
    assert got == 3 and ids(doc) in (("starttls-wrong-protocol",), ("starttls-timeout",)), doc["findings"]
    assert "xmpps:// on 5223" in doc["findings"][0]["detail"], doc["findings"][0]["detail"]


# --- ManageSieve: Dovecot's Pigeonhole ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sieve_servers(lab: Lab) -> Iterator[dict[str, Daemon]]:
    """ "tls": a private Dovecot serving ManageSieve with each chain of MAIL_CHAINS by SNI; "no-tls": one without
    TLS."""
    skip_unless(MANAGESIEVE)
    chains = {
        n: (lab.endpoints[n].chain_path, lab.endpoints[n].key_path, lab.endpoints[n].hostname) for n in MAIL_CHAINS
    }
    servers = start_all({"tls": ManageSieve(chains), "no-tls": ManageSieve({})})
    yield servers
    for server in servers.values():
        server.__exit__()


def openssl_starttls(lab: Lab, host: str, port: int, starttls: str | None) -> tuple[bool, str]:
    """Whether ``openssl s_client`` (``-starttls PROTO``, or TLS at once) verifies the chain against the lab root
    and the host name."""
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", host, "-verify_hostname", host]
    argv += ["-CAfile", str(lab.root_path), "-verify_return_error", "-brief"]
    if starttls:
        argv += ["-starttls", starttls]
    done = subprocess.run(argv, input="", capture_output=True, text=True, timeout=30)
    return done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", MAIL_CHAINS)
def test_managesieve(lab: Lab, sieve_servers: dict[str, Daemon], capsys: pytest.CaptureFixture[str], name: str) -> None:
    port = sieve_servers["tls"].ports["sieve"]
    code, doc = check_json(capsys, lab_argv(lab, "sieve", name, port))
    assert_verdict(doc, code, name, "sieve")
    info = doc["endpoints"][0]["starttls"]
    assert "STARTTLS" in info["offered"] and "IMPLEMENTATION" in info["offered"] and info["banner"].startswith("OK")
    accepted, said = openssl_starttls(lab, lab.endpoints[name].hostname, port, "sieve")
    assert accepted == ACCEPTED[name], said


def test_managesieve_without_tls_refuses(sieve_servers: dict[str, Daemon], capsys: pytest.CaptureFixture[str]) -> None:
    port = sieve_servers["no-tls"].ports["sieve"]
    got, doc = check_json(capsys, ["check", f"sieve://127.0.0.1:{port}", "--timeout", "5"])
    assert got == 3 and ids(doc) == ("starttls-refused",), doc["findings"]
    ev = doc["findings"][0]["evidence"]
    assert (ev["protocol"], ev["stage"], ev["code"]) == ("sieve", "capability", "OK"), ev
    assert "STARTTLS" not in ev["offered"] and "IMPLEMENTATION" in ev["offered"], ev
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", "sieve", "-brief"],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0, done.stderr
    said = {c["client"]: c["error"] for c in doc["clients"]}
    assert said["curl"] == curl_ssl_reqd(f"sieve://127.0.0.1:{port}/")
    assert said["curl"] == 'curl: (1) Protocol "sieve" not supported or disabled in libcurl'
    assert said["python"] == f"no TLS: {ev['error']}"


# --- NNTP: INN2's nnrpd ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nnrpd_servers(lab: Lab) -> Iterator[dict[tuple[str, str], Daemon]]:
    """(chain, "nntp" | "nntps") → a private nnrpd serving that chain of MAIL_CHAINS with STARTTLS or TLS from the
    first byte; ("none", "nntp"): one without a certificate (it still lists STARTTLS, and answers it 580)."""
    skip_unless(NNRPD)
    servers: dict[tuple[str, str], Daemon] = {("none", "nntp"): Nnrpd(None)}
    for name in MAIL_CHAINS:
        pair = (lab.endpoints[name].chain_path, lab.endpoints[name].key_path)
        servers[(name, "nntp")] = Nnrpd(pair)
        servers[(name, "nntps")] = Nnrpd(pair, implicit=True)
    started = start_all(servers)
    yield started
    for server in started.values():
        server.__exit__()


@pytest.mark.parametrize("name", MAIL_CHAINS)
@pytest.mark.parametrize("scheme", ["nntp", "nntps"])
def test_nnrpd(
    lab: Lab,
    nnrpd_servers: dict[tuple[str, str], Daemon],
    capsys: pytest.CaptureFixture[str],
    name: str,
    scheme: str,
) -> None:
    port = nnrpd_servers[(name, scheme)].ports[scheme]
    code, doc = check_json(capsys, lab_argv(lab, scheme, name, port))
    protocol = "nntp" if scheme == "nntp" else None
    assert_verdict(doc, code, name, protocol)
    if protocol:
        info = doc["endpoints"][0]["starttls"]
        assert "InterNetNews NNRP server INN 2." in info["banner"] and info["banner"][:3] in ("200", "201"), info
        assert "STARTTLS" in info["offered"] and "READER" in info["offered"], info
    accepted, said = openssl_starttls(lab, lab.endpoints[name].hostname, port, protocol)
    assert accepted == ACCEPTED[name], said


def test_nnrpd_without_tls_refuses(
    nnrpd_servers: dict[tuple[str, str], Daemon], capsys: pytest.CaptureFixture[str]
) -> None:
    port = nnrpd_servers[("none", "nntp")].ports["nntp"]
    got, doc = check_json(capsys, ["check", f"nntp://127.0.0.1:{port}", "--timeout", "5"])
    assert got == 3 and ids(doc) == ("starttls-refused",), doc["findings"]
    ev = doc["findings"][0]["evidence"]
    # nnrpd is built with TLS, so it lists STARTTLS without a certificate too, and refuses it when asked
    assert (ev["protocol"], ev["stage"], ev["code"]) == ("nntp", "starttls", "580"), ev
    assert "580 Error initializing TLS" in ev["error"] and "STARTTLS" in ev["offered"], ev
    accepted, stderr = openssl_starttls_plain(port, "nntp")
    assert not accepted and "STARTTLS failed: 580 Error initializing TLS" in stderr, stderr
    # Python's nntplib and curl, in their own words
    said = {c["client"]: c["error"] for c in doc["clients"]}
    assert said["python"] == nntplib_starttls(port) == "nntplib.NNTPPermanentError: 580 Error initializing TLS"
    assert said["curl"] == curl_ssl_reqd(f"nntp://127.0.0.1:{port}/")
    assert said["curl"] == 'curl: (1) Protocol "nntp" not supported or disabled in libcurl'


def nntplib_starttls(port: int) -> str:
    """What Python's nntplib (3.11) raises at ``starttls()`` on 127.0.0.1:``port``: "module.Class: message"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import nntplib  # deprecated since 3.11, removed in 3.13

    with nntplib.NNTP("127.0.0.1", port, timeout=10) as client:
        try:
            client.starttls()
        except nntplib.NNTPError as exc:
            return f"nntplib.{type(exc).__qualname__}: {exc}"
    return "no error"


# --- IRC: InspIRCd -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inspircd_servers(lab: Lab) -> Iterator[dict[str, Daemon]]:
    """Chain of MAIL_CHAINS → a private InspIRCd serving it on an irc port (STARTTLS) and an ircs port; "none": one
    without TLS."""
    skip_unless(INSPIRCD)
    servers: dict[str, Daemon] = {"none": InspIRCd(None)}
    for name in MAIL_CHAINS:
        servers[name] = InspIRCd((lab.endpoints[name].chain_path, lab.endpoints[name].key_path))
    started = start_all(servers)
    yield started
    for server in started.values():
        server.__exit__()


@pytest.mark.parametrize("name", MAIL_CHAINS)
@pytest.mark.parametrize("scheme", ["irc", "ircs"])
def test_inspircd(
    lab: Lab, inspircd_servers: dict[str, Daemon], capsys: pytest.CaptureFixture[str], name: str, scheme: str
) -> None:
    port = inspircd_servers[name].ports[scheme]
    code, doc = check_json(capsys, lab_argv(lab, scheme, name, port))
    protocol = "irc" if scheme == "irc" else None
    assert_verdict(doc, code, name, protocol)
    if protocol:
        info = doc["endpoints"][0]["starttls"]
        assert "TLS" in info["offered"] and "irc.certdoctor.test" in info["banner"], info
    accepted, said = openssl_starttls(lab, lab.endpoints[name].hostname, port, protocol)
    assert accepted == ACCEPTED[name], said


def test_inspircd_without_tls_refuses(inspircd_servers: dict[str, Daemon], capsys: pytest.CaptureFixture[str]) -> None:
    port = inspircd_servers["none"].ports["irc"]
    got, doc = check_json(capsys, ["check", f"irc://127.0.0.1:{port}", "--timeout", "5"])
    assert got == 3 and ids(doc) == ("starttls-refused",), doc["findings"]
    ev = doc["findings"][0]["evidence"]
    assert (ev["protocol"], ev["stage"], ev["code"]) == ("irc", "capability", "CAP"), ev
    assert "TLS" not in ev["offered"], ev
    accepted, stderr = openssl_starttls_plain(port, "irc")
    assert not accepted and "Server does not support STARTTLS." in stderr, stderr
    said = {c["client"]: c["error"] for c in doc["clients"]}
    assert said["curl"] == curl_ssl_reqd(f"irc://127.0.0.1:{port}/")
    assert said["curl"] == 'curl: (1) Protocol "irc" not supported or disabled in libcurl'
    assert said["python"] == said["go"] == f"no TLS: {ev['error']}"


def openssl_starttls_plain(port: int, starttls: str) -> tuple[bool, str]:
    """Whether ``openssl s_client -starttls PROTO`` completes a handshake at all (no verification)."""
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", starttls, "-brief"],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode == 0, done.stderr


# --- NNTP and IRC refusals no real server gives on purpose: protocol-faithful servers --------------------------------
# nnrpd always lists STARTTLS (when built with TLS, as Debian's is), and InspIRCd answers 691 only when its TLS
# setup fails at run time; these servers speak the protocols as RFC 3977/RFC 4642 and the IRCv3 "tls" extension
# say, upgrade with Python's ssl module (asyncio's start_tls) when they accept, and refuse as told.


def server_context(lab: Lab, name: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(lab.endpoints[name].chain_path, lab.endpoints[name].key_path)
    return context


async def nntp_server(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, context: ssl.SSLContext | None, reply: str
) -> None:
    """NNTP (RFC 3977) with STARTTLS (RFC 4642) listed when ``context`` (then answered ``reply``: 382 upgrades)."""
    writer.write(b"200 news.certdoctor.test InterNetNews server ready (posting ok)\r\n")
    tls = False
    while line := await reader.readline():
        command = line.decode().strip().upper()
        if command == "CAPABILITIES":
            offer = b"STARTTLS\r\n" if context is not None and not tls else b""
            writer.write(
                b"101 Capability list:\r\nVERSION 2\r\nREADER\r\n" + offer + b"LIST ACTIVE NEWSGROUPS\r\n.\r\n"
            )
        elif command == "STARTTLS" and context is not None and not tls:
            writer.write(f"{reply}\r\n".encode())
            await writer.drain()
            if reply.startswith("382"):
                await writer.start_tls(context)
                tls = True
            continue
        elif command == "QUIT":
            writer.write(b"205 Bye!\r\n")
            await writer.drain()
            return
        else:
            writer.write(b"500 What?\r\n")
        await writer.drain()


async def irc_server(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, context: ssl.SSLContext | None, reply: str
) -> None:
    """IRC with the IRCv3 "tls" capability when ``context`` (STARTTLS answered ``reply``: 670 upgrades), a NOTICE
    and a PING before the CAP reply, as ircds send them. (The NOTICE comes after the client spoke: openssl
    s_client -starttls irc stops at any line before the 670 that is not a numeric, apps/s_client.c.)"""
    me = ":irc.certdoctor.test"
    tls = False
    while line := await reader.readline():
        command, _, params = line.decode().strip().partition(" ")
        command = command.upper()
        if command == "CAP" and params.upper().startswith("LS"):
            caps = "multi-prefix sasl" + (" tls" if context is not None and not tls else "")
            writer.write(f"{me} NOTICE * :*** Looking up your hostname...\r\nPING :12345\r\n".encode())
            writer.write(f"{me} CAP * LS * :away-notify\r\n{me} CAP * LS :{caps}\r\n".encode())
        elif command == "STARTTLS" and context is not None and not tls:
            writer.write(f"{me} {reply}\r\n".encode())
            await writer.drain()
            if reply.startswith("670"):
                await writer.start_tls(context)
                tls = True
            continue
        elif command == "STARTTLS":
            writer.write(f"{me} 421 * STARTTLS :Unknown command\r\n".encode())
        elif command == "QUIT":
            writer.write(b"ERROR :Closing link\r\n")
            await writer.drain()
            return
        await writer.drain()


@pytest.fixture(scope="module")
def news_and_chat_refusing(lab: Lab) -> Iterator[dict[str, int]]:
    """ "nntp-no-tls": a news server that does not list STARTTLS; "irc-691": a chat server that lists it and
    refuses it; name → port."""
    good = server_context(lab, "good-rsa")
    handlers: dict[str, tuple[Handler, ssl.SSLContext | None]] = {
        "nntp-no-tls": (functools.partial(nntp_server, context=None, reply=""), None),
        "irc-691": (functools.partial(irc_server, context=good, reply="691 * :STARTTLS failed"), None),
    }
    with serving(handlers) as ports:
        yield ports


@pytest.mark.parametrize(
    ("server", "scheme", "stage", "code", "said"),
    [
        ("nntp-no-tls", "nntp", "capability", "101", "its CAPABILITIES are VERSION, READER, LIST"),
        ("irc-691", "irc", "starttls", "691", "691 * :STARTTLS failed (ERR_STARTTLS)"),
    ],
)
def test_news_and_chat_refusals(
    news_and_chat_refusing: dict[str, int],
    capsys: pytest.CaptureFixture[str],
    server: str,
    scheme: str,
    stage: str,
    code: str,
    said: str,
) -> None:
    port = news_and_chat_refusing[server]
    got, doc = check_json(capsys, ["check", f"{scheme}://127.0.0.1:{port}", "--timeout", "5"])
    assert got == 3 and ids(doc) == ("starttls-refused",), doc["findings"]
    ev = doc["findings"][0]["evidence"]
    assert (ev["protocol"], ev["stage"], ev["code"]) == (scheme, stage, code) and said in ev["error"], ev
    accepted, stderr = openssl_starttls_plain(port, scheme)  # openssl s_client -starttls stops there too
    assert not accepted, stderr


# --- scan and watch take the new targets ------------------------------------------------------------------------------


def test_scan_and_watch_lines_with_the_new_protocols(
    lab: Lab,
    slapd_servers: dict[str, Daemon],
    vsftpd_servers: dict[tuple[str, str], Daemon],
    prosody_server: Daemon,
    nnrpd_servers: dict[tuple[str, str], Daemon],
    inspircd_servers: dict[str, Daemon],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good, expired = lab.endpoints["good-rsa"].hostname, lab.endpoints["expired"].hostname
    lines = [
        f"ldap://{good}:{slapd_servers['good-rsa'].ports['ldap']},addr=127.0.0.1",
        f"{expired}:{slapd_servers['expired'].ports['ldaps']},addr=127.0.0.1,starttls=none",
        f"{expired}:{vsftpd_servers[('expired', 'ftp')].ports['ftp']},addr=127.0.0.1,starttls=ftp",
        f"xmpp://{good}:{prosody_server.ports['xmpp']},addr=127.0.0.1",
        f"nntp://{expired}:{nnrpd_servers[('expired', 'nntp')].ports['nntp']},addr=127.0.0.1",
        f"irc://{good}:{inspircd_servers['good-rsa'].ports['irc']},addr=127.0.0.1",
    ]
    expected = [
        ("ldap", "valid", ()),
        (None, "invalid", ("expired",)),
        ("ftp", "invalid", ("expired",)),
        ("xmpp", "valid", ()),
        ("nntp", "invalid", ("expired",)),
        ("irc", "valid", ()),
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
    assert got == expected
    # watch: the same lines as targets
    capsys.readouterr()
    db = ["--db", f"sqlite:///{tmp_path / 'watch.db'}"]
    assert main(["watch", "add", *lines, *db]) == 0
    capsys.readouterr()
    code = main(["watch", "run", *db, "--ca-file", str(lab.root_path), "--no-revocation", "--json"])
    doc = jsonschemas.loads(capsys.readouterr().out)
    assert code == 1 and doc["verdicts"] == {"valid": 3, "invalid": 3}, doc
