import IdlewatcherCore
import Logging
import ServiceLifecycle
import Synchronization

/// The one way into the runtimes: takes a command for a container and answers it with a
/// ``Reply``, whoever sent it (the MQTT intake, the idle policy, an extension).
///
/// It validates (namespace, availability, exposure, the allow-list), queues (one command at a
/// time per container, in arrival order; concurrent `wake`s share one operation), runs the
/// action table with a deadline, reads the status back, and logs every reply. A `Service`:
/// its workers run inside ``run()``.
public final class CommandService: Service, Sendable {
    let bindings: [RuntimeBinding]
    let registry: Registry
    let settings: BridgeSettings
    let logger: Logger
    let queues: CommandQueues
    private let accepting = Atomic<Bool>(true)
    /// Steps run before wake-like commands (dependencies), in the order they were added.
    private let prerequisites = Mutex<[Prerequisite]>([])

    /// A step before a wake-like command of `runtime`/`id`: throw to fail the command.
    public typealias Prerequisite = @Sendable (_ command: Command, _ runtime: RuntimeKind, _ id: String) async throws -> Void
    /// Keys whose queue needs a worker, for ``run()`` to start.
    private let workerRequests: AsyncStream<CommandQueues.Key>
    private let requestWorker: AsyncStream<CommandQueues.Key>.Continuation

    /// How long a command waits for a runtime that is connecting or resyncing (at start, after an outage).
    static let contactLimit: Duration = .seconds(10)

    init(bindings: [RuntimeBinding], registry: Registry, settings: BridgeSettings, logger: Logger) {
        self.bindings = bindings
        self.registry = registry
        self.settings = settings
        self.logger = logger
        self.queues = CommandQueues(limit: settings.commandQueueLimit)
        (workerRequests, requestWorker) = AsyncStream.makeStream()
    }

    /// Whether `runtime`/`id` is in this bridge's namespace (its runtime and an endpoint's
    /// `id_prefix`). Commands for other ids are not this bridge's to answer.
    public func owns(_ runtime: RuntimeKind, _ id: String) -> Bool {
        registry.endpointIndex(for: runtime, id: id) != nil
    }

    /// The description of the runtime `runtime` (how its commands are parsed), if this bridge serves it.
    public func description(of runtime: RuntimeKind) -> RuntimeDescription? {
        bindings.first { $0.runtime.kind == runtime }?.runtime.runtime
    }

    /// Adds a step that runs before wake-like commands (see ``ExtensionContext/beforeWaking(_:)``).
    func addPrerequisite(_ p: @escaping Prerequisite) { prerequisites.withLock { $0.append(p) } }

