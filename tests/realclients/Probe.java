// Real-client probe for Java's JSSE (driven by tests/realclients/java.py), run as `java Probe.java`.
//
// Reads a JSON array of probes on stdin:
//   [{"hostname": "...", "address": "127.0.0.1", "port": 443, "ca_file": "/path/root.pem"}, ...]
// and prints a JSON array of results on stdout, in the same order:
//   [{"accepted": true, "error": ""}, {"accepted": false, "error": "javax.net.ssl.SSLHandshakeException: ..."}, ...]
//
// Each probe: an empty PKCS12 KeyStore holding only the ca_file certificates as trusted entries, a PKIX
// TrustManagerFactory and an SSLContext "TLS"; a plain Socket to address:port (connect and read timeouts
// 10 s), layered with createSocket(socket, hostname, port, true); endpoint identification "HTTPS" and SNI =
// hostname unless it is an IP address (JSSE checks IP hostnames against IP SANs) or ends with a dot (an
// absolute name: new SNIHostName("name.") throws, while the JDK's own SNI from createSocket's host strips the
// dot, as HttpsURLConnection and HttpClient get it); then startHandshake().
// The error is the exception's toString() followed by each cause as "Caused by: <cause>", joined with " | ".
// Default JVM security settings otherwise (no AIA fetching, no revocation checking).
// Setup problems (bad input, unreadable ca_file) go to stderr with exit status 2.

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;

public class Probe {
    static final int TIMEOUT_MS = 10_000;
    static final Pattern IPV4 = Pattern.compile("^\\d{1,3}(\\.\\d{1,3}){3}$");

    public static void main(String[] args) throws IOException {
        String input = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        List<Object> probes;
        try {
            probes = asList(new Json(input).parseDocument());
        } catch (IllegalArgumentException e) {
            fail("bad probe list on stdin: " + e.getMessage());
            return;
        }
        Map<String, SSLSocketFactory> factories = new HashMap<>();
        StringBuilder out = new StringBuilder("[");
        for (int i = 0; i < probes.size(); i++) {
            Map<String, Object> p = asMap(probes.get(i));
            String hostname = (String) p.get("hostname");
            String address = (String) p.get("address");
            int port = ((Number) p.get("port")).intValue();
            String caFile = (String) p.get("ca_file");
            SSLSocketFactory factory = factories.computeIfAbsent(caFile, Probe::factoryFor);
            String error = probe(factory, hostname, address, port);
            if (i > 0) out.append(",");
            out.append("{\"accepted\":").append(error == null).append(",\"error\":");
            out.append(quote(error == null ? "" : error)).append("}");
        }
        out.append("]\n");
        System.out.write(out.toString().getBytes(StandardCharsets.US_ASCII));  // quote() emits ASCII only
        System.out.flush();
    }

