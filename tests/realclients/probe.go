// Real-client probe for Go's crypto/tls (driven by tests/realclients/go.py).
//
// Reads a JSON array of probes on stdin:
//
//	[{"hostname": "...", "address": "127.0.0.1", "port": 443, "ca_file": "/path/root.pem"}, ...]
//
// and prints a JSON array of results on stdout, in the same order:
//
//	[{"accepted": true, "error": ""}, {"accepted": false, "error": "x509: ..."}, ...]
//
// Each probe dials address:port with tls.DialWithDialer, ServerName = hostname (crypto/tls sends no SNI
// when it is an IP address, and then verifies it against the IP SANs) and RootCAs = only the certificates
// in ca_file. The error is err.Error(), unmodified. The dialer timeout (10 s) bounds connect + handshake.
// Setup problems (bad input, unreadable ca_file) are not verdicts: they go to stderr with exit status 2.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

const probeTimeout = 10 * time.Second

type probe struct {
	Hostname string `json:"hostname"`
	Address  string `json:"address"`
	Port     int    `json:"port"`
	CAFile   string `json:"ca_file"`
}

type result struct {
	Accepted bool   `json:"accepted"`
	Error    string `json:"error"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "probe.go: "+format+"\n", args...)
	os.Exit(2)
}

func loadPool(path string, cache map[string]*x509.CertPool) *x509.CertPool {
	if pool, ok := cache[path]; ok {
		return pool
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		fail("cannot read ca_file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("no PEM certificates in ca_file %s", path)
	}
	cache[path] = pool
	return pool
}

func run(p probe, pool *x509.CertPool) result {
	dialer := &net.Dialer{Timeout: probeTimeout}
	config := &tls.Config{ServerName: p.Hostname, RootCAs: pool}
	addr := net.JoinHostPort(p.Address, strconv.Itoa(p.Port))
	conn, err := tls.DialWithDialer(dialer, "tcp", addr, config)
	if err != nil {
		return result{Accepted: false, Error: err.Error()}
	}
	conn.Close()
	return result{Accepted: true}
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("cannot read stdin: %v", err)
	}
	var probes []probe
	if err := json.Unmarshal(input, &probes); err != nil {
		fail("bad probe list on stdin: %v", err)
	}
	pools := map[string]*x509.CertPool{}
	results := make([]result, 0, len(probes))
	for _, p := range probes {
		results = append(results, run(p, loadPool(p.CAFile, pools)))
	}
	out, err := json.Marshal(results)
	if err != nil {
		fail("cannot encode results: %v", err)
	}
	os.Stdout.Write(append(out, '\n'))
}
