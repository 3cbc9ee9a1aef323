import Foundation
import IdlewatcherCore
import IdlewatcherTesting
import ProxmoxProvider
import Testing

let pollInterval = Duration.milliseconds(300)
/// "Within two poll intervals", plus the confirmation requests and some scheduling slack.
let twoPolls = pollInterval * 2 + .milliseconds(500)

extension ProxmoxProviderTests {
    @Suite struct Watching {
        /// Makes an outside change and expects the event `action` with `status` within two polls.
        func expectEvent(
            _ sim: PVESimulator, _ updates: UpdateRecorder, _ id: String, _ action: String, _ status: ContainerStatus,
            sourceLocation: SourceLocation = #_sourceLocation, after change: () async throws -> Void
        ) async throws {
            let before = updates.events(id).count
            let changed = ContinuousClock.now
            try await change()
            try await eventually("\(action) of \(id); saw \(updates.actions(id))", timeout: twoPolls) {
                updates.events(id).count > before
            }
            let e = updates.events(id)[before]
            let delay = ContinuousClock.now - changed
            #expect(e.action == action, "\(updates.actions(id))", sourceLocation: sourceLocation)
            #expect(e.status == status, sourceLocation: sourceLocation)
            #expect(delay <= twoPolls, "the event came \(delay) after the change", sourceLocation: sourceLocation)
            // One event for one change: a late duplicate or a wrong second event would show here.
            try await waitForPolls(sim, 2)
            #expect(updates.events(id).count == before + 1, "\(updates.actions(id))", sourceLocation: sourceLocation)
        }

        /// Waits until the runtime has polled `n` more times (counted by the simulator).
        func waitForPolls(_ sim: PVESimulator, _ n: Int) async throws {
            let start = try await sim.stats()["GET /cluster/resources", default: 0]
            try await eventually("\(n) more polls") { try await sim.stats()["GET /cluster/resources", default: 0] >= start + n }
        }

        @Test func outsideChangesAreEventsWithinTwoPollIntervals() async throws {
            try await withSimulator(.https, cts: 3, nodes: ["pve1", "pve2"]) { sim in
                let runtime = try sim.runtime(idPrefix: "c1-", pollInterval: pollInterval)
                try await watching(runtime) { updates in
                    try await eventually("the first resync") { updates.resyncs == 1 }
                    #expect(updates.count == 1)

                    try await expectEvent(sim, updates, "c1-101", "stop", .stopped) {
                        try await sim.change(101, ["status": "stopped"])
                    }
                    let stop = updates.events("c1-101")[0]
                    #expect(stop.ref == "pve2/101" && stop.name == "ct101")
                    #expect(stop.attributes == ["node": "pve2", "vmid": "101"])
                    try await expectEvent(sim, updates, "c1-101", "start", .running) {
                        try await sim.change(101, ["status": "running"])
                    }
                    try await expectEvent(sim, updates, "c1-101", "pause", .paused) {
                        try await sim.change(101, ["suspended": true])
                    }
                    try await expectEvent(sim, updates, "c1-101", "unpause", .running) {
                        try await sim.sim("POST", "/ct/101/action/resume")
                    }
                    try await expectEvent(sim, updates, "c1-101", "stop", .stopped) {
                        try await sim.sim("POST", "/ct/101/action/shutdown")
                    }
                    // Nothing else happened to the other CTs.
                    #expect(updates.events("c1-100").isEmpty && updates.events("c1-102").isEmpty)
                    #expect(updates.resyncs == 1 && updates.unavailable.isEmpty)
                }
                await runtime.close()
            }
        }

