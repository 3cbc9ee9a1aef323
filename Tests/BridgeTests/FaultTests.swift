import Foundation
import IdlewatcherTesting
import Testing

/// Faults survived with nothing lost: a full queue, a broker that is not there yet, an
/// operation that hangs, a burst of commands, a shutdown with commands in flight.
@Suite("Faults")
struct FaultTests {
    @Test("the outgoing queue is bounded: overflow drops the oldest events, says so, and the resync restores statuses")
    func queueLimit() async throws {
        try await withEnvironment(persistentBroker: true) { env in
            let name = try env.docker.run("flood")
            try await env.startBridge(mqttExtra: "  queue_limit: 6")
            try await env.waitForStatus(name, "running")
            await env.broker.stop()
            for _ in 0..<5 {
                try env.docker.cli("pause", name)
                try env.docker.cli("unpause", name)
            }
            try env.docker.cli("pause", name)
            try await eventually("the drop to be logged") { env.bridge!.log.contains("dropped the oldest event") }
            try await env.broker.start()
            try await eventually("the status after the outage", timeout: .seconds(30)) {
                try env.retainedStatus(name) == "paused"
            }
            let after = env.eventActions(name)
            #expect(after.count < 11 + 1, "some of the 11 outage events were dropped: \(after)")
            #expect(after.last == "pause", "the newest events are the ones kept: \(after)")
        }
    }

