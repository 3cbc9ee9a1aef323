import Foundation

/// RabbitMQ with its MQTT plugin on 127.0.0.1:1884 (MQTT 3.1.1 only), started by
/// `scripts/ensure-rabbitmq.sh`: a second broker implementation, with its own rules
/// (retained messages reach only subscriptions without wildcards).
public enum RabbitMQ {
    public static let port = 1884
    /// `mosquitto_pub`/`mosquitto_sub` arguments to reach it.
    public static let connection = ["-p", "\(port)", "-V", "mqttv311"]
    /// The bridge's `mqtt.url` for it.
    public static let url = "mqtt://127.0.0.1:\(port)"

    /// Makes sure it answers (installs and starts it if needed; quick when it runs already).
    public static func ensure() throws {
        let (status, output) = try run([repositoryRoot.appendingPathComponent("scripts/ensure-rabbitmq.sh").path])
        guard status == 0 else { throw TestSupportError("scripts/ensure-rabbitmq.sh failed (\(status)): \(output)") }
    }

    /// Publishes as `mosquitto_pub` over MQTT 3.1.1.
    public static func publish(_ topic: String, _ payload: String, retain: Bool = false) throws {
        try MQTT.publish(connection: connection, topic: topic, payload: payload, retain: retain)
    }

    /// The retained message on one exact topic (what RabbitMQ sends a new subscriber), if any.
    public static func retained(_ topic: String) async throws -> ObservedMessage? {
        precondition(!topic.contains("+") && !topic.contains("#"), "one topic, not a filter: \(topic)")
        let all = try await MQTT.retained(filter: topic, connection: connection)
        return all.first { !$0.payload.isEmpty }
    }
}
