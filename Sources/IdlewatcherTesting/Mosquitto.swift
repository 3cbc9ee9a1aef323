import Foundation

/// A real mosquitto broker on a free loopback port, with a generated configuration.
public final class MosquittoBroker: @unchecked Sendable {
    // @unchecked: mutated only by start/stop, which tests call from one task at a time.
    public let port: Int
    public let directory: URL
    public let configURL: URL
    private var child: ChildProcess?

    /// - Parameters:
    ///   - extraConfig: more lines for mosquitto.conf (password_file, acl_file, TLS listener…).
    ///   - listener: the listener lines instead of a plain anonymous one on 127.0.0.1.
    ///     `{port}` in `listener` and `extraConfig` is replaced by the broker's port.
    ///   - persistent: keep sessions and retained messages across restarts (saved on every change).
    public init(extraConfig: String = "", listener: String? = nil, persistent: Bool = false) async throws {
        port = freePort()
        directory = try makeTemporaryDirectory("mosquitto")
        // mosquitto started as root runs as the `mosquitto` user: it must be able to write here.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory.path)
        configURL = directory.appendingPathComponent("mosquitto.conf")
        var conf = listener ?? "listener \(port) 127.0.0.1\nallow_anonymous true\n"
        if persistent {
            conf += "persistence true\npersistence_location \(directory.path)/\nautosave_interval 1\nautosave_on_changes true\n"
        } else {
            conf += "persistence false\n"
        }
        conf += extraConfig + "\n"
        conf = conf.replacingOccurrences(of: "{port}", with: "\(port)")
        try conf.write(to: configURL, atomically: true, encoding: .utf8)
        try await start()
    }

    public func start() async throws {
        child = try ChildProcess(
            ["mosquitto", "-c", configURL.path],
            log: directory.appendingPathComponent("mosquitto-\(UUID().uuidString.prefix(4)).log"))
        let port = self.port
        try await eventually("mosquitto listening on \(port)") { isListening(port: port) }
    }

    /// Stops the broker: SIGTERM (it saves its persistence file, as `systemctl restart` would),
    /// or SIGKILL when `crash`.
    public func stop(crash: Bool = false) async {
        await child?.terminate(signal: crash ? SIGKILL : SIGTERM)
        child = nil
    }

    /// SIGSTOP: the broker hangs. Its connections stay open and what clients send is accepted
    /// by the kernel, but nothing is read, acknowledged or passed on until it is killed.
    public func freeze() { child?.signal(SIGSTOP) }

    public var url: String { "mqtt://127.0.0.1:\(port)" }

    /// SIGHUP: mosquitto reads its password and ACL files again, keeping its clients.
    public func reload() { child?.signal(SIGHUP) }

    deinit { child?.signal(SIGKILL) }
}

/// One message as a subscriber saw it.
public struct ObservedMessage: Sendable, CustomStringConvertible {
    public var topic: String
    public var payload: String
    public var retained: Bool
    public var correlationData: String
    public var receivedAt: Double
    public var description: String { "\(retained ? "[r] " : "")\(topic) \(payload)" }

    /// The payload as a JSON object (nil if it is not one).
    public var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any]
    }

    public func string(_ key: String) -> String? { json?[key] as? String }
}

/// A `mosquitto_sub` process recording everything on some topics: what users would see.
public final class MQTTObserver: @unchecked Sendable {
    // @unchecked: only the immutable child and URL are stored; reads parse the log file.
    private let child: ChildProcess

    /// - Parameter sessionID: a client id for a persistent session (messages queued while away).
    public convenience init(broker: MosquittoBroker, topics: [String] = ["#"], v5: Bool = true, sessionID: String? = nil) throws {
        try self.init(port: broker.port, topics: topics, v5: v5, sessionID: sessionID)
    }

    /// An observer of any broker on 127.0.0.1:`port` (another implementation than mosquitto);
    /// `v5: false` speaks MQTT 3.1.1.
    public init(port: Int, topics: [String] = ["#"], v5: Bool = true, sessionID: String? = nil) throws {
        var args = ["mosquitto_sub", "-p", "\(port)", "-q", "1", "-F", "%r\t%t\t%x\t%D\t%U"]
        if let sessionID { args += ["-c", "-i", sessionID] }
        args += ["-V", v5 ? "mqttv5" : "mqttv311"]
        for t in topics { args += ["-t", t] }
        let dir = try makeTemporaryDirectory("observer")
        child = try ChildProcess(args, log: dir.appendingPathComponent("sub.log"))
    }

