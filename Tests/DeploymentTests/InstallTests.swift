import Foundation
import IdlewatcherTesting
import Testing

/// `make install` and `make uninstall` into a DESTDIR, and the installed systemd unit as
/// `systemd-analyze` sees it on the installed tree.
@Suite(
    "make install",
    .serialized,
    .enabled(if: Deployment.required || Deployment.releaseBuilt, "no release build: `make release` (make test builds it)"))
struct InstallTests {
    let fm = FileManager.default

    /// Every regular file and symlink under `root`, as paths relative to it.
    func files(under root: URL) -> [String] {
        let base = root.resolvingSymlinksInPath().path
        var out: [String] = []
        let e = fm.enumerator(atPath: base)
        while let p = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: base + "/" + p, isDirectory: &isDir), !isDir.boolValue { out.append(p) }
        }
        return out.sorted()
    }

    func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    func install(_ dest: URL, _ extra: [String] = []) throws {
        let r = try Deployment.make(["install", "DESTDIR=\(dest.path)"] + extra)
        #expect(r.status == 0, "make install: \(r.output)")
    }

    @Test("install lays out the binary, the example configuration, the unit and the user; uninstall removes them all")
    func installAndUninstall() throws {
        try Deployment.requireReleaseBinary()
        let dest = try makeTemporaryDirectory("destdir")
        defer { try? fm.removeItem(at: dest) }
        try install(dest)

        #expect(
            files(under: dest) == [
                "etc/idlewatcher-bridge/config.yaml",
                "usr/local/bin/idlewatcher-bridge",
                "usr/local/lib/systemd/system/idlewatcher-bridge.service",
                "usr/local/lib/sysusers.d/idlewatcher-bridge.conf",
            ])
        let bin = dest.appendingPathComponent("usr/local/bin/idlewatcher-bridge")
        #expect(fm.contentsEqual(atPath: bin.path, andPath: Deployment.releaseBinary.path), "the release build is installed")
        let version = try IdlewatcherTesting.run([bin.path, "--version"])
        #expect(version.status == 0, "\(version.output)")
        #expect(
            try text(dest.appendingPathComponent("etc/idlewatcher-bridge/config.yaml"))
                == text(Deployment.file("config/idlewatcher-bridge.yaml")))
        let credentials = try fm.attributesOfItem(atPath: dest.appendingPathComponent("etc/idlewatcher-bridge/credentials").path)
        #expect((credentials[.posixPermissions] as? NSNumber)?.intValue == 0o700, "the credentials folder is root's alone")
        #expect(
            try text(dest.appendingPathComponent("usr/local/lib/systemd/system/idlewatcher-bridge.service"))
                == text(Deployment.file("deploy/systemd/idlewatcher-bridge.service")))

        // The sysusers.d entry makes the user the unit runs as, in the docker group.
        let etc = dest.appendingPathComponent("etc")
        for f in ["passwd", "group", "shadow", "gshadow"] {
            _ = fm.createFile(atPath: etc.appendingPathComponent(f).path, contents: nil)
        }
        let sysusers = try IdlewatcherTesting.run(["systemd-sysusers", "--root=\(dest.path)", "idlewatcher-bridge.conf"])
        #expect(sysusers.status == 0, "\(sysusers.output)")
        #expect(try text(etc.appendingPathComponent("passwd")).hasPrefix("idlewatcher:x:"))
        #expect(
            try text(etc.appendingPathComponent("group")).contains("docker:x:")
                && text(etc.appendingPathComponent("group")).contains(":idlewatcher\n"))
        for f in try fm.contentsOfDirectory(atPath: etc.path) where f != "idlewatcher-bridge" {
            try fm.removeItem(at: etc.appendingPathComponent(f))
        }

        let r = try Deployment.make(["uninstall", "DESTDIR=\(dest.path)"])
        #expect(r.status == 0, "make uninstall: \(r.output)")
        #expect(files(under: dest) == [], "uninstall leaves nothing of an unchanged install")
        #expect(!fm.fileExists(atPath: dest.appendingPathComponent("etc/idlewatcher-bridge").path))
    }

    @Test("install never overwrites a configuration; uninstall keeps a changed one and any credentials")
    func keepsConfiguration() throws {
        try Deployment.requireReleaseBinary()
        let dest = try makeTemporaryDirectory("destdir")
        defer { try? fm.removeItem(at: dest) }
        try install(dest)
        let config = dest.appendingPathComponent("etc/idlewatcher-bridge/config.yaml")
        let mine = "# my bridge\n" + (try text(config))
        try mine.write(to: config, atomically: true, encoding: .utf8)
        let secret = dest.appendingPathComponent("etc/idlewatcher-bridge/credentials/mqtt-password")
        try "s3cret\n".write(to: secret, atomically: true, encoding: .utf8)

        try install(dest)
        #expect(try text(config) == mine, "a second install (an upgrade) keeps the configuration")

        let r = try Deployment.make(["uninstall", "DESTDIR=\(dest.path)"])
        #expect(r.status == 0, "\(r.output)")
        #expect(files(under: dest) == ["etc/idlewatcher-bridge/config.yaml", "etc/idlewatcher-bridge/credentials/mqtt-password"])
        #expect(r.output.contains("kept"), "uninstall says what it kept: \(r.output)")
    }

    /// The host's own units (sysinit.target, …) under `root`, as on the system it is meant for;
    /// `systemd-analyze verify --root` resolves the unit's dependencies and ExecStart there.
    func addSystemUnits(to root: URL) throws {
        let dir = root.appendingPathComponent("usr/lib/systemd")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let r = try IdlewatcherTesting.run(["cp", "-a", "/usr/lib/systemd/system", dir.path + "/"])
        #expect(r.status == 0, "\(r.output)")
    }

    func verify(_ root: URL) throws -> (status: Int32, output: String) {
        try IdlewatcherTesting.run(["systemd-analyze", "verify", "--man=no", "--root=\(root.path)", "idlewatcher-bridge.service"])
    }

    @Test("systemd-analyze verify accepts the installed unit without a warning, and only with its binary installed")
    func systemdVerify() throws {
        try Deployment.requireReleaseBinary()
        let dest = try makeTemporaryDirectory("destdir")
        defer { try? fm.removeItem(at: dest) }
        try install(dest)
        try addSystemUnits(to: dest)

        let ok = try verify(dest)
        #expect(ok.status == 0 && ok.output.isEmpty, "systemd-analyze verify: \(ok.output)")

        // Hardened: systemd's own exposure score (0 best … 10 worst) stays "OK" or better.
        let security = try IdlewatcherTesting.run([
            "systemd-analyze", "security", "--offline=true", "--root=\(dest.path)", "--no-pager", "idlewatcher-bridge.service",
        ])
        let score = security.output.split(separator: "\n").last { $0.contains("Overall exposure level") }
            .flatMap { $0.split(separator: ":").last?.split(separator: " ").first }.flatMap { Double($0) }
        #expect(score != nil && score! <= 2.0, "systemd-analyze security: \(security.output.suffix(1500))")

        // The check is real: without the binary the same unit fails.
        try fm.removeItem(at: dest.appendingPathComponent("usr/local/bin/idlewatcher-bridge"))
        let missing = try verify(dest)
        #expect(missing.status != 0 && missing.output.contains("/usr/local/bin/idlewatcher-bridge"), "\(missing.output)")
    }

    @Test("PREFIX and SYSCONFDIR are honoured: the unit names the installed binary, configuration and credentials")
    func prefixes() throws {
        try Deployment.requireReleaseBinary()
        let dest = try makeTemporaryDirectory("destdir")
        defer { try? fm.removeItem(at: dest) }
        try install(dest, ["PREFIX=/usr", "SYSCONFDIR=/srv/conf"])
        #expect(
            files(under: dest) == [
                "srv/conf/idlewatcher-bridge/config.yaml",
                "usr/bin/idlewatcher-bridge",
                "usr/lib/systemd/system/idlewatcher-bridge.service",
                "usr/lib/sysusers.d/idlewatcher-bridge.conf",
            ])
        let unit = try text(dest.appendingPathComponent("usr/lib/systemd/system/idlewatcher-bridge.service"))
        #expect(unit.contains("\nExecStart=/usr/bin/idlewatcher-bridge --config /srv/conf/idlewatcher-bridge/config.yaml\n"))
        #expect(unit.contains("\nLoadCredential=mqtt-password:/srv/conf/idlewatcher-bridge/credentials/mqtt-password\n"))
        let directives = unit.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n")
        #expect(!directives.contains("/usr/local/") && !directives.contains("/etc/idlewatcher-bridge"), "\(directives)")
        try addSystemUnits(to: dest)
        let ok = try verify(dest)
        #expect(ok.status == 0 && ok.output.isEmpty, "systemd-analyze verify: \(ok.output)")
    }
}
