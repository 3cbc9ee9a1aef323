import Foundation
import IdlewatcherTesting
import Testing

/// Several bridges on one broker: each in its own namespace, with its own availability.
@Suite("Several bridges, one broker")
struct MultiBridgeTests {
    func config(_ env: TestEnvironment, id: String, prefix: String, include: String) -> String {
        """
        bridge:
          id: \(id)
        mqtt:
          url: \(env.broker.url)
        docker:
          - url: unix:///var/run/docker.sock
            id_prefix: "\(prefix)"
            include: [\(include)]
        homeassistant:
          enabled: true
        """
    }

    @Test("two bridges: disjoint namespaces, shared state, a restart clears only its own, a SIGKILL says offline")
    func twoBridges() async throws {
        try await withEnvironment { env in
            let a = try env.docker.run("a")
            let b = try env.docker.run("b")
            let one = try BridgeProcess(yaml: config(env, id: "hosta", prefix: "a-", include: a), bridgeID: "hosta")
            var two = try BridgeProcess(yaml: config(env, id: "hostb", prefix: "b-", include: b), bridgeID: "hostb")
            defer {
                one.child.signal(SIGKILL)
                two.child.signal(SIGKILL)
            }
            try await env.observer.waitFor("idlewatcher/bridge/hosta/state") { $0.payload == "online" }
            try await env.observer.waitFor("idlewatcher/bridge/hostb/state") { $0.payload == "online" }

            // A subscriber to idlewatcher/+/+/status arriving now gets every container of every
            // bridge, retained (and only under the right bridge's prefix).
            let mine: Set = ["idlewatcher/docker/a-\(a)/status", "idlewatcher/docker/b-\(b)/status"]
            let seen = try await eventually("both bridges' statuses, retained") { () -> Set<String>? in
                let s = Set(
                    try await MQTT.retained(filter: "idlewatcher/+/+/status", connection: ["-p", "\(env.broker.port)"]).map(
                        \.topic))
                return s.isSuperset(of: mine) ? s : nil
            }
            #expect(!seen.contains("idlewatcher/docker/a-\(b)/status"))
            #expect(!seen.contains("idlewatcher/docker/b-\(a)/status"))

            // Each answers only in its own namespace: one not_found from hosta, nothing from hostb.
            try MQTT.publish(broker: env.broker, topic: "idlewatcher/docker/a-\(b)/command", payload: "pause")
            let nf = try await env.observer.waitFor("idlewatcher/docker/a-\(b)/reply")
            #expect(nf.string("bridge") == "hosta")
            #expect((nf.json?["error"] as? [String: Any])?["code"] as? String == "not_found")
            #expect(env.docker.state(b) == "running")
            try MQTT.publish(
                broker: env.broker, topic: "idlewatcher/docker/b-\(b)/command", payload: #"{"action":"pause","request_id":"x"}"#)
            let ok = try await env.observer.waitFor("idlewatcher/docker/b-\(b)/reply")
            #expect(ok.string("bridge") == "hostb")
            #expect(env.docker.state(b) == "paused")
            #expect(env.observer.messages(on: "idlewatcher/docker/a-\(b)/reply").count == 1)

            // hostb restarts without its container: it clears its own stale status, never hosta's.
            await two.stop()
            try env.docker.cli("rm", "-f", b)
            two = try BridgeProcess(yaml: config(env, id: "hostb", prefix: "b-", include: b), bridgeID: "hostb")
            try await eventually("hostb's stale status cleared") {
                env.observer.messages(on: "idlewatcher/docker/b-\(b)/status").last?.payload == ""
            }
            #expect(try await retained(env, "idlewatcher/docker/a-\(a)/status")?.contains("\"bridge\":\"hosta\"") == true)

            // hosta killed: its will says offline; its Home Assistant entities use that topic for availability.
            one.child.signal(SIGKILL)
            try await env.observer.waitFor("idlewatcher/bridge/hosta/state", timeout: .seconds(10)) { $0.payload == "offline" }
            let haSwitch = try await env.observer.waitFor("homeassistant/switch/idlewatcher_hosta/docker_a-\(a)_power/config")
            #expect(haSwitch.payload.contains("idlewatcher/bridge/hosta/state"))
            #expect(try await retained(env, "idlewatcher/bridge/hosta/state") == "offline", "hosta's will is retained")
            #expect(try await retained(env, "idlewatcher/bridge/hostb/state") == "online")
            await two.stop()
        }
    }

    /// The retained payload of `topic` for a subscriber arriving now; nil only when the broker
    /// has none (a failed subscriber throws).
    func retained(_ env: TestEnvironment, _ topic: String) async throws -> String? {
        try await MQTT.retained(broker: env.broker, topic: topic)?.payload
    }
}
