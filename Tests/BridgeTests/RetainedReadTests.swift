import Foundation
import IdlewatcherTesting
import Testing

/// The retained read the end-to-end tests rely on (`MQTT.retained`) tells a retained message,
/// "none retained" and a subscriber that failed apart: a check that reads "none" must not
/// pass because the subscriber never got through.
@Suite("Reading what a broker retains")
struct RetainedReadTests {
    @Test("a retained message is read with its flag; a topic with none reads empty; live messages are not retained ones")
    func retainedAndNone() async throws {
        let broker = try await MosquittoBroker()
        try MQTT.publish(broker: broker, topic: "iwtest/r/one", payload: "kept", retain: true)
        let one = try #require(try await MQTT.retained(broker: broker, topic: "iwtest/r/one"))
        #expect(one.retained && one.payload == "kept" && one.topic == "iwtest/r/one")
        #expect(try await MQTT.retained(broker: broker, topic: "iwtest/r/none") == nil)

        // A filter: every retained message under it, and nothing published live meanwhile.
        try MQTT.publish(broker: broker, topic: "iwtest/r/two", payload: "also", retain: true)
        let chatter = try ChildProcess(
            ["sh", "-c", "while :; do mosquitto_pub -p \(broker.port) -t iwtest/r/live -m chatter || exit 1; done"],
            log: try makeTemporaryDirectory("chatter").appendingPathComponent("log"))
        defer { chatter.signal(SIGKILL) }
        let all = try await MQTT.retained(filter: "iwtest/r/#", connection: ["-p", "\(broker.port)"])
        #expect(
            Dictionary(all.map { ($0.topic, $0.payload) }, uniquingKeysWith: { a, _ in a }) == [
                "iwtest/r/one": "kept", "iwtest/r/two": "also",
            ])

        // Cleared (an empty retained payload): none again.
        try MQTT.publish(broker: broker, topic: "iwtest/r/one", payload: "", retain: true)
        #expect(try await MQTT.retained(broker: broker, topic: "iwtest/r/one") == nil)
        await broker.stop()
    }

    @Test("no broker: the read throws instead of reading none")
    func noBroker() async throws {
        let broker = try await MosquittoBroker()
        await broker.stop()
        await #expect(throws: TestSupportError.self) { try await MQTT.retained(broker: broker, topic: "iwtest/r/x") }
    }

    @Test("a broker that accepts the connection but never answers: the read throws instead of reading none")
    func silentBroker() async throws {
        let port = freePort()
        let dir = try makeTemporaryDirectory("silent")
        let silent = try ChildProcess(
            [
                "python3", "-c",
                """
                import socket, time
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", \(port)))
                s.listen()
                print("listening", flush=True)
                c = s.accept()
                time.sleep(60)
                """,
            ], log: dir.appendingPathComponent("log"))
        defer { silent.signal(SIGKILL) }
        try await eventually("the silent listener") { silent.output.contains("listening") }
        await #expect(throws: TestSupportError.self) {
            try await MQTT.retained(filter: "iwtest/r/x", connection: ["-p", "\(port)"], wait: .seconds(1))
        }
    }
}
