import Foundation
import IdlewatcherTesting
import Testing

/// The bridge on a second broker implementation: RabbitMQ 3.10's MQTT plugin (3.1.1 only;
/// retained messages only for subscriptions without wildcards). docs/brokers.md says what
/// each broker gives.
@Suite("RabbitMQ as the broker", .serialized)
struct RabbitMQTests {
    func config(id: String, include: [String]) -> String {
        """
        bridge:
          id: \(id)
        mqtt:
          url: \(RabbitMQ.url)
          client_id: iw-\(id)
          protocol: 3.1.1
          keepalive: 5s
        docker:
          - url: unix:///var/run/docker.sock
            include: [\(include.joined(separator: ", "))]
        homeassistant:
          enabled: false
        """
    }

    @Test("commands, replies, events, statuses and availability over RabbitMQ (MQTT 3.1.1)")
    func commandsAndEvents() async throws {
        try RabbitMQ.ensure()
        try await withEnvironment { env in
            let name = try env.docker.run("rabbit")
            let id = "rb\(UUID().uuidString.prefix(6).lowercased())"
            let observer = try MQTTObserver(port: RabbitMQ.port, topics: ["idlewatcher/#", "iwtest/#"], v5: false)
            defer { Task { await observer.stop() } }
            try await observer.ready(port: RabbitMQ.port, connection: ["-V", "mqttv311"])
            let bridge = try BridgeProcess(yaml: config(id: id, include: [name]), bridgeID: id)
            defer { bridge.child.signal(SIGKILL) }
            try await observer.waitFor("idlewatcher/bridge/\(id)/state", timeout: .seconds(20)) { $0.payload == "online" }
            try await observer.waitFor("idlewatcher/docker/\(name)/status") { $0.string("status") == "running" }

            try RabbitMQ.publish("idlewatcher/docker/\(name)/command", #"{"action":"pause","request_id":"rb1"}"#)
            let reply = try await observer.waitFor("idlewatcher/docker/\(name)/reply") { $0.string("request_id") == "rb1" }
            #expect(reply.json?["ok"] as? Bool == true && reply.string("status") == "paused", "\(reply.payload)")
            #expect(env.docker.state(name) == "paused")
            let pause = try await observer.waitFor("idlewatcher/docker/\(name)/event") { $0.string("action") == "pause" }
            #expect(pause.string("status") == "paused")
            try RabbitMQ.publish("idlewatcher/docker/\(name)/command", "unpause")
            try await observer.waitFor("idlewatcher/docker/\(name)/status") { $0.string("status") == "running" }
            #expect(env.docker.state(name) == "running")

            // Retained, for a subscriber without wildcards: the status and the bridge's state.
            let status = try await RabbitMQ.retained("idlewatcher/docker/\(name)/status")
            #expect(status?.string("status") == "running" && status?.string("bridge") == id, "\(String(describing: status))")
            #expect(try await RabbitMQ.retained("idlewatcher/bridge/\(id)/state")?.payload == "online")

            // Killed: the will says offline, retained (RabbitMQ waits about 3 × keepalive, mosquitto 1.5 ×).
            bridge.child.signal(SIGKILL)
            try await observer.waitFor("idlewatcher/bridge/\(id)/state", timeout: .seconds(30)) { $0.payload == "offline" }
            #expect(try await RabbitMQ.retained("idlewatcher/bridge/\(id)/state")?.payload == "offline")
        }
    }

    @Test(
        "a restarted bridge clears the status of a container removed while it was down, though RabbitMQ sends it no retained status"
    )
    func resyncFindsStaleStatuses() async throws {
        try RabbitMQ.ensure()
        try await withEnvironment { env in
            let kept = try env.docker.run("kept")
            let gone = try env.docker.run("gone")
            let id = "rb\(UUID().uuidString.prefix(6).lowercased())"
            let observer = try MQTTObserver(port: RabbitMQ.port, topics: ["idlewatcher/#", "iwtest/#"], v5: false)
            defer { Task { await observer.stop() } }
            try await observer.ready(port: RabbitMQ.port, connection: ["-V", "mqttv311"])
            var bridge = try BridgeProcess(yaml: config(id: id, include: [kept, gone]), bridgeID: id)
            defer { bridge.child.signal(SIGKILL) }
            let goneStatus = "idlewatcher/docker/\(gone)/status"
            try await observer.waitFor(goneStatus) { $0.string("status") == "running" }
            try await observer.waitFor("idlewatcher/docker/\(kept)/status") { $0.string("status") == "running" }
            // The index of what it keeps retained, on one exact topic.
            try await eventually("the bridge's retained index to name both") {
                let index = try await RabbitMQ.retained("idlewatcher/bridge/\(id)/index")?.payload ?? ""
                return index.contains("docker/\(kept)") && index.contains("docker/\(gone)")
            }
            await bridge.stop()
            try env.docker.cli("rm", "-f", gone)
            #expect(try await RabbitMQ.retained(goneStatus)?.string("status") == "running", "stale, as the bridge left it")

            bridge = try BridgeProcess(yaml: config(id: id, include: [kept, gone]), bridgeID: id)
            try await eventually("the stale status to be cleared", timeout: .seconds(20)) {
                observer.messages(on: goneStatus).last?.payload == ""
            }
            #expect(try await RabbitMQ.retained(goneStatus) == nil)
            #expect(try await RabbitMQ.retained("idlewatcher/docker/\(kept)/status")?.string("status") == "running")
            try await eventually("the index to drop it") {
                let index = try await RabbitMQ.retained("idlewatcher/bridge/\(id)/index")?.payload ?? ""
                return index.contains("docker/\(kept)") && !index.contains("docker/\(gone)")
            }
            await bridge.stop()
        }
    }
}
