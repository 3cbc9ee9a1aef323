import Foundation
import IdlewatcherCore
import IdlewatcherTesting
import Testing

/// Faults a real cluster has, seen from MQTT: a task that never ends, a node that goes away
/// in the middle of a task, a CT that migrated between two polls.
extension ProxmoxProviderTests {
    @Suite struct ClusterFaults {
        static func withFaultBridge(
            nodes: [String] = ["pve1"], _ body: (ProxmoxBridge) async throws -> Void
        ) async throws {
            try await withBridge(.httpsTrustedCAWithToken, cts: 2, nodes: nodes, entry: "task_timeout: 2s", body)
        }

        func code(_ reply: ObservedMessage) -> String? { (reply.json?["error"] as? [String: Any])?["code"] as? String }
        func message(_ reply: ObservedMessage) -> String {
            ((reply.json?["error"] as? [String: Any])?["message"] as? String) ?? ""
        }

        @Test("a task that never ends: the reply is timeout naming the task; when it ends at last, the event names it")
        func aTaskThatNeverEnds() async throws {
            try await Self.withFaultBridge { env in
                try await env.waitForStatus("101", "running")
                try await env.sim.change(101, ["hang": true])
                let reply = try await env.command("101", ["action": "stop"])
                #expect(code(reply) == "timeout", "\(reply.payload)")
                #expect(message(reply).contains("the vzshutdown task UPID:pve1:"), "\(reply.payload)")
                #expect(message(reply).contains("is still running on node pve1"), "\(reply.payload)")
                #expect(reply.string("status") == "running", "the reply says what it is: \(reply.payload)")
                #expect(try await env.sim.ct(101)["status"] as? String == "running")

                // The task goes on; once it ends, the change reaches MQTT with the task that made it.
                try await env.sim.change(101, ["hang": false])
                let stop = try await env.observer.waitFor(env.topic("101", "event")) { $0.string("action") == "stop" }
                let attributes = stop.json?["attributes"] as? [String: Any]
                #expect(attributes?["task"] as? String == "vzshutdown", "\(stop.payload)")
                #expect(attributes?["user"] as? String == PVESimulator.tokenID, "\(stop.payload)")
                try await env.waitForStatus("101", "stopped")
            }
        }

        @Test("a node that goes offline in the middle of a task: unavailable; its guests keep their status, unreachable")
        func aNodeOfflineMidTask() async throws {
            try await Self.withFaultBridge(nodes: ["pve1", "pve2"]) { env in
                try await env.waitForStatus("101", "running")  // on pve2
                try await env.sim.change(101, ["hang": true])
                try MQTT.publish(
                    broker: env.broker, topic: env.topic("101", "command"), payload: #"{"action":"stop","request_id":"mid"}"#)
                try await eventually("the shutdown task to run") { try await env.sim.taskTypes(101).contains("vzshutdown") }
                try await env.sim.sim("POST", "/node/pve2", ["online": false])

                let reply = try await env.observer.waitFor(env.topic("101", "reply")) { $0.string("request_id") == "mid" }
                #expect(code(reply) == "unavailable", "\(reply.payload)")
                #expect(message(reply).contains("cannot reach the node"), "\(reply.payload)")
                let unreachable = try await env.observer.waitFor(env.topic("101", "status")) {
                    $0.json?["reachable"] as? Bool == false
                }
                #expect(unreachable.string("status") == "running", "the last status known, never error: \(unreachable.payload)")
                #expect(env.observer.messages(on: env.topic("100", "status")).allSatisfy { $0.json?["reachable"] == nil })
                let other = try await env.command("100", ["action": "status"])
                #expect(other.json?["ok"] as? Bool == true, "the other node still serves: \(other.payload)")

                try await env.sim.change(101, ["hang": false])
                try await env.sim.sim("POST", "/node/pve2", ["online": true])
                let back = try await env.observer.waitFor(env.topic("101", "status")) {
                    $0.json?["reachable"] == nil && $0.string("status") == "stopped"
                }
                #expect(back.string("status") == "stopped", "\(back.payload)")
            }
        }

        @Test("a CT migrated to another node between two polls: commands follow it, events name the new node")
        func aMigrationBetweenPolls() async throws {
            try await Self.withFaultBridge(nodes: ["pve1", "pve2"]) { env in
                try await env.waitForStatus("101", "running")
                try await env.sim.sim("POST", "/ct/101/migrate", ["target": "pve1", "instant": true])
                let reply = try await env.command("101", ["action": "pause"])
                #expect(reply.json?["ok"] as? Bool == true, "\(reply.payload)")
                #expect(reply.string("status") == "paused", "\(reply.payload)")
                let pause = try await env.observer.waitFor(env.topic("101", "event")) { $0.string("action") == "pause" }
                #expect(pause.string("ref") == "pve1/101", "\(pause.payload)")
                #expect(try await env.sim.ct(101)["suspended"] as? Bool == true)
            }
        }
    }
}