        @Test func theBridgesOwnOperationsAreEventsToo() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime(pollInterval: pollInterval)
                try await watching(runtime) { updates in
                    try await eventually("the first resync") { updates.resyncs == 1 }
                    let p = runtime.provider(for: "100")
                    try await expectEvent(sim, updates, "100", "pause", .paused) { try await p.pause() }
                    try await expectEvent(sim, updates, "100", "unpause", .running) { try await p.wake() }
                    try await expectEvent(sim, updates, "100", "stop", .stopped) { try await p.kill(signal: nil) }
                    try await expectEvent(sim, updates, "100", "start", .running) { try await p.start() }
                    // One event per change, however many polls saw it.
                    try await sim.resetStats()
                    try await eventually("two more polls") { try await sim.stats()["GET /cluster/resources", default: 0] >= 2 }
                    #expect(updates.actions("100") == ["pause", "unpause", "stop", "start"])
                }
                await runtime.close()
            }
        }

        @Test func aCTCreatedOrDestroyedWhileWatchedIsAnEvent() async throws {
            try await withSimulator(.https, cts: 2) { sim in
                let runtime = try sim.runtime(pollInterval: pollInterval)
                try await watching(runtime) { updates in
                    try await eventually("the first resync") { updates.resyncs == 1 }
                    try await expectEvent(sim, updates, "200", "create", .running) {
                        try await sim.sim("POST", "/ct", ["vmid": 200, "name": "fresh", "status": "running"])
                    }
                    #expect(updates.events("200")[0].name == "fresh")
                    #expect(try await runtime.containers().map(\.id) == ["100", "101", "200"])
                    try await expectEvent(sim, updates, "101", "destroy", .stopped) {
                        try await sim.sim("DELETE", "/ct/101")
                    }
                    #expect(updates.events("101")[0].ref == "pve1/101")
                    await expectError(.notFound) { _ = try await runtime.provider(for: "101").status() }
                    // A template is never exposed.
                    try await sim.sim("POST", "/ct", ["vmid": 300, "template": true])
                    try await expectEvent(sim, updates, "201", "create", .stopped) {
                        try await sim.sim("POST", "/ct", ["vmid": 201])
                    }
                    #expect(updates.events("300").isEmpty)
                }
                await runtime.close()
            }
        }

        @Test(
            "a node down: its guests keep their last status, unreachable (never error); commands unavailable; back with a resync")
        func aNodeDownKeepsTheLastStatusAndComesBackWithAResync() async throws {
            try await withSimulator(.https, cts: 4, nodes: ["pve1", "pve2"]) { sim in
                let logs = LogRecorder()
                let runtime = try sim.runtime(pollInterval: pollInterval, logs: logs)
                try await watching(runtime) { updates in
                    try await eventually("the first resync") { updates.resyncs == 1 }
                    try await sim.sim("POST", "/node/pve2", ["online": false])
                    try await eventually("a resync for the node going away", timeout: twoPolls) { updates.resyncs == 2 }
                    let during = try await runtime.containers()
                    #expect(during.map(\.status) == [.running, .running, .running, .running])
                    #expect(during.map(\.reachable) == [true, false, true, false])
                    let e = await expectError(.unavailable) { _ = try await runtime.provider(for: "101").status() }
                    #expect(e?.message.contains("Connection refused") == true, "\(String(describing: e))")
                    #expect(try await runtime.provider(for: "100").status() == .running)
                    #expect(
                        logs.all.contains { $0.hasPrefix("warning node pve2") && $0.contains("offline") }, "\(logs.all.suffix(5))"
                    )

                    try await sim.change(101, ["status": "stopped"])
                    try await sim.sim("POST", "/node/pve2", ["online": true])
                    try await eventually("a resync for the node coming back", timeout: twoPolls) { updates.resyncs == 3 }
                    #expect(try await runtime.containers().map(\.status) == [.running, .stopped, .running, .running])
                    #expect(updates.unavailable.isEmpty)
                }
                await runtime.close()
            }
        }

        @Test func anAPIOutageIsUnavailableOnceThenAResync() async throws {
            try await withSimulator(.https) { sim in
                let logs = LogRecorder()
                let runtime = try sim.runtime(pollInterval: pollInterval, logs: logs)
                try await watching(runtime) { updates in
                    try await eventually("the first resync") { updates.resyncs == 1 }
                    try await sim.sim("POST", "/fail", ["status": 503, "count": 3])
                    try await eventually("unavailable", timeout: twoPolls) { updates.unavailable.count == 1 }
                    #expect(updates.unavailable[0].message.contains("503"), "\(updates.unavailable)")
                    try await eventually("the resync after the outage") { updates.resyncs == 2 }
                    #expect(updates.unavailable.count == 1)
                    #expect(logs.all.filter { $0.hasPrefix("warning lost Proxmox") }.count == 1)
                }
                await runtime.close()
            }
        }

        @Test func aClusterThatGoesAwayIsUnavailableUntilItAnswersAgain() async throws {
            // Plain HTTP: the simulator that comes back on the same port makes a certificate of
            // its own, which the runtime (trusting the first one's) would rightly refuse.
            let first = try await PVESimulator.start(.http)
            var second: PVESimulator? = nil
            let runtime = try first.runtime(pollInterval: pollInterval)
            do {
                try await watching(runtime) { updates in
                    try await eventually("the first resync") { updates.resyncs == 1 }
                    await first.stop()
                    try await eventually("unavailable", timeout: twoPolls) { updates.unavailable.count == 1 }
                    let message = updates.unavailable[0].message
                    #expect(message.hasPrefix("cannot reach Proxmox at \(first.url)"), "\(message)")
                    second = try await PVESimulator.start(.http, port: first.port, secret: first.secret)
                    try await eventually("the resync when it is back") { updates.resyncs == 2 }
                    #expect(updates.unavailable.count == 1)
                }
            } catch {
                await first.stop()
                await second?.stop()
                throw error
            }
            await second?.stop()
            await runtime.close()
        }

        @Test func oneRuntimeStreamCarriesEveryCTsEventsOnceEach() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime(pollInterval: pollInterval)
                try await watching(runtime) { updates in
                    try await eventually("the first resync") { updates.resyncs == 1 }
                    try await sim.change(100, ["status": "stopped"])
                    try await sim.change(101, ["status": "stopped"])
                    try await eventually("both stops", timeout: twoPolls * 2) {
                        updates.actions("100") == ["stop"] && updates.actions("101") == ["stop"]
                    }
                    // Two more polls: a late duplicate or a wrong event would show up here.
                    try await sim.resetStats()
                    try await eventually("two more polls") { try await sim.stats()["GET /cluster/resources", default: 0] >= 2 }
                    #expect(updates.actions("100") == ["stop"])
                    #expect(updates.actions("101") == ["stop"])
                    #expect(updates.actions("102") == [])
                    #expect(updates.resyncs == 1)
                }
                await runtime.close()
            }
        }

        /// How many guests the runtime lists, how many are VMs, and how many VMs are paused.
        struct Census: Sendable {
            var all = 0
            var vms = 0
            var pausedVMs = 0

            init(_ runtime: ProxmoxRuntime) async throws {
                for c in try await runtime.containers() {
                    all += 1
                    if c.type == "qemu" {
                        vms += 1
                        if c.status == .paused { pausedVMs += 1 }
                    }
                }
            }
        }

        @Test("two cluster-wide requests per interval at rest, whatever the number of guests (1,000: half VMs)")
        func pollingCostsTwoRequestsPerIntervalWhateverTheNumberOfGuests() async throws {
            try await withSimulator(
                .https, cts: 500, nodes: ["pve1", "pve2"],
                extra: [
                    "--stopped-fraction", "0.3", "--vms", "500", "--vms-paused", "50", "--vms-stopped", "100", "--resources-lag",
                    "3",
                ]
            ) { sim in
                let runtime = try sim.runtime(pollInterval: pollInterval, types: Set(GuestType.allCases))
                let census = try await Census(runtime)
                #expect(census.all == 1000)
                #expect(census.vms == 500)
                #expect(census.pausedVMs == 50)
                try await watching(runtime) { updates in
                    try await eventually("the first resync") { updates.resyncs == 1 }
                    try await sim.resetStats()
                    let started = ContinuousClock.now
                    try await eventually("eight polls") { try await sim.stats()["GET /cluster/resources", default: 0] >= 8 }
                    let elapsed = ContinuousClock.now - started
                    let stats = try await sim.stats()
                    let polls = stats["GET /cluster/resources", default: 0]
                    let tasks = stats["GET /cluster/tasks", default: 0]
                    #expect(stats.keys.sorted() == ["GET /cluster/resources", "GET /cluster/tasks"], "\(stats)")
                    #expect(tasks >= polls - 1 && tasks <= polls + 1, "one task-list read per poll: \(stats)")
                    #expect(Double(polls) <= elapsed / pollInterval + 1.5, "\(polls) polls in \(elapsed)")
                    #expect(updates.count == 1)
                }
                await runtime.close()
            }
        }
    }
}
