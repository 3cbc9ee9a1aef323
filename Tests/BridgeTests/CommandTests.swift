import Foundation
import IdlewatcherTesting
import Testing

/// Every command of the contract on a real container, in text and in JSON, with the bridge
/// speaking MQTT 5 and 3.1.1 (the Response Topic test is MQTT 5 only: 3.1.1 has no properties).
@Suite("Commands on a real Docker container")
struct CommandTests {
    @Test("pause and unpause as plain text: reply, events and retained status", arguments: MQTTVersion.allCases)
    func pauseUnpauseText(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let name = try env.docker.run("web")
            try await env.startBridge()
            try await env.waitForStatus(name, "running")

            try env.send(name, "pause")
            let reply = try await env.observer.waitFor(env.topic(name, "reply"))
            #expect(reply.string("action") == "pause")
            #expect(reply.json?["ok"] as? Bool == true)
            #expect(reply.string("status") == "paused")
            #expect(reply.json?["request_id"] is NSNull)
            #expect(reply.json?["duration_ms"] is Int)
            #expect(reply.string("bridge") == env.bridgeID)
            #expect(env.docker.state(name) == "paused")
            try await env.waitForStatus(name, "paused")
            let event = try await env.observer.waitFor(env.topic(name, "event")) { $0.string("action") == "pause" }
            #expect(event.string("status") == "paused")
            #expect(event.string("runtime") == "docker")
            #expect(event.string("id") == name)
            #expect(event.string("ref")?.count == 64)
            #expect(event.string("bridge") == env.bridgeID)
            #expect(try await env.retainedStatus(name) == "paused")

            try env.send(name, "  UnPause \n")
            try await env.observer.waitFor(env.topic(name, "reply")) { $0.string("action") == "unpause" }
            #expect(env.docker.state(name) == "running")
            try await env.waitForStatus(name, "running")
            #expect(env.eventActions(name).suffix(2) == ["pause", "unpause"])
        }
    }

    @Test("JSON stop with signal and timeout; start brings it back; kill; restart; status", arguments: MQTTVersion.allCases)
    func jsonLifecycle(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let name = try env.docker.runQuickStopper("app")
            try await env.startBridge()
            try await env.waitForStatus(name, "running")

            let stop = try await env.command(name, ["action": "stop", "signal": "SIGTERM", "timeout": 5])
            #expect(stop.json?["ok"] as? Bool == true, "\(stop.payload)")
            #expect(stop.string("status") == "stopped")
            #expect(env.docker.state(name) == "exited")
            try await env.waitForStatus(name, "stopped")

            let again = try await env.command(name, ["action": "stop"])
            #expect(again.json?["ok"] as? Bool == true, "stopping a stopped container is ok, nothing done")

            let start = try await env.command(name, ["action": "start"])
            #expect(start.string("status") == "running")
            #expect(env.docker.state(name) == "running")
            try await env.waitForStatus(name, "running")

            let restartBefore = env.docker.startedAt(name)
            let restart = try await env.command(name, ["action": "restart", "timeout": 2])
            #expect(restart.json?["ok"] as? Bool == true, "\(restart.payload)")
            #expect(restart.string("status") == "running")
            #expect(env.docker.startedAt(name) != restartBefore)
            try await eventually("a restart event") { env.eventActions(name).contains("restart") }

            let status = try await env.command(name, ["action": "status"])
            #expect(status.string("status") == "running")
            #expect(status.json?["ok"] as? Bool == true)

            let kill = try await env.command(name, ["action": "kill"])
            #expect(kill.json?["ok"] as? Bool == true)
            #expect(kill.string("status") == "stopped")
            try await env.waitForStatus(name, "stopped")
            let die = try await env.observer.waitFor(env.topic(name, "event")) {
                $0.string("action") == "die" && $0.payload.contains("137")
            }
            #expect(die.string("status") == "stopped")
        }
    }

    @Test(
        "wake starts a stopped container and unpauses a paused one; start on running does nothing",
        arguments: MQTTVersion.allCases)
    func wake(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let name = try env.docker.run("jellyfin")
            try env.docker.cli("stop", "-t", "0", name)
            try await env.startBridge()
            try await env.waitForStatus(name, "stopped")

            let w1 = try await env.command(name, ["action": "wake"])
            #expect(w1.string("status") == "running")
            #expect(env.docker.state(name) == "running")

            try env.docker.cli("pause", name)
            try await env.waitForStatus(name, "paused")
            try env.send(name, "WAKE")
            try await env.observer.waitFor(env.topic(name, "reply")) {
                $0.string("action") == "wake" && $0.string("status") == "running" && $0.json?["request_id"] is NSNull
            }
            #expect(env.docker.state(name) == "running")

            let started = env.docker.startedAt(name)
            let s = try await env.command(name, ["action": "start"])
            #expect(s.json?["ok"] as? Bool == true)
            #expect(env.docker.startedAt(name) == started, "start on a running container must do nothing")
        }
    }

    @Test("kill with a non-fatal signal leaves the container running, and the event says so", arguments: MQTTVersion.allCases)
    func killHup(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let name = try env.docker.run("hup")
            try await env.startBridge()
            try await env.waitForStatus(name, "running")
            let r = try await env.command(name, ["action": "kill", "signal": "HUP"])
            #expect(r.json?["ok"] as? Bool == true)
            #expect(r.string("status") == "running")
            let e = try await env.observer.waitFor(env.topic(name, "event")) { $0.string("action") == "kill" }
            #expect(e.string("status") == "running")
            #expect((e.json?["attributes"] as? [String: String])?["signal"] == "1")
            #expect(env.docker.state(name) == "running")
        }
    }

    @Test("a stop on a container that ignores SIGTERM waits for the timeout, then kills", arguments: MQTTVersion.allCases)
    func slowStop(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let name = try env.docker.run("slow")  // /bin/sleep as PID 1 ignores SIGTERM
            try await env.startBridge()
            try await env.waitForStatus(name, "running")
            let r = try await env.command(name, ["action": "stop", "timeout": 1])
            #expect(r.json?["ok"] as? Bool == true)
            #expect(r.string("status") == "stopped")
            let ms = r.json?["duration_ms"] as? Int ?? 0
            #expect(ms >= 900, "the stop waited for its timeout: \(ms) ms")
        }
    }

    @Test("pause of a stopped container is invalid_state; unpause of a running one is ok", arguments: MQTTVersion.allCases)
    func invalidState(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let name = try env.docker.run("st")
            try env.docker.cli("stop", "-t", "0", name)
            try await env.startBridge()
            try await env.waitForStatus(name, "stopped")
            let r = try await env.command(name, ["action": "pause"])
            #expect(r.json?["ok"] as? Bool == false)
            #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "invalid_state")
            #expect(r.string("status") == "stopped")
            #expect(env.docker.state(name) == "exited")

            // The name promises this half too: unpause of a running container is ok, nothing done.
            try env.docker.cli("start", name)
            try await env.waitForStatus(name, "running")
            let u = try await env.command(name, ["action": "unpause"])
            #expect(u.json?["ok"] as? Bool == true, "\(u.payload)")
            #expect(u.string("status") == "running")
            #expect(!env.eventActions(name).contains("unpause"), "nothing was done: \(env.eventActions(name))")
        }
    }

    @Test("mosquitto_rr gets the reply on its response topic; correlation data is echoed")
    func responseTopic() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("rr")
            try await env.startBridge()
            try await env.waitForStatus(name, "running")
            let out = try MQTT.request(
                broker: env.broker, topic: env.topic(name, "command"), responseTopic: "client/rr/\(name)", payload: "pause")
            #expect(out.contains("\"ok\":true"), "\(out)")
            #expect(out.contains("\"status\":\"paused\""))
            #expect(env.docker.state(name) == "paused")

            try env.send(
                name, "unpause",
                extra: [
                    "-V", "mqttv5", "-D", "publish", "response-topic", "client/custom", "-D", "publish", "correlation-data",
                    "corr-42",
                ])
            let reply = try await env.observer.waitFor("client/custom")
            #expect(reply.correlationData == "corr-42")
            #expect(reply.string("action") == "unpause")
            #expect(env.observer.messages(on: env.topic(name, "reply")).isEmpty, "a reply goes to the response topic only")
        }
    }

    @Test("concurrent wakes share one start, and each gets its own reply", arguments: MQTTVersion.allCases)
    func wakeCoalescing(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let name = try env.docker.run("co")
            try env.docker.cli("stop", "-t", "0", name)
            try await env.startBridge()
            try await env.waitForStatus(name, "stopped")
            for i in 0..<5 { try env.send(name, #"{"action":"wake","request_id":"w\#(i)"}"#) }
            try await eventually("five wake replies") { env.observer.messages(on: env.topic(name, "reply")).count == 5 }
            let replies = env.observer.messages(on: env.topic(name, "reply"))
            #expect(Set(replies.compactMap { $0.string("request_id") }) == ["w0", "w1", "w2", "w3", "w4"])
            #expect(replies.allSatisfy { $0.json?["ok"] as? Bool == true && $0.string("status") == "running" })
            #expect(env.eventActions(name).filter { $0 == "start" }.count == 1, "\(env.eventActions(name))")
        }
    }

    @Test("commands for one container run in arrival order", arguments: MQTTVersion.allCases)
    func ordering(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(mqtt: mqtt) { env in
            let name = try env.docker.run("ord")
            try await env.startBridge()
            try await env.waitForStatus(name, "running")
            let sequence = ["pause", "unpause", "pause", "unpause", "pause"]
            for (i, a) in sequence.enumerated() { try env.send(name, #"{"action":"\#(a)","request_id":"o\#(i)"}"#) }
            try await eventually("five replies") { env.observer.messages(on: env.topic(name, "reply")).count == 5 }
            let ids = env.observer.messages(on: env.topic(name, "reply")).compactMap { $0.string("request_id") }
            #expect(ids == ["o0", "o1", "o2", "o3", "o4"])
            #expect(env.docker.state(name) == "paused")
            try await eventually("events in order") {
                env.eventActions(name) == ["pause", "unpause", "pause", "unpause", "pause"]
            }
        }
    }
}
