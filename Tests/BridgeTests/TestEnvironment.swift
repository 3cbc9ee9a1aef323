import Foundation
import IdlewatcherTesting
import Testing

/// A real broker, the real Docker engine, a subscriber recording everything, and a bridge
/// process: what each end-to-end test starts from. Everything is torn down afterwards.
final class TestEnvironment: @unchecked Sendable {
    // @unchecked: used by one test task at a time.
    let broker: MosquittoBroker
    let docker: DockerFixture
    let observer: MQTTObserver
    var bridge: BridgeProcess?
    let bridgeID: String
    /// The protocol the bridge speaks (`mqtt.protocol`); the observer always speaks MQTT 5.
    let mqttVersion: MQTTVersion

    init(
        bridgeID: String = "t\(UUID().uuidString.prefix(6).lowercased())", persistentBroker: Bool = false, mqtt: MQTTVersion = .v5
    ) async throws {
        self.bridgeID = bridgeID
        mqttVersion = mqtt
        broker = try await MosquittoBroker(persistent: persistentBroker)
        docker = try await DockerFixture()
        observer = try MQTTObserver(broker: broker, sessionID: persistentBroker ? "observer-\(bridgeID)" : nil)
        try await observer.ready(broker: broker)
    }

    /// Starts the bridge and waits until it says `online`.
    @discardableResult
    func startBridge(
        dockerExtra: String = "", extra: String = "", mqttExtra: String = "", environment: [String: String]? = nil
    ) async throws -> BridgeProcess {
        let yaml = BridgeProcess.dockerConfig(
            bridgeID: bridgeID, broker: broker, mqttVersion: mqttVersion, dockerExtra: dockerExtra, extra: extra,
            mqttExtra: mqttExtra)
        let b = try BridgeProcess(yaml: yaml, bridgeID: bridgeID, environment: environment)
        bridge = b
        let onlineCount = liveOnlineCount()
        try await eventually("the bridge to publish online; log:\n\(b.log)", timeout: .seconds(20)) {
            self.liveOnlineCount() > onlineCount
        }
        return b
    }

    var stateTopic: String { "idlewatcher/bridge/\(bridgeID)/state" }

    /// How many times the observer has seen the bridge say `online` live: not counting a
    /// retained `online` replayed when the observer subscribes again (after a broker restart
    /// it may be one a bridge left before it lost the broker).
    func liveOnlineCount() -> Int {
        observer.messages(on: stateTopic).filter { $0.payload == "online" && !$0.retained }.count
    }
    func topic(_ id: String, _ leaf: String) -> String { "idlewatcher/docker/\(id)/\(leaf)" }

    /// Publishes a command as `mosquitto_pub` would.
    func send(_ id: String, _ payload: String, retain: Bool = false, extra: [String] = []) throws {
        try MQTT.publish(broker: broker, topic: topic(id, "command"), payload: payload, retain: retain, extra: extra)
    }

    /// Sends a JSON command with a fresh request id and waits for its reply.
    func command(_ id: String, _ json: [String: Any], timeout: Duration = .seconds(30)) async throws -> ObservedMessage {
        var body = json
        let rid = body["request_id"] as? String ?? "req-\(UUID().uuidString.prefix(8))"
        body["request_id"] = rid
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        try send(id, String(decoding: data, as: UTF8.self))
        return try await observer.waitFor(topic(id, "reply"), timeout: timeout) { $0.string("request_id") == rid }
    }

    /// The `status` a subscriber arriving now gets retained for `id` (a fresh subscriber), nil
    /// when the broker retains none. Throws when the subscriber could not tell, or when what is
    /// retained is not status JSON: "nothing retained" is never a failed read.
    func retainedStatus(_ id: String) async throws -> String? {
        guard let m = try await MQTT.retained(broker: broker, topic: topic(id, "status")) else { return nil }
        guard m.retained, let status = m.string("status") else {
            throw TestSupportError("retained status of \(id) is not status JSON: \(m)")
        }
        return status
    }

    /// What a subscriber arriving now gets retained on this bridge's state topic (`online`,
    /// `offline`), nil when none; throws when it could not tell.
    func retainedState() async throws -> String? {
        try await MQTT.retained(broker: broker, topic: stateTopic)?.payload
    }

    /// Waits until the last retained status a subscriber saw for `id` is `status`.
    func waitForStatus(_ id: String, _ status: String, timeout: Duration = .seconds(20)) async throws {
        try await eventually(
            "status \(status) for \(id); saw \(observer.messages(on: topic(id, "status")).map(\.payload))", timeout: timeout
        ) {
            self.observer.messages(on: self.topic(id, "status")).last?.string("status") == status
        }
    }

    /// The actions of the events seen for `id`, in order.
    func eventActions(_ id: String) -> [String] {
        observer.messages(on: topic(id, "event")).compactMap { $0.string("action") }
    }

    func tearDown() async {
        if let bridge { await bridge.stop() }
        await observer.stop()
        docker.cleanUp()
        await broker.stop()
    }
}

/// Runs `body` in a fresh environment and always tears it down.
func withEnvironment(
    bridgeID: String? = nil, persistentBroker: Bool = false, mqtt: MQTTVersion = .v5,
    _ body: (TestEnvironment) async throws -> Void
) async throws {
    let env = try await TestEnvironment(
        bridgeID: bridgeID ?? "t\(UUID().uuidString.prefix(6).lowercased())", persistentBroker: persistentBroker, mqtt: mqtt)
    do {
        try await body(env)
    } catch {
        if let b = env.bridge { print("--- bridge log ---\n\(b.log.suffix(6000))") }
        await env.tearDown()
        throw error
    }
    await env.tearDown()
}

extension TestEnvironment {
    /// The events a subscriber saw for `id` as Docker records them (action and time), in
    /// arrival order. An event without an action or a time shows as such, so that it fails a
    /// comparison with Docker's record instead of vanishing from it.
    func seenEvents(_ id: String) -> [DockerEvent] {
        observer.messages(on: topic(id, "event")).map {
            DockerEvent(action: $0.string("action") ?? "<no action>", time: $0.string("time") ?? "<no time>")
        }
    }
}