    /// Network byte counters of some containers of `runtime` (see ``ContainerRuntime/networkBytes(of:)``).
    func networkBytes(_ runtime: RuntimeKind, _ ids: [String]) async -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for (i, b) in bindings.enumerated() where b.runtime.kind == runtime {
            let mine = ids.filter { registry.endpointIndex(for: runtime, id: $0) == i }
            guard !mine.isEmpty else { continue }
            if let counters = try? await b.runtime.networkBytes(of: mine) { out.merge(counters) { a, _ in a } }
        }
        return out
    }

    /// Submits a command and waits for its reply.
    public func submit(_ command: Command, to runtime: RuntimeKind, _ id: String) async -> Reply {
        let (replies, answer) = AsyncStream<Reply>.makeStream()
        await submit(command, to: runtime, id) { reply in
            answer.yield(reply)
            answer.finish()
        }
        for await reply in replies { return reply }
        preconditionFailure("a command was never answered")
    }

    /// Admits a command and returns once it is refused or queued (so that commands are queued
    /// in the order they are submitted); `onReply` is called exactly once, when it is answered.
    public func submit(
        _ command: Command, to runtime: RuntimeKind, _ id: String, onReply: @escaping @Sendable (Reply) -> Void
    ) async {
        let requester = Job.Requester(requestID: command.requestID, deliver: onReply)
        func refuse(_ e: BridgeError, status: ContainerStatus?) {
            deliver(
                Reply(
                    requestID: command.requestID, runtime: runtime, id: id, action: command.action.rawValue, status: status,
                    error: e, duration: nil), to: [requester])
        }
        guard let i = registry.endpointIndex(for: runtime, id: id) else {
            return refuse(BridgeError(.notFound, "\(runtime)/\(id) is not in this bridge's namespace"), status: nil)
        }
        await registry.awaitContact(i, within: Self.contactLimit)
        let tracked = await registry.tracked(i, id)
        let knownStatus = tracked?.visible == true ? tracked?.status : nil
        let endpoint = await registry.endpoint(i)
        let r = bindings[i].runtime
        guard accepting.load(ordering: .relaxed) else {
            return refuse(
                BridgeError(.unavailable, "the bridge is shutting down; try again when it is back online"), status: knownStatus)
        }
        guard endpoint.available else {
            let why = endpoint.lastError?.message ?? "\(r.runtime.displayName) at \(r.endpoint) is not connected yet"
            return refuse(BridgeError(.unavailable, why), status: knownStatus)
        }
        guard let tracked, tracked.visible else {
            let why = tracked == nil ? await r.whyNotListed(id) : nil
            return refuse(
                BridgeError(.notFound, why ?? "no container '\(id)' is exposed by this bridge on \(r.endpoint)"),
                status: knownStatus)
        }
        if let why = bindings[i].policy.refusal(of: command.action, name: tracked.name, labels: tracked.labels) {
            return refuse(BridgeError(.notAllowed, why), status: knownStatus)
        }
        let job = Job(command: command, endpoint: i, id: id, requester: requester)
        switch queues.admit(job, requester: requester) {
        case .startWorker: requestWorker.yield(CommandQueues.Key(endpoint: i, id: id))
        case .queued, .joined: break
        case .full:
            refuse(
                BridgeError(.busy, "\(id) already has \(queues.limit) commands waiting; try again when they are done"),
                status: knownStatus)
        }
    }

    /// Answers a command that could not be parsed (with the last status the bridge knows).
    public func reject(
        _ rejection: Command.Rejection, to runtime: RuntimeKind, _ id: String, onReply: @escaping @Sendable (Reply) -> Void
    ) async {
        var status: ContainerStatus? = nil
        if let i = registry.endpointIndex(for: runtime, id: id), let t = await registry.tracked(i, id), t.visible {
            status = t.status
        }
        deliver(
            Reply(
                requestID: rejection.requestID, runtime: runtime, id: id, action: rejection.action, status: status,
                error: rejection.error, duration: nil),
            to: [Job.Requester(requestID: rejection.requestID, deliver: onReply)])
    }

    /// Runs the workers until cancelled. Workers that are running then go on with their queue,
    /// failing fast (their operations are cancelled): every queued command still gets a reply.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            for await key in workerRequests {
                group.addTask { await self.work(key) }
            }
        }
    }

    /// Stops taking commands and waits (at most `settings.shutdownGrace`) for those in flight.
    func drain() async {
        accepting.store(false, ordering: .relaxed)
        let deadline = ContinuousClock.now + settings.shutdownGrace
        while !queues.isEmpty, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if !queues.isEmpty {
            logger.warning("shutting down with commands still running; they are answered unavailable")
        }
        requestWorker.finish()
    }

    // MARK: execution

    /// Runs a container's queue until it is empty.
    private func work(_ key: CommandQueues.Key) async {
        while let job = queues.head(key) {
            await execute(job)
            queues.pop(key)
        }
    }

    private func execute(_ job: Job) async {
        let binding = bindings[job.endpoint]
        let provider = binding.runtime.provider(for: job.id)
        let tracked = await registry.tracked(job.endpoint, job.id)
        let labels = tracked?.labels ?? [:]
        let knownStatus = tracked?.visible == true ? tracked?.status : nil
        let started = ContinuousClock.now
        var failure: BridgeError? = nil
        let action = job.command.action
        let stopTimeout = job.command.timeout ?? binding.policy.stopTimeout(labels: labels)
        let deadline: Duration =
            switch action {
            case .stop, .restart: stopTimeout + settings.operationTimeout
            default: settings.operationTimeout
            }
        var ready: Bool? = nil
        var readyStatus: ContainerStatus? = nil
        do {
            if CommandPlan.waitsForReadiness(action) {
                for step in prerequisites.withLock({ $0 }) { try await step(job.command, binding.runtime.kind, job.id) }
            }
            try await withDeadline(deadline, what: "\(action.rawValue) of \(job.id)") {
                try await CommandPlan.perform(job.command, on: provider, stopTimeout: stopTimeout, known: knownStatus)
            }
        } catch {
            failure = BridgeError.wrapping(error)
        }
        if CommandPlan.waitsForReadiness(action) {
            ready = false
            if failure == nil {
                let limit = binding.policy.wakeTimeout(id: job.id, labels: labels)
                (ready, failure, readyStatus) = await awaitReady(provider, endpoint: job.endpoint, id: job.id, limit: limit)
            }
        }
        let duration = ContinuousClock.now - started
        // The reading that found the container ready is a live read made after the operation:
        // it is the reply's status (one inspect less than reading again).
        var status: ContainerStatus? = readyStatus
        if status == nil, failure?.code != .notFound {
            status = try? await withDeadline(.seconds(10), what: "status of \(job.id)") { try await provider.status() }
        }
        let requesters = job.finish()
        deliver(
            Reply(
                requestID: nil, runtime: binding.runtime.kind, id: job.id, action: action.rawValue, status: status,
                error: failure, duration: duration, ready: ready), to: requesters)
    }

    /// Waits until the container is ready (running, healthy where it has a healthcheck, with an
    /// address on Proxmox), reading it every `readinessInterval`; past `limit` the answer is
    /// `timeout` and the container is left as it is.
    private func awaitReady(
        _ provider: any Provider, endpoint i: Int, id: String, limit: Duration
    ) async -> (ready: Bool, failure: BridgeError?, status: ContainerStatus?) {
        let deadline = ContinuousClock.now + limit
        let interval = bindings[i].runtime.runtime.readinessInterval
        var last: Readiness? = nil
        var lastError: BridgeError? = nil
        while true {
            do {
                let r = try await withDeadline(max(deadline - .now, .milliseconds(1)), what: "readiness of \(id)") {
                    try await provider.readiness()
                }
                last = r
                await registry.sawReadiness(i, id, r)
                if r.ready { return (true, nil, r.status) }
                if r.status == .stopped || r.status == .error {
                    return (false, BridgeError(.runtimeError, "\(id) stopped while the bridge waited for it to be ready"), nil)
                }
            } catch {
                lastError = BridgeError.wrapping(error)
            }
            if Task.isCancelled { return (false, BridgeError.wrapping(CancellationError()), nil) }
            let now = ContinuousClock.now
            if now >= deadline { break }
            try? await Task.sleep(for: min(interval, deadline - now))
        }
        let seen =
            last.map { "\($0.status.rawValue), health: \($0.health.rawValue)" } ?? lastError.map {
                "readiness unknown: \($0.message)"
            }
            ?? "readiness unknown"
        return (
            false,
            BridgeError(
                .timeout,
                "\(id) did not become ready within \(limit.wholeMilliseconds / 1000) s (wake_timeout; \(seen)); it is left as it is"
            ),
            nil
        )
    }

    /// Logs the reply once per requester, tells the registry's followers, and hands it over.
    private func deliver(_ reply: Reply, to requesters: [Job.Requester]) {
        for r in requesters {
            var reply = reply
            reply.requestID = r.requestID
            log(reply)
            r.deliver(reply)
        }
        let registry = registry
        Task { await registry.announce(.answered(reply)) }
    }

    private func log(_ reply: Reply) {
        let action = reply.action
        var meta: Logger.Metadata = ["runtime": "\(reply.runtime)", "container": "\(reply.id)", "action": "\(action ?? "-")"]
        if let r = reply.requestID { meta["request_id"] = "\(r)" }
        if let error = reply.error {
            logger.warning(
                "command \(action ?? "?") for \(reply.id) failed: \(error.code.rawValue): \(error.message)", metadata: meta)
        } else {
            let ms = reply.duration.map { " in \($0.wholeMilliseconds) ms" } ?? ""
            logger.info(
                "command \(action ?? "?") for \(reply.id): ok, \(reply.status?.rawValue ?? "status unknown")\(ms)", metadata: meta
            )
        }
    }
}

/// Runs `body`; past `limit` it is cancelled and `timeout` is thrown.
func withDeadline<T: Sendable>(
    _ limit: Duration, what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        if let first = try await group.next(), let value = first { return value }
        throw BridgeError(.timeout, "the \(what) did not finish within \(limit.wholeMilliseconds / 1000) s")
    }
}
