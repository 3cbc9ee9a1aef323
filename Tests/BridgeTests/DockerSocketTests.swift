import Foundation
import IdlewatcherTesting
import Testing

/// A Docker socket that is not there reads as what it is: the path and the OS error, not
/// curl's "Failed to connect to localhost port 80".
@Suite("Docker socket errors")
struct DockerSocketTests {
    @Test("a bridge configured with a socket that does not exist answers unavailable, naming the socket path and the OS error")
    func missingSocket() async throws {
        let broker = try await MosquittoBroker()
        let observer = try MQTTObserver(broker: broker, topics: ["idlewatcher/#", "iwtest/#"])
        try await observer.ready(broker: broker)
        let dir = try makeTemporaryDirectory("nosocket")
        let socket = dir.appendingPathComponent("nope.sock").path
        let id = "t\(UUID().uuidString.prefix(6).lowercased())"
        let yaml = """
            bridge:
              id: \(id)
            mqtt:
              url: \(broker.url)
            docker:
              - url: unix://\(socket)
            homeassistant:
              enabled: false
            """
        let b = try BridgeProcess(yaml: yaml, bridgeID: id)
        do {
            try await observer.waitFor("idlewatcher/bridge/\(id)/state", timeout: .seconds(20)) { $0.payload == "online" }
            try MQTT.publish(
                broker: broker, topic: "idlewatcher/docker/web/command", payload: #"{"action":"wake","request_id":"w1"}"#)
            let reply = try await observer.waitFor("idlewatcher/docker/web/reply") { $0.string("request_id") == "w1" }
            let error = reply.json?["error"] as? [String: Any]
            #expect(error?["code"] as? String == "unavailable", "\(reply.payload)")
            let message = error?["message"] as? String ?? ""
            #expect(
                message.contains("cannot reach Docker at unix://\(socket): \(socket): No such file or directory"), "\(message)")
            #expect(!message.contains("localhost port 80"), "\(message)")
            // The log says the same, where a person starting the bridge looks first.
            #expect(b.log.contains("\(socket): No such file or directory"), "\(b.log.suffix(2000))")
            #expect(!b.log.contains("localhost port 80"))
            #expect(await b.stop() == 0)
        } catch {
            print("--- bridge log ---\n\(b.log.suffix(4000))")
            await b.stop()
            await observer.stop()
            await broker.stop()
            throw error
        }
        await observer.stop()
        await broker.stop()
    }
}
