import Foundation
import IdlewatcherCore
import IdlewatcherTesting
import Testing

extension ProxmoxProviderTests {
    /// The idle policy and readiness on Proxmox CTs (the simulator's HTTPS API).
    @Suite struct Idle {
        @Test func aCTIsStoppedByItsTimerAndAnotherKeptAwakeByItsTraffic() async throws {
            try await withSimulator(.https, cts: 3) { sim in
                // The simulator's running CTs move about 130 kB a minute: 10 kB/min is traffic, 1 GB/min is not.
                let idle = """
                    idle:
                      traffic_interval: 1s
                      containers:
                        proxmox/100: {timeout: 3s, traffic_threshold: 1GB}
                        proxmox/101: {timeout: 3s, traffic_threshold: 10KB}
                    """
                let env = try await ProxmoxBridge.start(sim, setup: .httpsTrustedCAWithToken, extra: idle)
                try await env.waitForStatus("100", "running")
                let started = Date().timeIntervalSince1970
                try await env.observer.waitFor(env.topic("100", "status"), timeout: .seconds(20)) {
                    $0.string("status") == "stopped"
                }
                let stopped = try #require(env.observer.messages(on: env.topic("100", "status")).last?.receivedAt)
                #expect(stopped - started >= 2.5, "stopped \(stopped - started) s after the bridge came up")
                let events = env.observer.messages(on: env.topic("100", "event")).compactMap { $0.string("action") }
                #expect(events == ["stop"], "\(events)")
                // 101 moves traffic: its idle state keeps being touched and it keeps running.
                let lastActivity = { env.observer.messages(on: env.topic("101", "idle")).last?.string("last_activity") }
                let first = lastActivity()
                try await eventually("a touch from traffic", timeout: .seconds(10)) { lastActivity() != first }
                let end = ContinuousClock.now + .seconds(5)
                while ContinuousClock.now < end {
                    #expect(env.observer.messages(on: env.topic("101", "status")).last?.string("status") == "running")
                    try await Task.sleep(for: .milliseconds(250))
                }
                // No extra request for traffic: the counters come from the poll the bridge makes anyway.
                // Every request kind the bridge made: polling, the stop and its confirmation. No
                // per-guest statistics read (rrddata, status/current of a CT that did not change).
                let stats = try await sim.stats()
                let expected: Set<String> = [
                    "GET /cluster/resources", "GET /cluster/tasks", "GET /nodes/{node}/lxc/{vmid}/status/current",
                    "POST /nodes/{node}/lxc/{vmid}/status/shutdown", "GET /nodes/{node}/tasks/{upid}/status",
                    "GET /nodes/{node}/tasks",
                ]
                #expect(Set(stats.keys).isSubset(of: expected), "\(stats)")
                #expect((stats["GET /nodes/{node}/lxc/{vmid}/status/current"] ?? 0) <= 4, "\(stats)")
                await env.stop()
            }
        }

        @Test func wakeOfACTRepliesOnceItReportsAnAddress() async throws {
            try await withSimulator(.https, cts: 2) { sim in
                try await sim.change(101, ["status": "stopped", "ip_delay": 2])
                let env = try await ProxmoxBridge.start(sim, setup: .httpsTrustedCAWithToken)
                try await env.waitForStatus("101", "stopped")
                let sent = ContinuousClock.now
                let reply = try await env.command("101", ["action": "wake"], timeout: .seconds(30))
                let took = ContinuousClock.now - sent
                #expect(reply.json?["ok"] as? Bool == true, "\(reply.payload)")
                #expect(reply.json?["ready"] as? Bool == true)
                #expect(took >= .seconds(2), "replied after \(took), before the CT had an address")
                let stats = try await sim.stats()
                #expect((stats["GET /nodes/{node}/lxc/{vmid}/interfaces"] ?? 0) >= 1, "\(stats)")
                await env.stop()
            }
        }
    }
}
