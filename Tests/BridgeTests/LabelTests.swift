import Foundation
import IdlewatcherTesting
import Testing

/// Labels that cannot be used are said once in the log, and what they meant to do is not
/// silently turned into something else.
@Suite("Labels a person can get wrong")
struct LabelTests {
    @Test("bad labels: one warning per container and label; enable=0 hides; an empty allow is ignored, not a block")
    func badLabels() async throws {
        try await withEnvironment { env in
            let timeout = try env.docker.run("timeout", labels: ["idlewatcher.stop_timeout": "abc"])
            let allow = try env.docker.run("allow", labels: ["idlewatcher.allow": "foo,status"])
            let empty = try env.docker.run("empty", labels: ["idlewatcher.allow": ""])
            let hidden = try env.docker.run("hidden", labels: ["idlewatcher.enable": "0"])
            let idle = try env.docker.run("idle", labels: ["idlewatcher.idle_timeout": "soon"])
            let b = try await env.startBridge()
            try await env.waitForStatus(idle, "running")
            // A command round trip: the listing (and its warnings) came before it.
            let status = try await env.command(empty, ["action": "status"])
            #expect(status.json?["ok"] as? Bool == true, "an empty allow must not block status: \(status.payload)")
            let pause = try await env.command(empty, ["action": "pause"])
            #expect(pause.json?["ok"] as? Bool == true, "an empty allow is ignored: the defaults apply: \(pause.payload)")
            let refused = try await env.command(allow, ["action": "pause"])
            let error = refused.json?["error"] as? [String: Any]
            #expect(error?["code"] as? String == "not_allowed")
            #expect(
                (error?["message"] as? String)?.contains(
                    "its label idlewatcher.allow=foo,status does not include it (allowed: status)") == true,
                "\(refused.payload)")
            let hiddenReply = try await env.command(hidden, ["action": "status"])
            #expect((hiddenReply.json?["error"] as? [String: Any])?["code"] as? String == "not_found", "enable=0 hides it")

            let log = b.log
            func count(_ s: String) -> Int { log.components(separatedBy: s).count - 1 }
            #expect(count("docker/\(timeout): idlewatcher.stop_timeout=abc: not a duration") == 1, "\(log.suffix(3000))")
            #expect(count("docker/\(allow): idlewatcher.allow=foo,status: unknown action foo") == 1)
            #expect(count("docker/\(empty): idlewatcher.allow is empty; it is ignored") == 1)
            #expect(count("docker/\(idle): idlewatcher.idle_timeout=soon: not a duration") == 1)
            // A second listing (dockerd restarts are costly; a broker reconnect resyncs): still once.
            await env.broker.stop()
            try await env.broker.start()
            try await eventually("online again") {
                env.observer.messages(on: env.stateTopic).filter { $0.payload == "online" }.count >= 2
            }
            _ = try await env.command(timeout, ["action": "status"])
            #expect(b.log.components(separatedBy: "docker/\(timeout): idlewatcher.stop_timeout=abc").count - 1 == 1)
        }
    }

    @Test("clearing a retained command with an empty retained message is a clear: no warning, no reply")
    func clearingARetainedCommand() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("clear")
            let b = try await env.startBridge()
            try await env.waitForStatus(name, "running")
            try env.send(name, "pause", retain: true)
            try await eventually("the warning for the retained command") { b.log.contains("ignored a retained command") }
            try env.send(name, "", retain: true)
            // A round trip after it: the clear was handled before this reply.
            _ = try await env.command(name, ["action": "status", "request_id": "after"])
            #expect(b.log.components(separatedBy: "ignored a retained command").count - 1 == 1, "\(b.log.suffix(2000))")
            #expect(env.observer.messages(on: env.topic(name, "reply")).allSatisfy { $0.string("request_id") == "after" })
            #expect(env.docker.state(name) == "running")
        }
    }

    @Test("check-config --runtimes lists the containers' label problems (warnings, exit 0)")
    func checkConfigRuntimes() async throws {
        try await withEnvironment { env in
            let bad = try env.docker.run("bad", labels: ["idlewatcher.stop_timeout": "abc", "idlewatcher.idle_action": "nap"])
            let good = try env.docker.run("good", labels: ["idlewatcher.idle_timeout": "5m"])
            let dir = try makeTemporaryDirectory("checkconfig")
            let file = dir.appendingPathComponent("c.yaml")
            try BridgeProcess.dockerConfig(
                bridgeID: env.bridgeID, broker: env.broker, dockerExtra: "    include: [\(bad), \(good)]"
            )
            .write(to: file, atomically: true, encoding: .utf8)
            let (status, output) = try run([BridgeProcess.executable, "check-config", "--config", file.path, "--runtimes"])
            #expect(status == 0, "\(output)")
            #expect(output.contains("warning: docker/\(bad): idlewatcher.stop_timeout=abc: not a duration"), "\(output)")
            #expect(
                output.contains("warning: docker/\(bad): idlewatcher.idle_action=nap: expected stop, pause or kill"), "\(output)")
            #expect(!output.contains("docker/\(good):"), "\(output)")
            #expect(output.contains("2 container(s) exposed, 2 label problem(s)"), "\(output)")
        }
    }
}
