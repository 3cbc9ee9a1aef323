import Foundation
import IdlewatcherTesting
import Testing

/// When the Docker event stream comes back, what happened meanwhile is published in the order
/// it happened: the missed event first, then the resync's status, whose `since` is the event's
/// time (not the moment of the listing).
@Suite("Events missed while the engine was away")
struct ReplayOrderTests {
    @Test("the missed event goes out before the resync status, and the status's since is the event's time")
    func missedEventThenStatus() async throws {
        try await withEnvironment { env in
            let name = try env.docker.run("replay")
            let dir = try makeTemporaryDirectory("proxy")
            let socket = dir.appendingPathComponent("docker.sock").path
            // A socat proxy in front of dockerd: killing it cuts the bridge's event stream while
            // dockerd (and the container) go on.
            func startProxy() throws -> ChildProcess {
                try ChildProcess(
                    ["socat", "UNIX-LISTEN:\(socket),fork,unlink-early", "UNIX-CONNECT:/var/run/docker.sock"],
                    log: dir.appendingPathComponent("socat.log"))
            }
            func killProxy() throws { _ = try run(["pkill", "-KILL", "-f", "UNIX-LISTEN:\(socket)"]) }
            var proxy = try startProxy()  // kept: a ChildProcess ends its process when it goes
            defer { try? killProxy() }
            try await eventually("the proxy to listen") { FileManager.default.fileExists(atPath: socket) }
            let yaml = BridgeProcess.dockerConfig(bridgeID: env.bridgeID, broker: env.broker)
                .replacingOccurrences(of: "unix:///var/run/docker.sock", with: "unix://\(socket)")
            env.bridge = try BridgeProcess(yaml: yaml + "\n", bridgeID: env.bridgeID)
            try await env.waitForStatus(name, "running")

            try killProxy()
            try await eventually("the bridge to lose the stream") { env.bridge!.log.contains("lost Docker events") }
            try env.docker.cli("pause", name)
            let paused = try env.docker.cli("inspect", "-f", "{{.State.Status}}", name)
            #expect(paused == "paused")
            proxy = try startProxy()
            try await env.waitForStatus(name, "paused", timeout: .seconds(30))
            _ = proxy
            try await env.observer.waitFor(env.topic(name, "event")) { $0.string("action") == "pause" }

            let all = env.observer.messages.filter {
                $0.topic == env.topic(name, "event") || $0.topic == env.topic(name, "status")
            }
            let eventIndex = try #require(all.firstIndex { $0.topic.hasSuffix("/event") && $0.string("action") == "pause" })
            let statusIndex = try #require(all.firstIndex { $0.topic.hasSuffix("/status") && $0.string("status") == "paused" })
            #expect(eventIndex < statusIndex, "the status went out before the event it follows: \(all.map(\.description))")
            let event = all[eventIndex]
            let status = all[statusIndex]
            #expect(
                status.string("since") == event.string("time"),
                "since \(status.string("since") ?? "-") ≠ event time \(event.string("time") ?? "-")")
        }
    }
}
