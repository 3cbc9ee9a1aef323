import Foundation
import IdlewatcherTesting
import Testing

/// config/mosquitto/mosquitto.conf does what its comments say when a person follows them.
@Suite("Shipped mosquitto.conf")
struct ShippedMosquittoConfTests {
    /// The shipped file with its TLS lines uncommented as the file says (and `listener 1883`
    /// commented out), the certificate paths pointing at `tls`'s files, the port free, and
    /// the password file, ACL and persistence folder in `dir`.
    static func tlsVariant(tls: TLSMaterial, server: TLSMaterial.Pair, dir: URL, requireCertificate: Bool) throws -> String {
        let shipped = try String(contentsOf: Deployment.file("config/mosquitto/mosquitto.conf"), encoding: .utf8)
        let settings = ["listener 8883", "certfile ", "keyfile ", "cafile ", "require_certificate "]
        var lines: [String] = []
        for raw in shipped.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = String(raw)
            if line == "listener 1883" { line = "# listener 1883" }
            if line.hasPrefix("# "), settings.contains(where: { line.dropFirst(2).hasPrefix($0) }) { line.removeFirst(2) }
            if requireCertificate, line == "require_certificate false" { line = "require_certificate true" }
            lines.append(
                line.replacingOccurrences(of: "listener 8883", with: "listener {port}")
                    .replacingOccurrences(of: "/etc/mosquitto/certs/broker.pem", with: server.certificate)
                    .replacingOccurrences(of: "/etc/mosquitto/certs/broker.key", with: server.key)
                    .replacingOccurrences(of: "/etc/mosquitto/certs/ca.pem", with: tls.caFile)
                    .replacingOccurrences(of: "/etc/mosquitto/passwd", with: dir.appendingPathComponent("passwd").path)
                    .replacingOccurrences(of: "/etc/mosquitto/acl", with: dir.appendingPathComponent("acl").path)
                    .replacingOccurrences(of: "/mosquitto/data/", with: dir.appendingPathComponent("data").path + "/"))
        }
        return lines.joined(separator: "\n")
    }

    @Test(
        "uncommenting the TLS lines as the file says gives a working TLS listener, with client certificates required once require_certificate is true"
    )
    func tlsLinesWorkUncommented() async throws {
        let tls = try TLSMaterial()
        let server = try tls.issue("broker", hosts: ["DNS:localhost", "IP:127.0.0.1"])
        let client = try tls.issue("homeassistant", client: true)
        let dir = try makeTemporaryDirectory("shipped-tls")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("data"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        let passwd = dir.appendingPathComponent("passwd").path
        let r = try run(["mosquitto_passwd", "-c", "-b", passwd, "homeassistant", "pw"])
        #expect(r.status == 0, "\(r.output)")
        try FileManager.default.copyItem(
            atPath: Deployment.file("config/mosquitto/acl").path, toPath: dir.appendingPathComponent("acl").path)
        for f in [passwd, dir.appendingPathComponent("acl").path, tls.caFile, server.certificate, server.key] {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: f)
        }
        for requireCertificate in [false, true] {
            let conf = try Self.tlsVariant(tls: tls, server: server, dir: dir, requireCertificate: requireCertificate)
            #expect(conf.contains("\ncafile \(tls.caFile)\n"), "the cafile line, uncommented, is a path and nothing else")
            let broker = try await MosquittoBroker(extraConfig: conf, listener: "")
            func publish(_ extra: [String]) throws -> (status: Int32, output: String) {
                try run(
                    [
                        "mosquitto_pub", "-h", "localhost", "-p", "\(broker.port)", "--cafile", tls.caFile, "-u", "homeassistant",
                        "-P", "pw", "-q", "1",
                        "-t", "idlewatcher/docker/x/command", "-m", "status",
                    ] + extra)
            }
            let withCertificate = try publish(["--cert", client.certificate, "--key", client.key])
            #expect(withCertificate.status == 0, "require_certificate \(requireCertificate): \(withCertificate.output)")
            let without = try publish([])
            if requireCertificate {
                #expect(without.status != 0, "a client without a certificate got in")
            } else {
                #expect(without.status == 0, "\(without.output)")
            }
            await broker.stop()
        }
    }

    @Test("the shipped file turns Nagle off: set_tcp_nodelay true is a setting, not a comment")
    func tcpNoDelay() throws {
        // (The test above starts mosquitto on this file: it accepts the setting.)
        let shipped = try String(contentsOf: Deployment.file("config/mosquitto/mosquitto.conf"), encoding: .utf8)
        #expect(shipped.split(separator: "\n").contains("set_tcp_nodelay true"))
    }

    @Test(
        "without the password file and the ACL it names, mosquitto refuses to start on the shipped file (docs/home-assistant.md says to create them first)"
    )
    func refusesWithoutPasswordFile() throws {
        let dir = try makeTemporaryDirectory("shipped-nofiles")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let shipped = try String(contentsOf: Deployment.file("config/mosquitto/mosquitto.conf"), encoding: .utf8)
        let conf = shipped.replacingOccurrences(of: "listener 1883", with: "listener \(freePort()) 127.0.0.1")
            .replacingOccurrences(of: "/mosquitto/data/", with: dir.path + "/")
            .replacingOccurrences(of: "/etc/mosquitto/", with: dir.path + "/")
        let file = dir.appendingPathComponent("mosquitto.conf")
        try conf.write(to: file, atomically: true, encoding: .utf8)
        let r = try run(["timeout", "10", "mosquitto", "-c", file.path])
        #expect(r.status != 0 && r.status != 124, "mosquitto started (or hung): \(r.output)")
        #expect(r.output.contains("Error: Unable to open pwfile \"\(dir.path)/passwd\"."), "\(r.output)")
    }
}
