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

    init(bridgeID: String = "t\(UUID().uuidString.prefix(6).lowercased())", persistentBroker: Bool = false) async throws {
        self.bridgeID = bridgeID
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
            bridgeID: bridgeID, broker: broker, dockerExtra: dockerExtra, extra: extra, mqttExtra: mqttExtra)
        let b = try BridgeProcess(yaml: yaml, bridgeID: bridgeID, environment: environment)
        bridge = b
        let onlineCount = observer.messages(on: stateTopic).filter { $0.payload == "online" }.count
        try await eventually("the bridge to publish online; log:\n\(b.log)", timeout: .seconds(20)) {
            self.observer.messages(on: self.stateTopic).filter { $0.payload == "online" }.count > onlineCount
        }
        return b
    }

    var stateTopic: String { "idlewatcher/bridge/\(bridgeID)/state" }
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

    /// The status a subscriber arriving now would get (retained), read with a fresh mosquitto_sub.
    func retainedStatus(_ id: String) throws -> String? {
        let (_, output) = try run([
            "mosquitto_sub", "-p", "\(broker.port)", "-t", topic(id, "status"), "-C", "1", "-W", "1", "-F", "%r %p",
        ])
        let line = output.split(separator: "\n").first.map(String.init) ?? ""
        guard line.hasPrefix("1 ") else { return nil }
        let json = try JSONSerialization.jsonObject(with: Data(line.dropFirst(2).utf8)) as? [String: Any]
        return json?["status"] as? String
    }

    /// Waits until the last retained status a subscriber saw for `id` is `status`.
    func waitForStatus(_ id: String, _ status: String, timeout: Duration = .seconds(20)) async throws {
        try await eventually("status \(status) for \(id); saw \(observer.messages(on: topic(id, "status")).map(\.payload))", timeout: timeout) {
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
    bridgeID: String? = nil, persistentBroker: Bool = false, _ body: (TestEnvironment) async throws -> Void
) async throws {
    let env = try await TestEnvironment(
        bridgeID: bridgeID ?? "t\(UUID().uuidString.prefix(6).lowercased())", persistentBroker: persistentBroker)
    do {
        try await body(env)
    } catch {
        if let b = env.bridge { print("--- bridge log ---\n\(b.log.suffix(6000))") }
        await env.tearDown()
        throw error
    }
    await env.tearDown()
}
