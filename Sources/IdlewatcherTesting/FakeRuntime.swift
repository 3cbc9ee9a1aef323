import IdlewatcherCore
import Synchronization

/// An in-process runtime for fast tests of the command service, the action table and the
/// extensions: containers in memory that change status like Docker's do and report events
/// like a runtime's event stream. Failures, slowness and disconnects are set by the test.
public final class FakeRuntime: ContainerRuntime {
    /// What an operation of a container does: runs (after `delay`), or throws `error`.
    public struct Behaviour: Sendable {
        public var delay: Duration = .zero
        public var error: BridgeError? = nil
        public init(delay: Duration = .zero, error: BridgeError? = nil) {
            self.delay = delay
            self.error = error
        }
    }

    struct Container: Sendable {
        var name: String
        var status: ContainerStatus
        var labels: [String: String]
        /// Whether its "healthcheck" passes (a running container is ready when it does).
        var healthy = true
        var netBytes: UInt64? = nil
    }

    struct State: Sendable {
        var containers: [String: Container] = [:]
        var behaviours: [String: Behaviour] = [:]
        var calls: [String] = []
        var reachable = true
        var connection: AsyncStream<RuntimeUpdate>.Continuation?
        var connects = 0
    }

    public let runtime: RuntimeDescription
    public let endpoint: String
    public let idPrefix: String
    public let reconnectBackoff = Backoff(initial: .milliseconds(20), maximum: .milliseconds(100))
    private let state = Mutex(State())

    public init(
        kind: RuntimeKind = RuntimeKind("fake"), idPrefix: String = "", signalActions: Set<Action> = [.stop, .kill]
    ) {
        self.runtime = RuntimeDescription(kind: kind, displayName: "Fake", signalActions: signalActions)
        self.endpoint = "fake://\(kind)"
        self.idPrefix = idPrefix
    }

    // MARK: what the test sets up and reads

    /// Adds a container (id = prefix + name) without an event, as if it existed before.
    public func add(_ name: String, status: ContainerStatus = .running, labels: [String: String] = [:]) {
        state.withLock { $0.containers[idPrefix + name] = Container(name: name, status: status, labels: labels) }
    }

    /// Sets the container's network byte counter (nil: it has none).
    public func setNetworkBytes(_ name: String, _ bytes: UInt64?) {
        state.withLock { $0.containers[idPrefix + name]?.netBytes = bytes }
    }

    /// Whether the container's "healthcheck" passes from now on.
    public func setHealthy(_ name: String, _ healthy: Bool) {
        state.withLock { $0.containers[idPrefix + name]?.healthy = healthy }
    }

    /// How the operation `operation` ("start", "stop", …) of every container behaves from now on.
    public func behave(_ operation: String, _ b: Behaviour) { state.withLock { $0.behaviours[operation] = b } }

    /// Every call made to a container, in order: "start web", "status web", …
    public var calls: [String] { state.withLock { $0.calls } }

    /// How many times the bridge connected.
    public var connects: Int { state.withLock { $0.connects } }

    /// The container's status as the runtime has it.
    public func status(of name: String) -> ContainerStatus? { state.withLock { $0.containers[idPrefix + name]?.status } }

    /// Changes a container's status from outside (as `docker stop` would), with its event.
    public func change(_ name: String, to status: ContainerStatus, kind: LifecycleEvent.Kind, action: String) {
        let id = idPrefix + name
        let c = state.withLock { s -> AsyncStream<RuntimeUpdate>.Continuation? in
            s.containers[id]?.status = status
            return s.connection
        }
        c?.yield(.event(LifecycleEvent(id: id, name: name, kind: kind, action: action, status: status, time: .now())))
    }

    /// Makes the runtime unreachable (the connection drops, requests fail) or reachable again.
    public func setReachable(_ reachable: Bool) {
        let c = state.withLock { s -> AsyncStream<RuntimeUpdate>.Continuation? in
            s.reachable = reachable
            defer { if !reachable { s.connection = nil } }
            return reachable ? nil : s.connection
        }
        c?.finish()
    }

    // MARK: ContainerRuntime

    public func containers() async throws -> [ContainerInfo] {
        try state.withLock { s in
            guard s.reachable else { throw BridgeError(.unavailable, "cannot reach \(endpoint)") }
            return s.containers.sorted { $0.key < $1.key }.map {
                ContainerInfo(id: $0.key, name: $0.value.name, ref: $0.key, status: $0.value.status, labels: $0.value.labels)
            }
        }
    }