    /// Waits until the subscription is live on a broker at 127.0.0.1:`port`, spoken to with
    /// `connection` arguments of `mosquitto_pub` (`-V mqttv311`).
    public func ready(port: Int, connection: [String] = []) async throws {
        let probe = "iwtest/probe/\(UUID().uuidString.prefix(6))"
        try await eventually("the observer to subscribe", timeout: .seconds(10)) {
            try MQTT.publish(connection: ["-p", "\(port)"] + connection, topic: probe, payload: "x")
            return self.messages.contains { $0.topic == probe }
        }
    }

    /// Waits until the subscription is live (a probe message comes back).
    public func ready(broker: MosquittoBroker) async throws {
        let probe = "iwtest/probe/\(UUID().uuidString.prefix(6))"
        try await eventually("the observer to subscribe", timeout: .seconds(10)) {
            try MQTT.publish(broker: broker, topic: probe, payload: "x")
            return self.messages.contains { $0.topic == probe }
        }
    }

    public var messages: [ObservedMessage] {
        var out: [ObservedMessage] = []
        for line in child.output.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count >= 5 else { continue }
            out.append(
                ObservedMessage(
                    topic: String(f[1]), payload: Self.unhex(f[2]), retained: f[0] == "1", correlationData: String(f[3]),
                    receivedAt: Double(f[4]) ?? 0))
        }
        return out
    }

    public func messages(on topic: String) -> [ObservedMessage] { messages.filter { $0.topic == topic } }

    /// Waits for a message on `topic` matching `match`, and returns it.
    @discardableResult
    public func waitFor(
        _ topic: String, timeout: Duration = .seconds(15), where match: @escaping (ObservedMessage) -> Bool = { _ in true }
    ) async throws -> ObservedMessage {
        try await eventually(
            "a message on \(topic); saw:\n\(messages.suffix(15).map(\.description).joined(separator: "\n"))", timeout: timeout
        ) {
            self.messages(on: topic).first(where: match)
        }
    }

    public func stop() async { await child.terminate(signal: SIGKILL) }

    static func unhex(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.count / 2)
        var it = s.utf8.makeIterator()
        func v(_ c: UInt8) -> UInt8 { c >= 97 ? c - 87 : (c >= 65 ? c - 55 : c - 48) }
        while let a = it.next(), let b = it.next() { bytes.append(v(a) << 4 | v(b)) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Publishing as a user would, with mosquitto_pub and mosquitto_rr.
public enum MQTT {
    public static func publish(
        broker: MosquittoBroker, topic: String, payload: String, retain: Bool = false, extra: [String] = []
    ) throws {
        var args = ["mosquitto_pub", "-p", "\(broker.port)", "-q", "1", "-t", topic]
        if retain { args.append("-r") }
        args += extra
        args += payload.isEmpty ? ["-n"] : ["-m", payload]
        let (status, output) = try run(args)
        if status != 0 { throw TestSupportError("mosquitto_pub failed: \(output)") }
    }

    /// What a subscriber arriving now finds retained on `filter`: every retained message, or an
    /// empty array when there is none. Throws when the subscriber could not tell.
    ///
    /// `mosquitto_sub -W 1` prints nothing both for "nothing retained" and for a subscriber
    /// that never connected or subscribed; this read answers "none" only after the broker
    /// accepted the connection (CONNACK 0) and granted the subscription (SUBACK with QoS 0–2).
    /// The broker sends a subscription's retained messages right behind its SUBACK, so they
    /// have all arrived once a non-retained marker, published after the SUBACK on a topic of
    /// the same SUBSCRIBE, comes back (`--retained-only` exits on the first non-retained
    /// message). Where the marker cannot be published (an ACL), the read ends at `wait`,
    /// which is just as sure, only slower. A subscription the broker grants but an ACL filters
    /// (mosquitto 2.0 grants those) reads as none, as it would for any subscriber: read as a
    /// user allowed to read the topic.
    /// - Parameter connection: how `mosquitto_sub`/`mosquitto_pub` reach the broker (`-p`, TLS, login).
    public static func retained(
        filter: String, connection: [String], wait: Duration = .seconds(5)
    ) async throws -> [ObservedMessage] {
        let marker = "iwtest/retained-probe/\(UUID().uuidString.prefix(8))"
        let seconds = max(1, Int(wait.components.seconds))
        let dir = try makeTemporaryDirectory("retained")
        defer { try? FileManager.default.removeItem(at: dir) }
        // stdbuf: mosquitto_sub's debug lines (CONNACK, SUBACK) would otherwise sit in its
        // stdio buffer until it exits, and the marker could only follow the -W timeout.
        let sub = try ChildProcess(
            ["stdbuf", "-oL", "mosquitto_sub"] + connection + [
                "-t", filter, "-t", marker, "-q", "1", "-d", "--retained-only", "-W", "\(seconds)", "-F",
                "retained-message\t%r\t%t\t%x",
            ], log: dir.appendingPathComponent("sub.log"))
        func failure(_ what: String) -> TestSupportError {
            TestSupportError("cannot read the retained messages of \(filter): \(what); mosquitto_sub said:\n\(sub.output)")
        }
        // The SUBACK, or the end of a subscriber that never got one.
        let granted = try await eventually("mosquitto_sub to subscribe to \(filter)", timeout: wait + .seconds(5)) {
            () -> [Int]? in
            if let line = sub.output.split(separator: "\n").first(where: { $0.hasPrefix("Subscribed (mid: ") }) {
                return line.split(separator: ":").last?.split(separator: ",").compactMap {
                    Int($0.trimmingCharacters(in: .whitespaces))
                } ?? []
            }
            if !sub.isRunning { throw failure("it ended without a SUBACK (exit \(sub.terminationStatus ?? -1))") }
            return nil
        }
        guard sub.output.contains("received CONNACK (0)") else { throw failure("the broker did not accept the connection") }
        guard let qos = granted.first, (0...2).contains(qos) else {
            throw failure("the subscription was refused (granted \(granted))")
        }
        if granted.count == 2, (0...2).contains(granted[1]) {
            try? publish(connection: connection, topic: marker, payload: "marker")
        }
        let exit = try await eventually("mosquitto_sub to finish reading \(filter)", timeout: wait + .seconds(5)) {
            sub.terminationStatus
        }
        // 0: the marker (or another live message) arrived after the retained ones; 27: -W timed out.
        guard exit == 0 || exit == 27 else { throw failure("it failed (exit \(exit))") }
        var out: [ObservedMessage] = []
        for line in sub.output.split(separator: "\n") where line.hasPrefix("retained-message\t") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 4 else { throw failure("unreadable line '\(line)'") }
            out.append(
                ObservedMessage(
                    topic: String(f[2]), payload: MQTTObserver.unhex(f[3]), retained: f[1] == "1", correlationData: "",
                    receivedAt: 0))
        }
        return out
    }

    /// The retained message of one topic (no wildcards), nil when the broker has none; throws
    /// when the subscriber could not tell (see ``retained(filter:connection:wait:)``).
    public static func retained(broker: MosquittoBroker, topic: String) async throws -> ObservedMessage? {
        precondition(!topic.contains("+") && !topic.contains("#"), "one topic, not a filter: \(topic)")
        let all = try await retained(filter: topic, connection: ["-p", "\(broker.port)"])
        guard all.count <= 1 else { throw TestSupportError("\(all.count) retained messages on one topic \(topic): \(all)") }
        return all.first
    }

    /// `mosquitto_pub` with the given connection arguments (a TLS broker, a login).
    public static func publish(connection: [String], topic: String, payload: String, retain: Bool = false) throws {
        var args = ["mosquitto_pub"] + connection + ["-q", "1", "-t", topic]
        if retain { args.append("-r") }
        args += payload.isEmpty ? ["-n"] : ["-m", payload]
        let (status, output) = try run(args)
        if status != 0 { throw TestSupportError("mosquitto_pub failed: \(output)") }
    }

    /// `mosquitto_rr`: publishes with a Response Topic and prints the first reply.
    public static func request(
        broker: MosquittoBroker, topic: String, responseTopic: String, payload: String, timeout: Int = 20
    ) throws -> String {
        let (status, output) = try run([
            "mosquitto_rr", "-p", "\(broker.port)", "-t", topic, "-e", responseTopic, "-m", payload, "-W", "\(timeout)",
        ])
        if status != 0 { throw TestSupportError("mosquitto_rr failed (\(status)): \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
