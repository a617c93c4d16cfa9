// Real-client probe for Node's tls module (driven by tests/realclients/node.py).
//
// Reads a JSON array of probes on stdin:
//   [{"hostname": "...", "address": "127.0.0.1", "port": 443, "ca_file": "/path/root.pem"}, ...]
// and prints a JSON array of results on stdout, in the same order:
//   [{"accepted": true, "error": ""}, {"accepted": false, "error": "CODE: message"}, ...]
//
// Each probe is tls.connect to address:port with servername = hostname (omitted for an IP address, so no
// SNI), ca = only the certificates in ca_file (not Node's bundled roots), rejectUnauthorized, and the
// hostname check done against probe.hostname (not the address we connect to). A failure is reported as
// `${err.code}: ${err.message}`, unmodified.
//
// Timeout: socket.setTimeout(10000). When the connection is idle that long before the handshake completes,
// the socket is destroyed with an error defined here (Node itself has no handshake timeout on tls.connect):
//   ETIMEDOUT: probe.js: no TLS handshake after 10000 ms idle (socket.setTimeout)
// Probes run one after another. Setup problems (bad input, unreadable ca_file) go to stderr with exit status 2.
'use strict';

const fs = require('fs');
const net = require('net');
const tls = require('tls');

const PROBE_TIMEOUT_MS = 10000;

function fail(message) {
  process.stderr.write(`probe.js: ${message}\n`);
  process.exit(2);
}

function errorText(err) {
  return err.code === undefined ? String(err.message ?? err) : `${err.code}: ${err.message}`;
}

function probeOnce(probe, ca) {
  return new Promise((resolve) => {
    let settled = false;
    const options = {
      host: probe.address,
      port: probe.port,
      ca: [ca],
      rejectUnauthorized: true,
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(probe.hostname, cert),
    };
    if (!net.isIP(probe.hostname)) {
      options.servername = probe.hostname;
    }
    const socket = tls.connect(options);
    const finish = (result) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => {
      const err = new Error(`probe.js: no TLS handshake after ${PROBE_TIMEOUT_MS} ms idle (socket.setTimeout)`);
      err.code = 'ETIMEDOUT';
      finish({ accepted: false, error: errorText(err) });
    });
    socket.once('secureConnect', () => {
      // With rejectUnauthorized, an unverified peer emits 'error' instead; this is belt and braces.
      if (socket.authorized) {
        finish({ accepted: true, error: '' });
      } else {
        finish({ accepted: false, error: `${socket.authorizationError}` });
      }
    });
    socket.on('error', (err) => finish({ accepted: false, error: errorText(err) }));
    socket.once('close', () => finish({ accepted: false, error: 'probe.js: connection closed before the handshake completed' }));
  });
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  let probes;
  try {
    probes = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    fail(`bad probe list on stdin: ${err.message}`);
  }
  if (!Array.isArray(probes)) fail('bad probe list on stdin: not an array');
  const cas = new Map();
  const results = [];
  for (const probe of probes) {
    if (!cas.has(probe.ca_file)) {
      try {
        cas.set(probe.ca_file, fs.readFileSync(probe.ca_file));
      } catch (err) {
        fail(`cannot read ca_file: ${err.message}`);
      }
    }
    results.push(await probeOnce(probe, cas.get(probe.ca_file)));
  }
  process.stdout.write(JSON.stringify(results) + '\n');
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