    public func provider(for id: String) -> any Provider { FakeContainer(id: id, runtime: self) }

    public func networkBytes(of ids: [String]) async throws -> [String: UInt64] {
        state.withLock { s in
            var out: [String: UInt64] = [:]
            for id in ids { if let c = s.containers[id], c.status == .running, let n = c.netBytes { out[id] = n } }
            return out
        }
    }

    public func follow(_ handler: @escaping @Sendable (RuntimeUpdate) async -> Void) async throws {
        let (stream, continuation) = AsyncStream<RuntimeUpdate>.makeStream()
        try state.withLock { s in
            guard s.reachable else { throw BridgeError(.unavailable, "cannot reach \(endpoint)") }
            s.connects += 1
            s.connection = continuation
        }
        await handler(.resync)
        for await update in stream { await handler(update) }
        throw BridgeError(.unavailable, "lost \(endpoint)")
    }

    public func close() async { state.withLock { $0.connection?.finish() } }

    // MARK: operations

    fileprivate func operate(
        _ operation: String, _ id: String, from: Set<ContainerStatus>, to: ContainerStatus, kind: LifecycleEvent.Kind
    ) async throws {
        let b = try state.withLock { s -> Behaviour in
            s.calls.append("\(operation) \(id)")
            guard s.reachable else { throw BridgeError(.unavailable, "cannot reach \(endpoint)") }
            guard s.containers[id] != nil else { throw BridgeError(.notFound, "no container \(id)") }
            return s.behaviours[operation] ?? Behaviour()
        }
        if b.delay > .zero { try await Task.sleep(for: b.delay) }
        if let e = b.error { throw e }
        let (event, c) = try state.withLock { s -> (LifecycleEvent, AsyncStream<RuntimeUpdate>.Continuation?) in
            guard var container = s.containers[id] else { throw BridgeError(.notFound, "no container \(id)") }
            guard from.contains(container.status) else {
                throw BridgeError(.runtimeError, "cannot \(operation) a \(container.status) container")
            }
            container.status = to
            s.containers[id] = container
            return (
                LifecycleEvent(id: id, name: container.name, kind: kind, action: operation, status: to, time: .now()),
                s.connection
            )
        }
        c?.yield(.event(event))
    }

    fileprivate func currentReadiness(_ id: String) throws -> Readiness {
        try state.withLock { s in
            s.calls.append("readiness \(id)")
            guard s.reachable else { throw BridgeError(.unavailable, "cannot reach \(endpoint)") }
            guard let c = s.containers[id] else { throw BridgeError(.notFound, "no container \(id)") }
            let running = c.status == .running
            return Readiness(
                status: c.status, health: running ? (c.healthy ? .healthy : .starting) : .none, ready: running && c.healthy)
        }
    }

    fileprivate func currentStatus(_ id: String) throws -> ContainerStatus {
        try state.withLock { s in
            s.calls.append("status \(id)")
            guard s.reachable else { throw BridgeError(.unavailable, "cannot reach \(endpoint)") }
            guard let c = s.containers[id] else { throw BridgeError(.notFound, "no container \(id)") }
            return c.status
        }
    }
}

/// One container of a ``FakeRuntime``: refuses what Docker refuses.
private struct FakeContainer: Provider {
    let id: String
    let runtime: FakeRuntime

    func start() async throws { try await runtime.operate("start", id, from: [.stopped], to: .running, kind: .started) }
    func pause() async throws { try await runtime.operate("pause", id, from: [.running], to: .paused, kind: .paused) }
    func unpause() async throws { try await runtime.operate("unpause", id, from: [.paused], to: .running, kind: .unpaused) }
    func stop(signal: Signal?, timeout: Duration?) async throws {
        try await runtime.operate("stop", id, from: [.running, .paused], to: .stopped, kind: .stopped)
    }
    func kill(signal: Signal?) async throws {
        try await runtime.operate("kill", id, from: [.running, .paused], to: .stopped, kind: .died)
    }
    func restart(timeout: Duration?) async throws {
        try await runtime.operate("restart", id, from: [.running, .stopped], to: .running, kind: .restarted)
    }
    func status() async throws -> ContainerStatus { try runtime.currentStatus(id) }
    func readiness() async throws -> Readiness { try runtime.currentReadiness(id) }
}

extension FakeRuntime {
    public func connectionLost(_ error: BridgeError, first: Bool) {}
}
