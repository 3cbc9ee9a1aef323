import IdlewatcherCore
import Synchronization
import Testing

@testable import Bridge

/// A container whose real status is what the test says, and which refuses what Docker refuses.
final class FakeContainer: Provider {
    let id = "fake"
    private let state: Mutex<(status: ContainerStatus, calls: [String])>

    init(_ status: ContainerStatus) { state = Mutex((status, [])) }

    var calls: [String] { state.withLock { $0.calls } }
    var current: ContainerStatus { state.withLock { $0.status } }

    private func op(_ name: String, from: Set<ContainerStatus>, to: ContainerStatus) throws {
        try state.withLock { s in
            s.calls.append(name)
            guard from.contains(s.status) else { throw BridgeError(.runtimeError, "cannot \(name) a \(s.status) container") }
            s.status = to
        }
    }

    func start() async throws { try op("start", from: [.stopped], to: .running) }
    func pause() async throws { try op("pause", from: [.running], to: .paused) }
    func unpause() async throws { try op("unpause", from: [.paused], to: .running) }
    func stop(signal: Signal?, timeout: Duration?) async throws { try op("stop", from: [.running, .paused], to: .stopped) }
    func kill(signal: Signal?) async throws { try op("kill", from: [.running, .paused], to: .stopped) }
    func restart(timeout: Duration?) async throws { try op("restart", from: [.running, .stopped], to: .running) }
    func status() async throws -> ContainerStatus {
        state.withLock {
            $0.calls.append("status"); return $0.status
        }
    }
    func readiness() async throws -> Readiness {
        let s = try await status()
        return Readiness(status: s, health: .none, ready: s == .running)
    }
}

@Suite("Commands decided from the known status, checked against the live one")
struct CommandPlanTests {
    @Test("a fresh known status: the operation runs without a status read first")
    func fresh() async throws {
        let c = FakeContainer(.running)
        try await CommandPlan.perform(Command(action: .pause), on: c, stopTimeout: .seconds(1), known: .running)
        #expect(c.calls == ["pause"])
        #expect(c.current == .paused)
    }

    @Test("a stale known status that says nothing to do is checked live, and the operation runs")
    func staleNothing() async throws {
        let c = FakeContainer(.running)
        try await CommandPlan.perform(Command(action: .stop), on: c, stopTimeout: .seconds(1), known: .stopped)
        #expect(c.calls == ["status", "stop"])
        #expect(c.current == .stopped)
    }

    @Test("an operation refused because the known status was stale is re-planned from a live read")
    func staleRefused() async throws {
        let paused = FakeContainer(.paused)
        try await CommandPlan.perform(Command(action: .pause), on: paused, stopTimeout: .seconds(1), known: .running)
        #expect(paused.calls == ["pause", "status"], "already paused: ok, nothing more")

        let wake = FakeContainer(.paused)
        try await CommandPlan.perform(Command(action: .wake), on: wake, stopTimeout: .seconds(1), known: .stopped)
        #expect(wake.calls == ["start", "status", "unpause"])
        #expect(wake.current == .running)

        // Known running, really stopped: the runtime refuses the pause, the live read says
        // stopped, and the re-plan answers what the contract says for a stopped container:
        // invalid_state (not the runtime's own refusal, nor any other error).
        let stopped = FakeContainer(.stopped)
        do {
            try await CommandPlan.perform(Command(action: .pause), on: stopped, stopTimeout: .seconds(1), known: .running)
            Issue.record("pause of a stopped container must be refused")
        } catch let e as BridgeError {
            #expect(e.code == .invalidState, "\(e)")
        }
        #expect(stopped.calls == ["pause", "status"])
        #expect(stopped.current == .stopped)
    }

    @Test("a genuine refusal is not retried")
    func genuineRefusal() async throws {
        let c = FakeContainer(.stopped)
        do {
            try await CommandPlan.perform(Command(action: .unpause), on: c, stopTimeout: .seconds(1), known: .paused)
            Issue.record("expected a refusal")
        } catch let e as BridgeError {
            #expect(e.code == .invalidState, "live read says stopped: \(e)")
        }
        #expect(c.calls == ["unpause", "status"])
    }

    @Test("unknown status: read first, as before")
    func unknown() async throws {
        let c = FakeContainer(.stopped)
        try await CommandPlan.perform(Command(action: .wake), on: c, stopTimeout: .seconds(1), known: nil)
        #expect(c.calls == ["status", "start"])
    }
}
