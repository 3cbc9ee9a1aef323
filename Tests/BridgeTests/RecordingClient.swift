import Foundation
import IdlewatcherTesting
import Logging
import MQTTClient
import Synchronization

/// The project's own MQTT client, for tests that send thousands of messages (a process per
/// `mosquitto_pub` would take minutes) or log in with a user, a password or a certificate.
/// It records everything it receives; messages carrying Correlation Data are also indexed by it.
final class RecordingClient: Sendable {
    let mqtt: MQTTClient
    private struct Inbox {
        var all: [MQTTIncomingMessage] = []
        var byCorrelation: [String: [MQTTIncomingMessage]] = [:]
    }
    private let inbox = Mutex(Inbox())
    private let tasks = Mutex<[Task<Void, Never>]>([])

    /// Connects (MQTT 5, QoS 1 subscriptions) and waits until the broker accepted it.
    init(
        port: Int, subscriptions: [String], clientID: String = "iwt-client-\(UUID().uuidString.prefix(8))",
        configure: (inout MQTTConfiguration) -> Void = { _ in }
    ) async throws {
        var c = MQTTConfiguration(port: Int32(port), clientID: clientID, queueLimit: 10_000_000)
        configure(&c)
        var logger = Logger(label: "test-client")
        logger.logLevel = .warning
        mqtt = MQTTClient(configuration: c, subscriptions: subscriptions.map { MQTTSubscription(filter: $0) }, logger: logger)
        let client = mqtt
        let run = Task { _ = try? await client.run() }
        let read = Task { [self] in
            for await m in client.messages { record(m) }
        }
        tasks.withLock { $0 = [run, read] }
        try await eventually("the test client to connect to 127.0.0.1:\(port)") { client.isConnected }
    }

    private func record(_ m: MQTTIncomingMessage) {
        inbox.withLock { box in
            box.all.append(m)
            if let c = m.correlationData { box.byCorrelation[String(decoding: c, as: UTF8.self), default: []].append(m) }
        }
    }

    /// Waits until the subscriptions are live: a probe on `probeTopic` comes back.
    func ready(probeTopic: String) async throws {
        try await eventually("the test client's subscriptions") {
            if messages.contains(where: { $0.topic == probeTopic }) { return true }
            publish(probeTopic, Array("probe".utf8))
            return false
        }
    }

    func publish(_ topic: String, _ payload: [UInt8], correlation: String? = nil, retain: Bool = false) {
        mqtt.publish(
            MQTTOutgoingMessage(
                topic: topic, payload: payload, retain: retain, correlationData: correlation.map { Array($0.utf8) },
                droppable: false))
    }

    var messages: [MQTTIncomingMessage] { inbox.withLock { $0.all } }

    func messages(on topic: String) -> [MQTTIncomingMessage] { messages.filter { $0.topic == topic } }

    /// Messages received with this Correlation Data.
    func correlated(_ key: String) -> [MQTTIncomingMessage] { inbox.withLock { $0.byCorrelation[key] ?? [] } }

    /// How many of `keys` have at least one message that `match`es.
    func countCorrelated(_ keys: [String], where match: (MQTTIncomingMessage) -> Bool) -> Int {
        inbox.withLock { box in keys.filter { (box.byCorrelation[$0] ?? []).contains(where: match) }.count }
    }

    /// Disconnects (cleanly) and stops the reader.
    func stop() async {
        let t = tasks.withLock { $0 }
        t.first?.cancel()
        await t.first?.value
        t.last?.cancel()
    }
}

extension MQTTIncomingMessage {
    var text: String { String(decoding: payload, as: UTF8.self) }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] }
}
