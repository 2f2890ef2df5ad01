@testable import DESPluginS3
import DESTestSupport
import Foundation
import Testing

/// Certificates made at test time with openssl: a CA, a server certificate for 127.0.0.1 and a
/// client certificate it signed, and a second CA with a client certificate of its own.
struct TestPKI {
    let dir: String

    init(in dir: String) throws {
        self.dir = dir
        let script = """
            set -e
            cd "$1"
            cat > ext.cnf <<'X'
            subjectAltName = IP:127.0.0.1, DNS:localhost
            X
            for ca in ca rogue; do
              openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key -out $ca.pem -days 2 -subj "/CN=DES test $ca" 2>/dev/null
            done
            openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf 2>/dev/null
            for who in client:ca intruder:rogue; do
              name=${who%%:*}; signer=${who##*:}
              openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr -subj "/CN=$name" 2>/dev/null
              openssl x509 -req -in $name.csr -CA $signer.pem -CAkey $signer.key -CAcreateserial -out $name.pem -days 2 2>/dev/null
            done
            """
        let (status, out) = try runTool("/bin/bash", ["-c", script, "pki", dir])
        guard status == 0 else { throw TestFailure("openssl could not make the test certificates: \(out)") }
    }

    /// `curl` (the command) against `url` with `arguments`; returns its exit status and what it printed.
    func curl(_ url: String, _ arguments: [String] = []) throws -> (Int32, String) {
        try runTool("/usr/bin/env", ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", dir + "/ca.pem"] + arguments + [url])
    }
}

@Suite("TLS for des serve")
struct TLSTests {
    @Test("server.tls: HTTPS with TLS 1.2 and 1.3, never 1.1 nor plain HTTP; with client_ca, no certificate or one of another CA is refused")
    func tls() async throws {
        let d = try SQLiteDeployment("tls", extra: "server: {tls: {certificate: pki/server.pem, key: pki/server.key}}")
        defer { d.cleanup() }
        try FileManager.default.createDirectory(atPath: d.dir + "/pki", withIntermediateDirectories: true)
        let pki = try TestPKI(in: d.dir + "/pki")
        #expect(try await runDES(["sample", "-c", d.config, "--files", "1"]).0 == 0)
        let (server, base) = try await startServe(config: d.config)
        defer { server.terminate() }
        let https = base.replacingOccurrences(of: "http://", with: "https://")
        #expect(try pki.curl(https + "/health/live") == (0, "200"))
        #expect(try pki.curl(https + "/health/live", ["--tlsv1.2", "--tls-max", "1.2"]) == (0, "200"))
        #expect(try pki.curl(https + "/health/live", ["--tlsv1.3"]) == (0, "200"))
        let old = try pki.curl(https + "/health/live", ["--tlsv1.1", "--tls-max", "1.1"])
        #expect(old.0 == 35 && old.1.contains("protocol version"), "TLS 1.1 was accepted: \(old)")
        let plain = try pki.curl(base + "/health/live")
        #expect(plain.0 != 0 && plain.1.hasSuffix("000"), "plain HTTP was answered: \(plain)")
        let untrusted = try runTool("/usr/bin/env", ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", https + "/health/live"])
        #expect(untrusted.0 != 0, "a client that does not trust the test CA connected")
        server.terminate()
        await waitForExit(server)

        // Mutual TLS: the same server, asking for client certificates of the test CA.
        var config = try String(contentsOfFile: d.config, encoding: .utf8)
        config = config.replacingOccurrences(of: "key: pki/server.key}", with: "key: pki/server.key, client_ca: pki/ca.pem}")
        try config.write(toFile: d.config, atomically: true, encoding: .utf8)
        let (mutual, mutualBase) = try await startServe(config: d.config)
        defer { mutual.terminate() }
        let mtls = mutualBase.replacingOccurrences(of: "http://", with: "https://")
        let anonymous = try pki.curl(mtls + "/health/live")
        #expect(anonymous.1 != "200", "a client without a certificate was answered: \(anonymous)")
        let intruder = try pki.curl(mtls + "/health/live", ["--cert", pki.dir + "/intruder.pem", "--key", pki.dir + "/intruder.key"])
        #expect(intruder.1 != "200", "a client certificate of another CA was accepted: \(intruder)")
        #expect(try pki.curl(mtls + "/health/live", ["--cert", pki.dir + "/client.pem", "--key", pki.dir + "/client.key"]) == (0, "200"))
    }

    @Test("A TLS key that is not the certificate's, or a file that is not there, is a configuration error naming server.tls (exit 65), before listening")
    func badFiles() async throws {
        let d = try SQLiteDeployment("tls-bad", extra: "server: {tls: {certificate: pki/server.pem, key: pki/client.key}}")
        defer { d.cleanup() }
        try FileManager.default.createDirectory(atPath: d.dir + "/pki", withIntermediateDirectories: true)
        _ = try TestPKI(in: d.dir + "/pki")
        let mismatched = try runTool(try desBinary(), ["serve", "-c", d.config, "--port", "0"])
        #expect(mismatched.0 == 65 && mismatched.1.contains("server.tls"), "\(mismatched)")
        var config = try String(contentsOfFile: d.config, encoding: .utf8)
        config = config.replacingOccurrences(of: "key: pki/client.key", with: "key: pki/missing.key")
        try config.write(toFile: d.config, atomically: true, encoding: .utf8)
        let missing = try runTool(try desBinary(), ["serve", "-c", d.config, "--port", "0"])
        #expect(missing.0 == 65 && missing.1.contains("server.tls.key: cannot read"), "\(missing)")
    }
}
