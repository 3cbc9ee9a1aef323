import IdlewatcherCore
import IdlewatcherTesting
import Logging
import MQTTClient
import Synchronization
import Testing

@testable import Bridge

/// The command service, the registry and a supervisor around a ``FakeRuntime``: no broker,
/// no engine, milliseconds per test.
final class CommandHarness: Sendable {
    let fake: FakeRuntime
    let registry: Registry
    let commands: CommandService
    let supervisor: EndpointSupervisor
    private let tasks: Task<Void, Never>

    init(
        _ containers: [(String, ContainerStatus)], allow: Set<Action> = Set(Action.allCases), queueLimit: Int = 16,
        operationTimeout: Duration = .seconds(5), wakeTimeout: Duration = .seconds(60)
    ) async throws {
        let fake = FakeRuntime()
        for (name, status) in containers { fake.add(name, status: status) }
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let settings = BridgeSettings(bridgeID: "t", operationTimeout: operationTimeout, commandQueueLimit: queueLimit)
        let bindings = [RuntimeBinding(runtime: fake, policy: ExposurePolicy(allow: allow, wakeTimeout: wakeTimeout))]
        let registry = Registry(
            bindings: bindings, topics: Topics(base: "idlewatcher", bridgeID: "t"), publish: { _ in }, logger: logger)
        let commands = CommandService(bindings: bindings, registry: registry, settings: settings, logger: logger)
        let supervisor = EndpointSupervisor(index: 0, runtime: fake, registry: registry, logger: logger)
        self.fake = fake
        self.registry = registry
        self.commands = commands
        self.supervisor = supervisor
        tasks = Task {
            await withDiscardingTaskGroup { group in
                group.addTask { try? await commands.run() }
                group.addTask { try? await supervisor.run() }
            }
        }
        try await eventually("the first listing") { await registry.endpoint(0).listed }
    }

    func submit(_ action: Action, _ id: String, requestID: String? = nil) async -> Reply {
        await commands.submit(Command(action: action, requestID: requestID), to: fake.kind, id)
    }

    func stop() async {
        tasks.cancel()
        await tasks.value
    }
}

/// Lines in the order they came, from any task.
final class Log: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ s: String) { lines.withLock { $0.append(s) } }
    var all: [String] { lines.withLock { $0 } }
    var count: Int { all.count }
}

@Suite("The command service (in-process fake runtime)")
struct CommandServiceTests {
    @Test("a command runs the action table and replies with the status read back")
    func runs() async throws {
        let h = try await CommandHarness([("web", .running)])
        let r = await h.submit(.stop, "web", requestID: "r1")
        #expect(r.ok, "\(r)")
        #expect(r.status == .stopped)
        #expect(r.requestID == "r1")
        #expect(r.action == "stop")
        #expect(r.duration != nil)
        #expect(h.fake.calls.filter { $0 == "stop web" }.count == 1)
        #expect(h.fake.status(of: "web") == .stopped)
        await h.stop()
    }

    @Test("already there: start of a running container does nothing and succeeds")
    func alreadyThere() async throws {
        let h = try await CommandHarness([("web", .running)])
        let r = await h.submit(.start, "web")
        #expect(r.ok)
        #expect(r.status == .running)
        #expect(!h.fake.calls.contains("start web"))
        await h.stop()
    }

    @Test("start of a paused container is invalid_state, with a hint, and touches nothing")
    func invalid() async throws {
        let h = try await CommandHarness([("web", .paused)])
        let r = await h.submit(.start, "web")
        #expect(r.error?.code == .invalidState)
        #expect(r.error?.message.contains("unpause or wake") == true)
        #expect(h.fake.status(of: "web") == .paused)
        #expect(!h.fake.calls.contains("start web"))
        await h.stop()
    }

    @Test("concurrent wakes share one operation; each gets its own reply")
    func sharedWake() async throws {
        let h = try await CommandHarness([("web", .stopped)])
        h.fake.behave("start", .init(delay: .milliseconds(300)))
        let replies = await withTaskGroup(of: Reply.self) { group in
            for n in 0..<3 { group.addTask { await h.submit(.wake, "web", requestID: "w\(n)") } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(replies.compactMap(\.requestID)) == ["w0", "w1", "w2"])
        #expect(replies.allSatisfy { $0.ok && $0.status == .running }, "\(replies)")
        #expect(h.fake.calls.filter { $0 == "start web" }.count == 1)
        await h.stop()
    }

    @Test("commands for one container run one at a time, in order")
    func order() async throws {
        let h = try await CommandHarness([("web", .running)])
        h.fake.behave("pause", .init(delay: .milliseconds(100)))
        let log = Log()
        for action in [Action.pause, .unpause, .stop] {
            // Admitted in this order (submit returns once queued), answered in this order.
            await h.commands.submit(Command(action: action), to: h.fake.kind, "web") { r in log.append("\(r.action!)=\(r.ok)") }
        }
        try await eventually("three replies") { log.count == 3 }
        #expect(log.all == ["pause=true", "unpause=true", "stop=true"])
        #expect(
            h.fake.calls.filter { !$0.hasPrefix("status") && !$0.hasPrefix("readiness") } == [
                "pause web", "unpause web", "stop web",
            ])
        await h.stop()
    }

