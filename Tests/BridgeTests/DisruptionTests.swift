import Foundation
import IdlewatcherTesting
import Testing

/// The broker and dockerd go away mid-run and come back: nothing lost, statuses right, commands work.
@Suite("Broker and Docker restarts")
struct DisruptionTests {
    @Test(
        "broker restarted mid-run: every event of the outage delivered once, in order; statuses resynced; commands work",
        arguments: MQTTVersion.allCases)
    func brokerRestart(_ mqtt: MQTTVersion) async throws {
        try await withEnvironment(persistentBroker: true, mqtt: mqtt) { env in
            let name = try env.docker.run("outage")
            try await env.startBridge()
            try await env.waitForStatus(name, "running")

            let since = Date()
            let other = try env.docker.run("outage2")
            let dockerName = try DockerEventRecorder(container: name, since: since)
            let dockerOther = try DockerEventRecorder(container: other, since: since)
            try await env.waitForStatus(other, "running")

            // A command round trip first: once its reply is seen, the bridge has read the broker's
            // PUBACKs for every event before it, so none is in flight (QoS 1 would resend it, and
            // a resend after a restart is a duplicate, which this test must not count).
            _ = try await env.command(name, ["action": "status"])
            // 30 s without a broker while both containers change.
            await env.broker.stop()
            let outageEnds = ContinuousClock.now + .seconds(30)
            try env.docker.cli("pause", name)
            try env.docker.cli("stop", "-t", "0", other)
            try env.docker.cli("unpause", name)
            try env.docker.cli("start", other)
            try env.docker.cli("pause", name)
            try await Task.sleep(until: outageEnds)  // the outage itself, not a synchronisation
            let onlineBefore = env.liveOnlineCount()
            try await env.broker.start()

            try await eventually("Docker's record of the outage") {
                dockerName.events.count >= 3 && dockerOther.events.filter { $0.action == "start" }.count >= 2
            }
            let (truthName, truthOther) = (dockerName.events, dockerOther.events)
            #expect(truthName.map(\.action) == ["pause", "unpause", "pause"], "\(truthName)")
            try await eventually("online again", timeout: .seconds(60)) {
                env.liveOnlineCount() > onlineBefore
            }
            // The reply is queued behind every event kept from the outage: once it is seen, all
            // of them have been delivered.
            _ = try await env.command(name, ["action": "status"])
            // Every event Docker recorded (for `other` also its create and start before the
            // outage), each exactly once, in Docker's order, with Docker's times.
            #expect(env.seenEvents(name) == truthName, "Docker: \(truthName)\nseen: \(env.seenEvents(name))")
            #expect(env.seenEvents(other) == truthOther, "Docker: \(truthOther)\nseen: \(env.seenEvents(other))")
            try await env.waitForStatus(other, "running")
            try await env.waitForStatus(name, "paused")
            #expect(try await env.retainedStatus(name) == "paused")
            #expect(try await env.retainedStatus(other) == "running")
            #expect(try await env.retainedState() == "online")
            let r = try await env.command(name, ["action": "unpause"])
            #expect(r.json?["ok"] as? Bool == true)
            #expect(env.docker.state(name) == "running")
        }
    }

    @Test("dockerd restarted mid-run: commands say unavailable meanwhile; afterwards statuses resync and commands work")
    func dockerRestart() async throws {
        try await withEnvironment { env in
            let name = try env.docker.runQuickStopper("dockerd")
            try await env.startBridge()
            try await env.waitForStatus(name, "running")

            let (_, pids) = try run(["pidof", "dockerd"])
            let pid = pids.split(separator: " ").first.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            try #require(!pid.isEmpty, "dockerd must be running")
            try run(["kill", "-TERM", pid])
            try await eventually("dockerd to exit", timeout: .seconds(60)) {
                try !DockerFixture.ping() && run(["pidof", "dockerd"]).status != 0
            }

            let down = try await env.command(name, ["action": "wake"])
            #expect((down.json?["error"] as? [String: Any])?["code"] as? String == "unavailable", "\(down.payload)")
            #expect(((down.json?["error"] as? [String: Any])?["message"] as? String)?.contains("docker.sock") == true)

            try await DockerFixture.ensureEngine()
            try await env.waitForStatus(name, "stopped", timeout: .seconds(60))
            let up = try await env.command(name, ["action": "wake"])
            #expect(up.json?["ok"] as? Bool == true, "\(up.payload)")
            #expect(env.docker.state(name) == "running")
            try await env.waitForStatus(name, "running")
        }
    }
}

extension DisruptionTests {
    @Test("dockerd absent at start: the bridge starts, answers unavailable, and recovers when dockerd comes")
    func dockerAbsentAtStart() async throws {
        try await withEnvironment { env in
            let name = try env.docker.runQuickStopper("late")
            try env.docker.cli("stop", "-t", "0", name)
            let (_, pids) = try run(["pidof", "dockerd"])
            let pid = pids.split(separator: " ").first.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            try #require(!pid.isEmpty, "dockerd must be running")
            try run(["kill", "-TERM", pid])
            try await eventually("dockerd to exit", timeout: .seconds(60)) {
                try !DockerFixture.ping() && run(["pidof", "dockerd"]).status != 0
            }

            try await env.startBridge()
            let r = try await env.command(name, ["action": "wake"])
            #expect((r.json?["error"] as? [String: Any])?["code"] as? String == "unavailable", "\(r.payload)")
            #expect(env.bridge!.child.isRunning)

            try await DockerFixture.ensureEngine()
            try await env.waitForStatus(name, "stopped", timeout: .seconds(60))
            let up = try await env.command(name, ["action": "wake"])
            #expect(up.json?["ok"] as? Bool == true, "\(up.payload)")
            #expect(env.docker.state(name) == "running")
        }
    }
}
