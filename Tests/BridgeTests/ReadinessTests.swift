import Foundation
import IdlewatcherTesting
import Testing

/// Readiness (contract v1.1): `start`, `wake`, `unpause` and `restart` answer once the
/// container is healthy, bounded by its wake timeout; statuses carry `health`.
@Suite("Readiness on real Docker and Podman containers")
struct ReadinessTests {
    /// Becomes healthy `after` seconds after it starts (its check: `cat /healthy`).
    static func slowHealthy(after seconds: Int) -> [String] {
        ["/bin/sh", "-c", "sleep \(seconds); echo ok > /healthy; exec sleep 100000"]
    }
    static let healthOptions = ["--health-cmd", "cat /healthy", "--health-interval", "1s", "--health-retries", "1"]

    @Test("wake of a container whose healthcheck passes after 3 s replies after that, with ready: true")
    func wakeWaitsForHealthy() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("slow", command: Self.slowHealthy(after: 3), start: false, options: Self.healthOptions)
            try await env.startBridge()
            try await env.waitForStatus(name, "stopped")
            let sent = ContinuousClock.now
            let reply = try await env.command(name, ["action": "wake"], timeout: .seconds(30))
            let took = ContinuousClock.now - sent
            #expect(reply.json?["ok"] as? Bool == true, "\(reply.payload)")
            #expect(reply.json?["ready"] as? Bool == true, "\(reply.payload)")
            #expect(reply.string("status") == "running")
            #expect(took >= .seconds(3), "replied after \(took), before the container could be healthy")
            let health = try env.docker.cli("inspect", "-f", "{{.State.Health.Status}}", name)
            #expect(health == "healthy")
            try await eventually("the status says healthy") {
                env.observer.messages(on: env.topic(name, "status")).last?.string("health") == "healthy"
            }
        }
    }

    @Test("a container that never turns healthy: timeout after its wake_timeout, left running, ready: false")
    func neverHealthy() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run(
                "sick", labels: ["idlewatcher.wake_timeout": "3s"], command: ["/bin/sleep", "100000"], start: false,
                options: Self.healthOptions)
            try await env.startBridge()
            try await env.waitForStatus(name, "stopped")
            let sent = ContinuousClock.now
            let reply = try await env.command(name, ["action": "start"], timeout: .seconds(30))
            let took = ContinuousClock.now - sent
            let error = reply.json?["error"] as? [String: Any]
            #expect(error?["code"] as? String == "timeout", "\(reply.payload)")
            #expect((error?["message"] as? String)?.contains("within 3 s") == true, "\(reply.payload)")
            #expect(reply.json?["ready"] as? Bool == false)
            #expect(reply.string("status") == "running", "left as it is")
            #expect(took >= .seconds(3) && took < .seconds(15), "\(took)")
            #expect(env.docker.state(name) == "running")
            #expect(
                ["starting", "unhealthy"].contains(
                    env.observer.messages(on: env.topic(name, "status")).last?.string("health") ?? ""))
        }
    }

    @Test("without a healthcheck, ready as soon as it runs; health none")
    func noHealthcheck() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("plain", start: false)
            try await env.startBridge()
            try await env.waitForStatus(name, "stopped")
            let reply = try await env.command(name, ["action": "start"])
            #expect(reply.json?["ready"] as? Bool == true, "\(reply.payload)")
            try await env.waitForStatus(name, "running")
            #expect(env.observer.messages(on: env.topic(name, "status")).last?.string("health") == "none")
            let stop = try await env.command(name, ["action": "stop", "timeout": 1])
            #expect(stop.json?["ready"] == nil, "stop says nothing of readiness: \(stop.payload)")
        }
    }

    @Test("Podman: the bridge runs the healthcheck itself while it waits (no systemd timers here)")
    func podmanHealth() async throws {
        try await withPodman { env in
            let name = try env.podman.run("slow", command: Self.slowHealthy(after: 2), start: false, options: Self.healthOptions)
            try await env.startBridge()
            try await env.waitForStatus(name, "stopped")
            let sent = ContinuousClock.now
            let reply = try await env.command(name, ["action": "wake"], timeout: .seconds(30))
            #expect(reply.json?["ok"] as? Bool == true, "\(reply.payload)")
            #expect(reply.json?["ready"] as? Bool == true)
            #expect(ContinuousClock.now - sent >= .seconds(2))
            #expect(env.podman.health(name) == "healthy")
        }
    }
}
