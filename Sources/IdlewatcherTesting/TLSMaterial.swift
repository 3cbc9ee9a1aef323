import Foundation

/// Certificates made with `openssl` at test time: a CA, certificates it signs (servers with
/// the host names given, clients), and a second CA that nobody trusts.
public final class TLSMaterial: Sendable {
    public let directory: URL

    /// A certificate and its key, as PEM files.
    public struct Pair: Sendable {
        public var certificate: String
        public var key: String
    }

    /// Makes a CA (`ca.pem`) in a fresh folder.
    public init() throws {
        directory = try makeTemporaryDirectory("tls")
        try openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=idlewatcher test CA",
            "-keyout", path("ca.key"), "-out", path("ca.pem"),
        ])
    }

    public func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    public var caFile: String { path("ca.pem") }

    /// A certificate signed by this CA for `hosts` (`DNS:localhost`, `IP:127.0.0.1`), or a client
    /// certificate (no host names, `clientAuth`). `ca: false` signs it by a CA nobody trusts.
    public func issue(_ name: String, hosts: [String] = [], client: Bool = false, trusted: Bool = true) throws -> Pair {
        var caPem = caFile
        var caKey = path("ca.key")
        if !trusted {
            caPem = path("rogue-ca.pem")
            caKey = path("rogue-ca.key")
            if !FileManager.default.fileExists(atPath: caPem) {
                try openssl([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=rogue CA", "-keyout", caKey,
                    "-out", caPem,
                ])
            }
        }
        let key = path("\(name).key")
        let csr = path("\(name).csr")
        let pem = path("\(name).pem")
        let ext = path("\(name).ext")
        var extensions = client ? "extendedKeyUsage=clientAuth\n" : "extendedKeyUsage=serverAuth\n"
        if !hosts.isEmpty { extensions += "subjectAltName=" + hosts.joined(separator: ",") + "\n" }
        try extensions.write(toFile: ext, atomically: true, encoding: .utf8)
        let cn = hosts.first.map { String($0.split(separator: ":").last ?? "") } ?? name
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(cn)", "-keyout", key, "-out", csr])
        try openssl([
            "x509", "-req", "-in", csr, "-CA", caPem, "-CAkey", caKey, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out",
            pem,
        ])
        // mosquitto, started as root, reads its files as the `mosquitto` user.
        for f in [key, pem, caPem] { try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: f) }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        return Pair(certificate: pem, key: key)
    }

    /// The rogue CA's certificate (issue something with `trusted: false` first).
    public var rogueCAFile: String { path("rogue-ca.pem") }

    private func openssl(_ args: [String]) throws {
        let (status, output) = try run(["openssl"] + args)
        if status != 0 { throw TestSupportError("openssl \(args.prefix(2).joined(separator: " ")) failed: \(output)") }
    }
}
