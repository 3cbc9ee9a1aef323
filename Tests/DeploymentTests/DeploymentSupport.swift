import Foundation
import IdlewatcherTesting
import Testing

/// What the deployment tests use: the image from `make image`, the release binary behind
/// `make install`, and the shipped files under config/ and deploy/.
///
/// `make test` builds both first and sets `IDLEWATCHER_DEPLOYMENT_TESTS=1`: then these tests must
/// run and fail if anything is missing. A bare `swift test` skips them when there is no image or
/// release build, rather than building one (it holds SwiftPM's lock on .build, so a nested
/// `swift build -c release` would wait for ever).
enum Deployment {
    static let image = "idlewatcher-bridge:latest"
    /// The user the image runs as (scripts/build-image.sh, deploy/docker/Dockerfile).
    static let imageUser = "10001:10001"

    static var required: Bool { ProcessInfo.processInfo.environment["IDLEWATCHER_DEPLOYMENT_TESTS"] == "1" }

    static var releaseBinary: URL { repositoryRoot.appendingPathComponent(".build/release/idlewatcher-bridge") }

    static var imageExists: Bool {
        DockerFixture.ping() && (try? IdlewatcherTesting.run(["docker", "image", "inspect", image]))?.status == 0
    }

    static var releaseBuilt: Bool { FileManager.default.isExecutableFile(atPath: releaseBinary.path) }

    /// A file of the repository.
    static func file(_ relativePath: String) -> URL { repositoryRoot.appendingPathComponent(relativePath) }

    /// `make TARGET VAR=…` in the repository, as a person runs it. `release` is taken as done
    /// (`make -o release`): `make test` built it before `swift test`, which holds SwiftPM's lock.
    static func make(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try IdlewatcherTesting.run(["make", "--no-print-directory", "-C", repositoryRoot.path, "-o", "release"] + arguments)
    }

    /// The group that owns /var/run/docker.sock here: what `--group-add`, compose's DOCKER_GID
    /// and the host's `docker` group stand for.
    static func dockerSocketGroup() throws -> String {
        try IdlewatcherTesting.run(["stat", "-c", "%g", "/var/run/docker.sock"]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    /// Fails the test with the way to get the image when it is missing.
    static func requireImage() throws {
        guard imageExists else {
            throw TestSupportError("no \(image): run `make image` (make test does it before swift test)")
        }
    }

    static func requireReleaseBinary() throws {
        guard releaseBuilt else { throw TestSupportError("no release build at \(releaseBinary.path): run `make release`") }
    }
}

/// A mosquitto running config/mosquitto/mosquitto.conf and config/mosquitto/acl as shipped, with
/// a password file made by `mosquitto_passwd`. Only what cannot be the same on a test machine
/// differs: the listener (a free loopback port, from `MosquittoBroker`) and the paths of the
/// password file, the ACL copy and the persistence folder.
final class ShippedBroker: Sendable {
    let broker: MosquittoBroker
    /// User name → password, as in the password file.
    let passwords: [String: String]
    var port: Int { broker.port }

    init(users: [String]) async throws {
        let dir = try makeTemporaryDirectory("shipped-mosquitto")
        // mosquitto started as root runs as the `mosquitto` user: it must read and write here.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(
            at: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        let passwd = dir.appendingPathComponent("passwd")
        var passwords: [String: String] = [:]
        for (i, user) in users.enumerated() {
            let password = "pw-\(user)-\(UUID().uuidString.prefix(8))"
            passwords[user] = password
            let r = try IdlewatcherTesting.run(
                ["mosquitto_passwd"] + (i == 0 ? ["-c"] : []) + ["-b", passwd.path, user, password])
            if r.status != 0 { throw TestSupportError("mosquitto_passwd failed: \(r.output)") }
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: passwd.path)
        let acl = dir.appendingPathComponent("acl")
        try FileManager.default.copyItem(at: Deployment.file("config/mosquitto/acl"), to: acl)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: acl.path)

        let shipped = try String(contentsOf: Deployment.file("config/mosquitto/mosquitto.conf"), encoding: .utf8)
        var lines: [String] = []
        for line in shipped.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("listener ") { continue }
            lines.append(
                line.replacingOccurrences(of: "/etc/mosquitto/passwd", with: passwd.path)
                    .replacingOccurrences(of: "/etc/mosquitto/acl", with: acl.path)
                    .replacingOccurrences(of: "/mosquitto/data/", with: data.path + "/"))
        }
        self.passwords = passwords
        broker = try await MosquittoBroker(extraConfig: lines.joined(separator: "\n"))
    }

