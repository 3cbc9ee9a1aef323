import Foundation
import IdlewatcherCore
import IdlewatcherTesting
import Testing

extension ProxmoxProviderTests {
    /// A CT created while the bridge runs is listed at once, but with `status: unknown` and no
    /// name until pvestatd's next update (the simulator's `--resources-lag`). `unknown` means "no
    /// data yet", not a broken guest.
    @Suite struct NewGuest {
        @Test func aCTCreatedWhileTheBridgeRunsIsACreateEventWithItsTrueStatusAndName() async throws {
            try await withSimulator(.https, cts: 2, extra: ["--resources-lag", "3"]) { sim in
                let env = try await ProxmoxBridge.start(sim, setup: .httpsTrustedCAWithToken)
                try await env.waitForStatus("100", "running")
                _ = try await sim.sim("POST", "/ct", ["vmid": 120, "node": "pve1", "name": "fresh", "status": "running"])
                let create = try await env.observer.waitFor(env.topic("120", "event"), timeout: .seconds(20)) {
                    $0.string("action") == "create"
                }
                #expect(create.string("status") == "running", "\(create.payload)")
                #expect(create.string("name") == "fresh", "\(create.payload)")
                try await env.waitForStatus("120", "running")
                // Let pvestatd catch up (two lags), then look at everything published for it.
                try await Task.sleep(for: .seconds(7))  // the simulator's pvestatd clock, not synchronisation
                let statuses = env.observer.messages(on: env.topic("120", "status")).map(\.payload)
                #expect(!statuses.contains { $0.contains(#""status":"error""#) }, "\(statuses)")
                #expect(!statuses.contains { $0.contains(#""name":"CT120""#) }, "\(statuses)")
                let events = env.observer.messages(on: env.topic("120", "event")).compactMap { $0.string("action") }
                #expect(events == ["create"], "\(events)")
                // The other CTs were not resynced as if a node had gone away.
                #expect(!env.bridge.log.contains("is offline"), "\(env.bridge.log.suffix(2000))")
                await env.stop()
            }
        }
    }
}
