import Foundation
import IdlewatcherCore
import ProxmoxProvider
import Testing

/// The provider against the simulator, one simulator per test. Serialized: the tests measure
/// time (poll intervals, shutdown timeouts), and the machine has two cores.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ProxmoxProviderTests {}

/// Expects `body` to throw a ``BridgeError`` with `code`; returns it.
@discardableResult
func expectError(
    _ code: ErrorCode, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> BridgeError? {
    do {
        try await body()
        Issue.record("expected \(code.rawValue), but it succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let e as BridgeError {
        #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected a BridgeError \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Drives CT 100 through every operation of the contract and checks what Proxmox ran.
func exerciseEveryOperation(_ runtime: ProxmoxRuntime, _ sim: PVESimulator) async throws {
    let p = runtime.provider(for: "100")
    #expect(try await p.status() == .running)

    try await p.stop(signal: nil, timeout: .seconds(5))
    #expect(try await p.status() == .stopped)
    #expect(try await sim.taskTypes(100).first == "vzshutdown")

    try await p.start()
    #expect(try await p.status() == .running)
    #expect(try await sim.taskTypes(100).first == "vzstart")

    try await p.kill(signal: nil)
    #expect(try await p.status() == .stopped)
    #expect(try await sim.taskTypes(100).first == "vzstop")

    try await p.wake()
    #expect(try await p.status() == .running)
    #expect(try await sim.taskTypes(100).first == "vzstart")

    try await p.pause()
    #expect(try await p.status() == .paused)
    #expect(try await sim.ct(100)["suspended"] as? Bool == true)

    try await p.unpause()
    #expect(try await p.status() == .running)
    #expect(try await sim.taskTypes(100).first == "vzresume")

    try await p.restart(timeout: .seconds(5))
    #expect(try await p.status() == .running)
    #expect(try await sim.taskTypes(100).first == "vzreboot")

    try await p.pause()
    try await p.wake()
    #expect(try await p.status() == .running)
    #expect(try await sim.taskTypes(100).prefix(2) == ["vzresume", "vzsuspend"])
}

extension ProxmoxProviderTests {
    @Suite struct Operations {
        @Test func everyOperationWorksOverHTTPSWithTheClusterCATrusted() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime()
                try await exerciseEveryOperation(runtime, sim)
                await runtime.close()
            }
        }

        @Test func everyOperationWorksWithInsecureSkipVerify() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime(trust: false, insecure: true)
                try await exerciseEveryOperation(runtime, sim)
                await runtime.close()
            }
        }

        @Test func everyOperationWorksOverPlainHTTP() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime()
                try await exerciseEveryOperation(runtime, sim)
                await runtime.close()
            }
        }

        @Test func anUntrustedCertificateIsUnavailableWithAHint() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime(trust: false)
                let e = await expectError(.unavailable) { _ = try await runtime.containers() }
                #expect(e?.message.contains(sim.url) == true, "\(e.map(String.init(describing:)) ?? "")")
                #expect(e?.message.contains("ca_file") == true)
                await runtime.close()
            }
        }

        @Test func listingNamesEveryExposedCTWithItsStatusInTwoRequests() async throws {
            try await withSimulator(.https, cts: 4, nodes: ["pve1", "pve2"]) { sim in
                try await sim.sim("POST", "/ct", ["vmid": 150, "node": "pve1", "template": true])
                try await sim.change(101, ["suspended": true])
                try await sim.change(103, ["status": "stopped"])
                try await sim.resetStats()
                let runtime = try sim.runtime(idPrefix: "pve2-")
                let list = try await runtime.containers()
                #expect(list.map(\.id) == ["pve2-100", "pve2-101", "pve2-102", "pve2-103"])
                #expect(list.map(\.status) == [.running, .paused, .running, .stopped])
                #expect(list[1].ref == "pve2/101" && list[1].model == "pve2" && list[1].name == "ct101")
                #expect(try await sim.stats() == ["GET /cluster/resources": 1, "GET /cluster/tasks": 1])

                let p = runtime.provider(for: "pve2-101")
                #expect(p.id == "pve2-101")
                #expect(try await p.status() == .paused)
                await runtime.close()
            }
        }

        @Test func nodesAndVmidsFilterWhatIsExposed() async throws {
            try await withSimulator(.https, cts: 6, nodes: ["pve1", "pve2"]) { sim in
                let runtime = try sim.runtime(nodes: ["pve2"], vmids: [101, 103, 104])
                #expect(try await runtime.containers().map(\.id) == ["101", "103"])
                let e = await expectError(.notFound) { _ = try await runtime.provider(for: "104").status() }
                #expect(e?.message.contains("node pve1") == true, "\(String(describing: e))")
                await expectError(.notFound) { try await runtime.provider(for: "105").start() }
                await runtime.close()
            }
        }

        @Test func aMissingCTIsNotFound() async throws {
            try await withSimulator(.https) { sim in
                try await sim.sim("POST", "/ct", ["vmid": 150, "template": true])
                let runtime = try sim.runtime()
                for id in ["999", "abc", "150", "-1"] {
                    await expectError(.notFound) { _ = try await runtime.provider(for: id).status() }
                    await expectError(.notFound) { try await runtime.provider(for: id).start() }
                }
                // Known at the listing, destroyed since: Proxmox's "does not exist" is not_found too.
                _ = try await runtime.containers()
                try await sim.sim("DELETE", "/ct/102")
                let e = await expectError(.notFound) { _ = try await runtime.provider(for: "102").status() }
                #expect(e?.message.contains("102") == true)
                await runtime.close()
            }
        }

        @Test func aLockedCTFailsWithProxmoxsMessage() async throws {
            try await withSimulator(.https) { sim in
                try await sim.change(101, ["lock": "backup"])
                try await sim.change(102, ["lock": "backup", "status": "stopped"])
                let runtime = try sim.runtime()
                let e1 = await expectError(.runtimeError) { try await runtime.provider(for: "102").start() }
                #expect(e1?.message.hasSuffix("CT is locked (backup)") == true, "\(String(describing: e1))")
                let e2 = await expectError(.runtimeError) {
                    try await runtime.provider(for: "101").stop(signal: nil, timeout: .seconds(2))
                }
                #expect(e2?.message.hasSuffix("CT is locked (backup)") == true, "\(String(describing: e2))")
                #expect(try await runtime.provider(for: "101").status() == .running)
                await runtime.close()
            }
        }

        @Test func aFailingSuspendIsARuntimeErrorAndTheCTKeepsRunning() async throws {
            try await withSimulator(.https) { sim in
                try await sim.change(101, ["fail_suspend": true])
                let runtime = try sim.runtime()
                let p = runtime.provider(for: "101")
                let e = await expectError(.runtimeError) { try await p.pause() }
                #expect(
                    e?.message.hasSuffix("command 'lxc-checkpoint -n 101 -s -D /var/lib/vz/dump' failed: exit code 1") == true,
                    "\(String(describing: e))")
                #expect(try await p.status() == .running)
                await runtime.close()
            }
        }

        @Test func aFailingStartPassesProxmoxsTextOn() async throws {
            try await withSimulator(.https) { sim in
                try await sim.change(101, ["fail_start": true, "status": "stopped"])
                let runtime = try sim.runtime()
                let e = await expectError(.runtimeError) { try await runtime.provider(for: "101").start() }
                #expect(e?.message.hasSuffix("startup for container '101' failed") == true, "\(String(describing: e))")
                await runtime.close()
            }
        }

        @Test func aMissingPrivilegeIsARuntimeErrorNamingIt() async throws {
            try await withSimulator(.https) { sim in
                let secret = UUID().uuidString.lowercased()
                try await sim.sim("POST", "/token", ["token": "audit@pve!ro=\(secret)", "privileges": ["VM.Audit"]])
                let configuration = ProxmoxEndpointConfiguration(
                    url: sim.url, credentials: .token(id: "audit@pve!ro", secret: secret), caFile: sim.caFile,
                    pollInterval: .milliseconds(300))
                let runtime = try ProxmoxRuntime(configuration: configuration, logger: .init(label: "test"))
                #expect(try await runtime.provider(for: "101").status() == .running)
                let e = await expectError(.runtimeError) { try await runtime.provider(for: "101").kill(signal: nil) }
                #expect(
                    e?.message.contains("Permission check failed (/vms/101, VM.PowerMgmt)") == true, "\(String(describing: e))")
                #expect(e?.message.contains(secret) == false)
                await runtime.close()
            }
        }

        @Test func aCTThatIgnoresShutdownIsForcedOffAfterTheTimeout() async throws {
            try await withSimulator(.https) { sim in
                try await sim.change(101, ["ignore_shutdown": true])
                let runtime = try sim.runtime()
                let p = runtime.provider(for: "101")
                let started = ContinuousClock.now
                try await p.stop(signal: nil, timeout: .seconds(1))
                #expect(ContinuousClock.now - started >= .seconds(1))
                #expect(try await p.status() == .stopped)
                #expect(try await sim.taskTypes(101).first == "vzshutdown")
                await runtime.close()
            }
        }

        @Test func suspendReadsPausedAndWakeResumesIt() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime()
                let p = runtime.provider(for: "101")
                try await p.pause()
                #expect(try await sim.ct(101)["status"] as? String == "stopped")
                #expect(try await p.status() == .paused)
                #expect(try await runtime.containers().first { $0.id == "101" }?.status == .paused)
                try await p.wake()
                #expect(try await p.status() == .running)
                #expect(try await sim.taskTypes(101).prefix(2) == ["vzresume", "vzsuspend"])
                await runtime.close()
            }
        }

        @Test func anHAManagedCTIsConfirmedAfterItsHATaskEnds() async throws {
            try await withSimulator(.https) { sim in
                try await sim.change(101, ["ha": true])
                let runtime = try sim.runtime()
                let p = runtime.provider(for: "101")
                try await p.stop(signal: nil, timeout: .seconds(5))
                #expect(try await sim.ct(101)["status"] as? String == "stopped")
                #expect(try await sim.taskTypes(101).prefix(2) == ["vzshutdown", "hastop"])
                try await p.start()
                #expect(try await sim.ct(101)["status"] as? String == "running")
                #expect(try await sim.taskTypes(101).prefix(2) == ["vzstart", "hastart"])
                await runtime.close()
            }
        }

        @Test func operationsAlreadyDoneAreNotAnError() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime()
                let p = runtime.provider(for: "101")
                // Proxmox's precheck ("CT 101 already running") means the CT is already there.
                try await p.start()
                try await p.unpause()
                try await p.kill(signal: nil)
                try await p.stop(signal: nil, timeout: .seconds(1))
                #expect(try await p.status() == .stopped)
                // A suspended CT reads stopped: a stop leaves it suspended, and tells no stop.
                try await p.start()
                try await p.pause()
                try await p.stop(signal: nil, timeout: .seconds(1))
                #expect(try await p.status() == .paused)
                try await p.unpause()
                try await p.kill(signal: nil)
                // Proxmox reboots only running CTs; a restart of a stopped one starts it.
                try await p.restart(timeout: .seconds(1))
                #expect(try await p.status() == .running)
                await expectError(.badRequest) { try await p.stop(signal: .term, timeout: nil) }
                await runtime.close()
            }
        }

        @Test func anAPISlowerThanTheRequestTimeoutIsATimeoutAndRecovers() async throws {
            try await withSimulator(.https) { sim in
                let runtime = try sim.runtime(requestTimeout: .milliseconds(500))
                let p = runtime.provider(for: "100")
                #expect(try await p.status() == .running)
                try await sim.sim("POST", "/slow", ["seconds": 2])
                let e = await expectError(.timeout) { _ = try await p.status() }
                #expect(e?.message.contains(sim.url) == true, "\(String(describing: e))")
                try await sim.sim("POST", "/slow", ["seconds": 0])
                #expect(try await p.status() == .running)
                await runtime.close()
            }
        }

        @Test func aTaskPastTheDeadlineIsATimeout() async throws {
            try await withSimulator(.https) { sim in
                // A shutdown from the GUI holds the CT's config lock; our stop task waits for it.
                try await sim.change(101, ["ignore_shutdown": true])
                try await sim.sim("POST", "/ct/101/action/shutdown", ["timeout": 3, "forceStop": 1])
                let runtime = try sim.runtime(taskTimeout: .milliseconds(300))
                let e = await expectError(.timeout) { try await runtime.provider(for: "101").kill(signal: nil) }
                #expect(e?.message.contains("vzstop") == true, "\(String(describing: e))")
                await runtime.close()
            }
        }
    }
}