    @Test("a broker that is not there at start: the bridge starts anyway and connects when it appears")
    func brokerAbsentAtStart() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("early")
            await env.broker.stop()
            let b = try BridgeProcess(yaml: BridgeProcess.dockerConfig(bridgeID: env.bridgeID, broker: env.broker), bridgeID: env.bridgeID)
            env.bridge = b
            try await eventually("the bridge to say it cannot connect") { b.log.contains("cannot connect to the MQTT broker") }
            #expect(b.child.isRunning)
            try await env.broker.start()
            try await env.observer.waitFor(env.stateTopic, timeout: .seconds(30)) { $0.payload == "online" }
            try await env.waitForStatus(name, "running")
            let r = try await env.command(name, ["action": "status"])
            #expect(r.json?["ok"] as? Bool == true)
        }
    }

    @Test("an operation that hangs is answered timeout by its deadline, the queue moves on, a full queue answers busy")
    func hangingOperation() async throws {
        try await withEnvironment { env in
            let dir = try makeTemporaryDirectory("stuck")
            let socket = dir.appendingPathComponent("docker.sock").path
            let engine = try ChildProcess(
                ["python3", repositoryRoot.appendingPathComponent("tools/test-fixtures/stuck_dockerd.py").path, socket],
                log: dir.appendingPathComponent("engine.log"))
            defer { engine.signal(SIGKILL) }
            try await eventually("the stuck engine to listen") { engine.output.contains("listening") }
            let yaml = """
                bridge:
                  id: \(env.bridgeID)
                mqtt:
                  url: \(env.broker.url)
                docker:
                  - url: unix://\(socket)
                defaults:
                  operation_timeout: 1s
                  command_queue_limit: 2
                homeassistant:
                  enabled: false
                """
            env.bridge = try BridgeProcess(yaml: yaml, bridgeID: env.bridgeID)
            try await env.waitForStatus("stuck", "running")

            try env.send("stuck", #"{"action":"pause","request_id":"p1"}"#)
            try env.send("stuck", #"{"action":"pause","request_id":"p2"}"#)
            try env.send("stuck", #"{"action":"pause","request_id":"p3"}"#)
            // command_queue_limit: 2 means two may wait behind the running one: the fourth is busy.
            try env.send("stuck", #"{"action":"pause","request_id":"p4"}"#)
            let busy = try await env.observer.waitFor(env.topic("stuck", "reply")) { $0.string("request_id") == "p4" }
            #expect((busy.json?["error"] as? [String: Any])?["code"] as? String == "busy")
            let first = try await env.observer.waitFor(env.topic("stuck", "reply"), timeout: .seconds(10)) { $0.string("request_id") == "p1" }
            #expect((first.json?["error"] as? [String: Any])?["code"] as? String == "timeout")
            #expect((first.json?["duration_ms"] as? Int ?? 0) >= 900)
            let second = try await env.observer.waitFor(env.topic("stuck", "reply"), timeout: .seconds(10)) { $0.string("request_id") == "p2" }
            #expect((second.json?["error"] as? [String: Any])?["code"] as? String == "timeout")
            let third = try await env.observer.waitFor(env.topic("stuck", "reply"), timeout: .seconds(10)) { $0.string("request_id") == "p3" }
            #expect((third.json?["error"] as? [String: Any])?["code"] as? String == "timeout")
            let status = try await env.command("stuck", ["action": "status"])
            #expect(status.json?["ok"] as? Bool == true, "the queue moved on: \(status.payload)")
        }
    }

    @Test("1,000 commands in a burst across 20 containers: every one answered, order kept per container, memory bounded")
    func burst() async throws {
        try await withEnvironment { env in
            var names: [String] = []
            for i in 0..<20 { names.append(try env.docker.run("b\(i)")) }
            // 50 commands per container at once: more than the default 16 may wait.
            try await env.startBridge(extra: "defaults:\n  command_queue_limit: 64")
            for n in names { try await env.waitForStatus(n, "running") }
            let pid = env.bridge!.child.pid
            let rssBefore = try #require(Self.rss(pid))
            // 50 commands per container, sent by 20 mosquitto_pub processes at once.
            var publishers: [ChildProcess] = []
            let dir = try makeTemporaryDirectory("burst")
            for (c, n) in names.enumerated() {
                var lines: [String] = []
                for k in 0..<50 {
                    let action = k % 5 == 4 ? (k % 10 == 4 ? "pause" : "unpause") : "status"
                    lines.append(#"{"action":"\#(action)","request_id":"\#(c)-\#(k)"}"#)
                }
                let file = dir.appendingPathComponent("\(c).txt")
                try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
                publishers.append(
                    try ChildProcess(
                        ["sh", "-c", "mosquitto_pub -p \(env.broker.port) -q 1 -t \(env.topic(n, "command")) -l < \(file.path)"],
                        log: dir.appendingPathComponent("\(c).log")))
            }
            try await eventually("1000 replies", timeout: .seconds(120)) {
                env.observer.messages.filter { $0.topic.hasSuffix("/reply") }.count >= 1000
            }
            for (c, n) in names.enumerated() {
                let ids = env.observer.messages(on: env.topic(n, "reply")).compactMap { $0.string("request_id") }
                #expect(ids == (0..<50).map { "\(c)-\($0)" }, "order kept for \(n)")
                #expect(env.observer.messages(on: env.topic(n, "reply")).allSatisfy { $0.json?["ok"] as? Bool == true })
            }
            let rssAfter = try #require(Self.rss(pid))
            #expect(rssAfter < 64 * 1024, "RSS after the burst: \(rssAfter) KiB")
            #expect(rssAfter - rssBefore < 16 * 1024, "RSS grew from \(rssBefore) to \(rssAfter) KiB")
        }
    }

    @Test("SIGTERM with a command in flight: it finishes, offline is published, exit code 0")
    func shutdownWithCommandInFlight() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("inflight")  // ignores SIGTERM: a stop takes its full timeout
            let b = try await env.startBridge()
            try await env.waitForStatus(name, "running")
            try env.send(name, #"{"action":"stop","timeout":2,"request_id":"last"}"#)
            try await eventually("the stop to be under way") { env.eventActions(name).contains("kill") }
            let exit = await b.stop()
            #expect(exit == 0)
            let reply = try await env.observer.waitFor(env.topic(name, "reply")) { $0.string("request_id") == "last" }
            #expect(reply.json?["ok"] as? Bool == true, "\(reply.payload)")
            #expect(reply.string("status") == "stopped")
            let all = env.observer.messages
            let replyIndex = try #require(all.firstIndex { $0.topic == env.topic(name, "reply") })
            let offlineIndex = try #require(all.lastIndex { $0.topic == env.stateTopic && $0.payload == "offline" })
            #expect(replyIndex < offlineIndex, "the reply goes out before offline")
            env.bridge = nil
        }
    }

    /// Resident memory of a process, in KiB.
    static func rss(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }
}