    @Test("command_queue_limit commands may wait behind the running one; one more answers busy")
    func busy() async throws {
        let h = try await CommandHarness([("web", .running)], queueLimit: 2)
        h.fake.behave("restart", .init(delay: .milliseconds(300)))
        let replies = Mutex<[Reply]>([])
        for n in 0..<4 {
            await h.commands.submit(Command(action: .restart, requestID: "r\(n)"), to: h.fake.kind, "web") { r in
                replies.withLock { $0.append(r) }
            }
        }
        try await eventually("four replies") { replies.withLock { $0.count } == 4 }
        let all = replies.withLock { $0 }
        #expect(all.first?.requestID == "r3" && all.first?.error?.code == .busy, "the fourth is refused at once: \(all)")
        #expect(all.filter(\.ok).map(\.requestID) == ["r0", "r1", "r2"])
        #expect(h.fake.calls.filter { $0 == "restart web" }.count == 3)
        await h.stop()
    }

    @Test("not_allowed names what is allowed; not_found for a container that is not there")
    func refusals() async throws {
        let h = try await CommandHarness([("web", .running)], allow: [.status, .wake])
        let r = await h.submit(.stop, "web")
        #expect(r.error?.code == .notAllowed)
        #expect(r.error?.message.contains("allowed: wake, status") == true, "\(r)")
        #expect(r.status == .running, "the last known status")
        let nf = await h.submit(.status, "nope")
        #expect(nf.error?.code == .notFound)
        #expect(!h.fake.calls.contains("stop web"))
        await h.stop()
    }

    @Test("an operation past its deadline answers timeout, and the queue moves on")
    func deadline() async throws {
        let h = try await CommandHarness([("web", .stopped)], operationTimeout: .milliseconds(300))
        h.fake.behave("start", .init(delay: .seconds(30)))
        let r = await h.submit(.start, "web")
        #expect(r.error?.code == .timeout)
        #expect(r.status == .stopped, "the status read after the timeout")
        let next = await h.submit(.status, "web")
        #expect(next.ok)
        await h.stop()
    }

    @Test("an unreachable runtime: unavailable once, commands answer unavailable; back: resynced")
    func supervision() async throws {
        let h = try await CommandHarness([("web", .running)])
        h.fake.setReachable(false)
        try await eventually("the endpoint marked unavailable") { await !h.registry.endpoint(0).available }
        let r = await h.submit(.stop, "web")
        #expect(r.error?.code == .unavailable)
        #expect(r.error?.message.contains("fake://fake") == true, "\(r)")
        #expect(!h.fake.calls.contains("stop web"))
        h.fake.change("web", to: .paused, kind: .paused, action: "pause")  // changed while away
        h.fake.setReachable(true)
        try await eventually("the resync after reconnecting") {
            let t = await h.registry.tracked(0, "web")
            return await h.registry.endpoint(0).available && t?.status == .paused
        }
        #expect(h.fake.connects == 2)
        let ok = await h.submit(.unpause, "web")
        #expect(ok.ok && ok.status == .running)
        await h.stop()
    }

    @Test("wake replies once the container is ready, with ready: true")
    func readiness() async throws {
        let h = try await CommandHarness([("web", .stopped)])
        h.fake.setHealthy("web", false)
        let reply = Task { await h.submit(.wake, "web") }
        try await eventually("the start") { h.fake.status(of: "web") == .running }
        try await eventually("a readiness read") { h.fake.calls.contains("readiness web") }
        h.fake.setHealthy("web", true)
        let r = await reply.value
        #expect(r.ok, "\(r)")
        #expect(r.ready == true)
        #expect(r.status == .running)
        #expect(await h.registry.tracked(0, "web")?.health == .healthy)
        let status = await h.submit(.status, "web")
        #expect(status.ready == nil, "only start, wake, unpause and restart say ready")
        await h.stop()
    }

    @Test("a container that never becomes ready: timeout after wake_timeout, left running, ready: false")
    func neverReady() async throws {
        let h = try await CommandHarness([("web", .stopped)], wakeTimeout: .milliseconds(600))
        h.fake.setHealthy("web", false)
        let started = ContinuousClock.now
        let r = await h.submit(.start, "web")
        let took = ContinuousClock.now - started
        #expect(r.error?.code == .timeout, "\(r)")
        #expect(r.error?.message.contains("health: starting") == true, "\(r)")
        #expect(r.ready == false)
        #expect(r.status == .running, "left as it is")
        #expect(took >= .milliseconds(600))
        #expect(h.fake.status(of: "web") == .running)
        await h.stop()
    }
}
