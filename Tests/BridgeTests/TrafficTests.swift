import Foundation
import IdlewatcherTesting
import Testing

/// Network traffic as activity on Docker and Podman (contract v1.1, "Idle policy": the engine's
/// one-shot stats, read every `traffic_interval` for idle-managed containers that watch traffic).
///
/// Two containers on the engine's bridge network ping its gateway about four times a second
/// for 12 s (about 47 kB a minute in and out). One watches traffic at 10KB a minute and must stay
/// awake while it pings, then sleep a whole timeout after its last traffic; the other's
/// threshold (1GB) is never reached, so it sleeps on its timer as if nothing moved.
@Suite("Idle: network traffic as activity, Docker and Podman")
struct TrafficTests {
    static let pings = 48  // at 0.25 s: 12 s of traffic
    // Docker answers a stats read about a second after it is asked (its collector's tick), so
    // with a 1 s traffic_interval a rate is known about 3 s after the bridge first reads.
    static let timeout = 5.0
    static let idle = "timeout: 5s"

    /// What both runtimes must show, from the idle states, statuses and engine states a user sees.
    /// - Parameters:
    ///   - idleState: the last idle state of a container; `statusTime`: when its status turned so.
    ///   - running: the engine's own word for the container, now.
    static func check(
        busy: String, quiet: String, firstSeen: Double, pingsStarted: Double,
        idleStates: (String) -> [ObservedMessage], statusTime: (String, String) -> Double?,
        running: (String) -> Bool, waitStopped: (String) async throws -> Void
    ) async throws {
        // The quiet one's traffic is under its threshold: asleep on its timer.
        try await waitStopped(quiet)
        let quietStopped = try #require(statusTime(quiet, "stopped"))
        #expect(quietStopped - firstSeen < timeout + 1.5, "the 1GB threshold kept it awake: \(quietStopped - firstSeen) s")
        // Meanwhile the busy one is kept awake by its traffic: running, and touched since.
        #expect(running(busy), "the container moving traffic was put to sleep with the quiet one")
        let touches = Set(idleStates(busy).compactMap { $0.string("last_activity") })
        #expect(touches.count >= 2, "traffic touched the idle state \(touches.count - 1) times: \(touches.sorted())")
        // Then, once the pings end, it sleeps a whole timeout after the last traffic seen.
        try await waitStopped(busy)
        let busyStopped = try #require(statusTime(busy, "stopped"))
        let lastState = try #require(
            idleStates(busy).last { $0.string("last_activity") != nil && $0.receivedAt <= busyStopped })
        let lastActivity = try #require(lastState.string("last_activity").flatMap(IdleTests.seconds))
        #expect(busyStopped - lastActivity >= timeout, "asleep \(busyStopped - lastActivity) s after its last traffic")
        #expect(busyStopped - lastActivity < timeout + 2.5, "asleep \(busyStopped - lastActivity) s after its last traffic")
        // Awake for as long as it pinged (it would have slept about 5 s after the bridge came up).
        let pingsEnded = pingsStarted + Double(pings) * 0.25
        #expect(busyStopped > pingsEnded, "asleep \(pingsEnded - busyStopped) s before its traffic ended")
    }

    @Test("Docker: traffic over the threshold keeps a container awake until a timeout after it ends; under it, asleep on time")
    func docker() async throws {
        try await withEnvironment { env in
            let gateway = try env.docker.cli(
                "network", "inspect", "bridge", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}")
            let stopper = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
            let busy = try env.docker.run("busy", command: stopper, network: "bridge")
            let quiet = try env.docker.run("quiet", command: stopper, network: "bridge")
            let pingsStarted = Date().timeIntervalSince1970
            for name in [busy, quiet] {
                try env.docker.cli("exec", "-d", name, "/bin/busybox", "ping", "-q", "-c", "\(Self.pings)", "-i", "0.25", gateway)
            }
            try await env.startBridge(
                extra: """
                    idle:
                      traffic_interval: 1s
                      containers:
                        docker/\(busy): {\(Self.idle), traffic_threshold: 10KB}
                        docker/\(quiet): {\(Self.idle), traffic_threshold: 1GB}
                    """)
            let first = try await env.observer.waitFor(env.topic(busy, "idle")) { !$0.payload.isEmpty }
            let firstSeen = try #require(first.string("last_activity").flatMap(IdleTests.seconds))
            try await Self.check(
                busy: busy, quiet: quiet, firstSeen: firstSeen, pingsStarted: pingsStarted,
                idleStates: { env.observer.messages(on: env.topic($0, "idle")) },
                statusTime: { env.statusTime($0, $1) },
                running: { env.docker.state($0) == "running" },
                waitStopped: { try await env.waitForStatus($0, "stopped", timeout: .seconds(30)) })
            #expect(env.docker.state(busy) == "exited" && env.docker.state(quiet) == "exited")
        }
    }

    @Test("Podman: traffic over the threshold keeps a container awake until a timeout after it ends; under it, asleep on time")
    func podman() async throws {
        try await withPodman { env in
            let gateway = try env.podman.cli(
                "network", "inspect", "podman", "-f", "{{range .Subnets}}{{.Gateway}}{{end}}")
            let stopper = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
            // Podman drops NET_RAW by default, which busybox's ping needs.
            let options = ["--cap-add", "NET_RAW"]
            let busy = try env.podman.run("busy", command: stopper, network: "podman", options: options)
            let quiet = try env.podman.run("quiet", command: stopper, network: "podman", options: options)
            let pingsStarted = Date().timeIntervalSince1970
            for name in [busy, quiet] {
                try env.podman.cli(
                    ["exec", "-d", name, "/bin/busybox", "ping", "-q", "-c", "\(Self.pings)", "-i", "0.25", gateway])
            }
            try await env.startBridge(
                extra: """
                    homeassistant:
                      enabled: false
                    idle:
                      traffic_interval: 1s
                      containers:
                        podman/\(busy): {\(Self.idle), traffic_threshold: 10KB}
                        podman/\(quiet): {\(Self.idle), traffic_threshold: 1GB}
                    """)
            let first = try await env.observer.waitFor(env.topic(busy, "idle")) { !$0.payload.isEmpty }
            let firstSeen = try #require(first.string("last_activity").flatMap(IdleTests.seconds))
            let statusTime = { (id: String, status: String) in
                env.observer.messages(on: env.topic(id, "status")).last { $0.string("status") == status }?.receivedAt
            }
            try await Self.check(
                busy: busy, quiet: quiet, firstSeen: firstSeen, pingsStarted: pingsStarted,
                idleStates: { env.observer.messages(on: env.topic($0, "idle")) },
                statusTime: statusTime,
                running: { env.podman.state($0) == "running" },
                waitStopped: { try await env.waitForStatus($0, "stopped", timeout: .seconds(30)) })
            #expect(env.podman.state(busy) == "exited" && env.podman.state(quiet) == "exited")
        }
    }
}