    /// A client logged in as `name` (nil: anonymous).
    func user(_ name: String?) -> MQTTUser {
        MQTTUser(port: port, name: name, password: name.flatMap { passwords[$0] })
    }
}

/// `mosquitto_pub`, `mosquitto_rr` and `mosquitto_sub` logged in as one user (or anonymous).
struct MQTTUser: Sendable, CustomStringConvertible {
    var port: Int
    var name: String?
    var password: String?
    var description: String { name ?? "anonymous" }

    var credentials: [String] {
        guard let name else { return [] }
        return ["-u", name, "-P", password ?? ""]
    }

    /// `mosquitto_pub`; returns its exit status and output.
    func publish(topic: String, payload: String, retain: Bool = false) throws -> (status: Int32, output: String) {
        var args = ["mosquitto_pub", "-p", "\(port)", "-q", "1", "-t", topic, "-m", payload]
        if retain { args.append("-r") }
        return try IdlewatcherTesting.run(args + credentials)
    }

    /// `mosquitto_rr`: sends `payload` with `responseTopic` as MQTT 5 Response Topic and returns
    /// the first reply.
    func request(topic: String, responseTopic: String, payload: String) throws -> String {
        let r = try IdlewatcherTesting.run(
            ["mosquitto_rr", "-p", "\(port)", "-t", topic, "-e", responseTopic, "-m", payload, "-W", "30"] + credentials)
        if r.status != 0 { throw TestSupportError("mosquitto_rr as \(self) failed (\(r.status)): \(r.output)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A `mosquitto_sub` logged in as one user of a `ShippedBroker`: what that user may see.
final class Subscriber: Sendable {
    struct Message: CustomStringConvertible {
        var topic: String
        var payload: String
        var retained: Bool
        var description: String { "\(retained ? "[r] " : "")\(topic) \(payload)" }
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] }
    }

    private let child: ChildProcess
    private let user: MQTTUser
    /// A topic this user may both publish and read, to see that the subscription is live.
    private let probeTopic: String

    init(_ user: MQTTUser, topics: [String], probeTopic: String) throws {
        self.user = user
        self.probeTopic = probeTopic
        var args = ["mosquitto_sub", "-p", "\(user.port)", "-V", "mqttv5", "-q", "1", "-F", "%r\t%t\t%x"] + user.credentials
        for t in topics + [probeTopic] { args += ["-t", t] }
        let dir = try makeTemporaryDirectory("subscriber")
        child = try ChildProcess(args, log: dir.appendingPathComponent("sub.log"))
    }

    /// Waits until the subscription is live: a probe published as the same user comes back.
    func ready() async throws {
        try await eventually(
            "\(user)'s subscription to be live; mosquitto_sub said: \(child.output.suffix(300))", timeout: .seconds(10)
        ) {
            _ = try user.publish(topic: probeTopic, payload: "probe")
            return self.messages.contains { $0.topic == probeTopic }
        }
    }

    var messages: [Message] {
        child.output.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count >= 3 else { return nil }
            return Message(topic: String(f[1]), payload: Self.unhex(f[2]), retained: f[0] == "1")
        }
    }

    /// Waits for a message on a topic matching `topic` (MQTT wildcards `+` allowed) and `match`.
    @discardableResult
    func waitFor(
        _ topic: String, timeout: Duration = .seconds(20), where match: @escaping (Message) -> Bool = { _ in true }
    ) async throws
        -> Message
    {
        try await eventually(
            "a message on \(topic) for \(user); saw:\n\(messages.suffix(15).map(\.description).joined(separator: "\n"))",
            timeout: timeout
        ) {
            self.messages.first { Self.matches(filter: topic, $0.topic) && match($0) }
        }
    }

    func stop() async { await child.terminate(signal: SIGKILL) }

    static func matches(filter: String, _ topic: String) -> Bool {
        let f = filter.split(separator: "/", omittingEmptySubsequences: false)
        let t = topic.split(separator: "/", omittingEmptySubsequences: false)
        for (i, part) in f.enumerated() {
            if part == "#" { return true }
            guard i < t.count, part == "+" || part == t[i] else { return false }
        }
        return f.count == t.count
    }

    static func unhex(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        var it = s.utf8.makeIterator()
        func v(_ c: UInt8) -> UInt8 { c >= 97 ? c - 87 : (c >= 65 ? c - 55 : c - 48) }
        while let a = it.next(), let b = it.next() { bytes.append(v(a) << 4 | v(b)) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