    static SSLSocketFactory factoryFor(String caFile) {
        try (InputStream in = new FileInputStream(caFile)) {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            int n = 0;
            for (Certificate cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                store.setCertificateEntry("ca-" + n++, cert);
            }
            if (n == 0) fail("no certificates in ca_file " + caFile);
            TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
            tmf.init(store);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, tmf.getTrustManagers(), null);
            return context.getSocketFactory();
        } catch (Exception e) {
            fail("cannot load ca_file " + caFile + ": " + describe(e));
            return null;
        }
    }

    /** Null when the handshake and verification succeed, else the exception chain as Java prints it. */
    static String probe(SSLSocketFactory factory, String hostname, String address, int port) {
        Socket plain = new Socket();
        SSLSocket socket = null;
        try {
            plain.connect(new InetSocketAddress(address, port), TIMEOUT_MS);
            plain.setSoTimeout(TIMEOUT_MS);
            socket = (SSLSocket) factory.createSocket(plain, hostname, port, true);
            SSLParameters params = socket.getSSLParameters();
            params.setEndpointIdentificationAlgorithm("HTTPS");
            if (!isIp(hostname) && !hostname.endsWith(".")) {
                params.setServerNames(List.of(new SNIHostName(hostname)));
            }
            socket.setSSLParameters(params);
            socket.startHandshake();
            return null;
        } catch (Throwable e) {  // also Errors (e.g. on a hostile chain): one probe must not sink the batch
            return describe(e);
        } finally {
            closeQuietly(socket);
            closeQuietly(plain);
        }
    }

    static void closeQuietly(Socket socket) {
        if (socket == null) return;
        try {
            socket.close();
        } catch (IOException ignored) {
            // the verdict is already decided; a failing close does not change it
        }
    }

    static boolean isIp(String hostname) {
        return IPV4.matcher(hostname).matches() || hostname.contains(":");
    }

    static String describe(Throwable e) {
        StringBuilder text = new StringBuilder(e.toString());
        List<Throwable> seen = new ArrayList<>(List.of(e));
        for (Throwable cause = e.getCause(); cause != null && !seen.contains(cause); cause = cause.getCause()) {
            seen.add(cause);
            text.append(" | Caused by: ").append(cause);
        }
        return text.toString();
    }

    static void fail(String message) {
        System.err.println("Probe.java: " + message);
        System.exit(2);
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || c > 0x7e) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> asMap(Object o) {
        if (!(o instanceof Map)) fail("bad probe list on stdin: probe is not an object");
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    static List<Object> asList(Object o) {
        if (!(o instanceof List)) throw new IllegalArgumentException("not an array");
        return (List<Object>) o;
    }

    /** Just enough JSON: objects, arrays, strings, numbers, true/false/null. */
    static final class Json {
        private final String s;
        private int i;

        Json(String s) {
            this.s = s;
        }

        Object parseDocument() {
            Object value = value();
            space();
            if (i != s.length()) throw error("trailing data");
            return value;
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException(what + " at offset " + i);
        }

        private void space() {
            while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        }

        private char peek() {
            if (i >= s.length()) throw error("unexpected end");
            return s.charAt(i);
        }

        private void expect(char c) {
            if (peek() != c) throw error("expected '" + c + "'");
            i++;
        }

        private Object value() {
            space();
            char c = peek();
            if (c == '{') return object();
            if (c == '[') return array();
            if (c == '"') return string();
            if (s.startsWith("true", i)) { i += 4; return Boolean.TRUE; }
            if (s.startsWith("false", i)) { i += 5; return Boolean.FALSE; }
            if (s.startsWith("null", i)) { i += 4; return null; }
            return number();
        }

        private Map<String, Object> object() {
            Map<String, Object> map = new LinkedHashMap<>();
            expect('{');
            space();
            if (peek() == '}') { i++; return map; }
            while (true) {
                space();
                String key = string();
                space();
                expect(':');
                map.put(key, value());
                space();
                if (peek() == ',') { i++; continue; }
                expect('}');
                return map;
            }
        }

        private List<Object> array() {
            List<Object> list = new ArrayList<>();
            expect('[');
            space();
            if (peek() == ']') { i++; return list; }
            while (true) {
                list.add(value());
                space();
                if (peek() == ',') { i++; continue; }
                expect(']');
                return list;
            }
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (true) {
                char c = peek();
                i++;
                if (c == '"') return b.toString();
                if (c != '\\') { b.append(c); continue; }
                char e = peek();
                i++;
                switch (e) {
                    case '"', '\\', '/' -> b.append(e);
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'n' -> b.append('\n');
                    case 'r' -> b.append('\r');
                    case 't' -> b.append('\t');
                    case 'u' -> {
                        if (i + 4 > s.length()) throw error("bad \\u escape");
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> throw error("bad escape");
                }
            }
        }

        private Number number() {
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            if (start == i) throw error("unexpected character");
            String text = s.substring(start, i);
            try {
                return text.matches("-?\\d+") ? (Number) Long.parseLong(text) : (Number) Double.parseDouble(text);
            } catch (NumberFormatException e) {
                throw error("bad number");
            }
        }
    }
}
