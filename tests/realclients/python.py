"""Python's own ``ssl`` module as a real client (the OpenSSL it is linked with), in a subprocess."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Sequence

from . import Outcome, Probe

TIMEOUT = 8

# Runs in a fresh interpreter, so nothing certdoctor imported or configured can influence it.
_PROGRAM = r"""
import ipaddress, json, socket, ssl, sys
out = []
for p in json.load(sys.stdin):
    ctx = ssl.create_default_context(cafile=p["ca_file"])
    try:
        with socket.create_connection((p["address"], p["port"]), timeout=%(timeout)s) as sock:
            with ctx.wrap_socket(sock, server_hostname=p["hostname"]) as tls:
                out.append({"accepted": True, "error": ""})
    except Exception as exc:
        out.append({"accepted": False, "error": f"{type(exc).__name__}: {exc}"})
json.dump(out, sys.stdout)
"""


class PythonSsl:
    id = "python"

    def unavailable(self) -> str | None:
        return None

    def version(self) -> str:
        return f"Python {sys.version.split()[0]} ssl, {ssl.OPENSSL_VERSION}"

    def run(self, probes: Sequence[Probe]) -> list[Outcome]:
        payload = json.dumps([p.__dict__ for p in probes])
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _PROGRAM % {"timeout": TIMEOUT}],
            input=payload,
            capture_output=True,
            text=True,
            timeout=TIMEOUT * len(probes) + 30,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"python probe failed: {proc.stderr.strip()}")
        return [Outcome(r["accepted"], r["error"]) for r in json.loads(proc.stdout)]


CLIENT = PythonSsl()
