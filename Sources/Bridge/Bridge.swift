import IdlewatcherCore
import Logging
import MQTTClient
import ServiceLifecycle
import Synchronization

/// The bridge: runtime events onto MQTT, MQTT commands onto runtimes.
///
/// One `Service`: it follows every runtime endpoint, publishes events and retained statuses,
/// resyncs after every reconnect (broker or runtime), and executes commands. On graceful
/// shutdown it stops taking commands, lets those in flight finish (bounded), and returns;
/// the MQTT service, shut down after it, then says `offline`.
public final class Bridge: Service, Sendable {
    let settings: BridgeSettings
    let bindings: [RuntimeBinding]
    let mqtt: MQTTClient
    let topics: Topics
    let logger: Logger
    let registry: Registry
    let queues: CommandQueues
    private let accepting = Atomic<Bool>(true)
    private let extensions: [any BridgeExtension]

    public init(
        settings: BridgeSettings, runtimes: [RuntimeBinding], mqtt: MQTTClient, extensions: [any BridgeExtension] = [],
        logger: Logger
    ) {
        self.settings = settings
        self.bindings = runtimes
        self.mqtt = mqtt
        self.topics = Topics(base: settings.baseTopic, bridgeID: settings.bridgeID)
        self.logger = logger
        self.registry = Registry(bindings: runtimes, topics: topics, mqtt: mqtt, logger: logger)
        self.queues = CommandQueues(limit: settings.commandQueueLimit)
        self.extensions = extensions
    }

    /// The subscriptions the bridge needs; give them to the MQTT client at creation.
    public static func subscriptions(settings: BridgeSettings, runtimes: [RuntimeKind]) -> [MQTTSubscription] {
        let topics = Topics(base: settings.baseTopic, bridgeID: settings.bridgeID)
        var subs: [MQTTSubscription] = []
        for kind in Set(runtimes).sorted(by: { $0.rawValue < $1.rawValue }) {
            subs.append(MQTTSubscription(filter: topics.commandFilter(kind), retainHandling: .doNotSend, retainAsPublished: true))
            subs.append(MQTTSubscription(filter: topics.statusFilter(kind), retainHandling: .send))
        }
        return subs
    }

    public func run() async throws {
        for e in extensions { await e.attach(to: self) }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.followConnection() }
            for i in bindings.indices {
                group.addTask {
                    await self.bindings[i].runtime.watch { update in await self.handle(update, endpoint: i) }
                }
            }
            group.addTask { await self.serveMessages() }
            if let path = settings.healthFile { group.addTask { await self.reportHealth(to: path) } }
            for e in extensions { group.addTask { await e.run() } }
            try? await gracefulShutdown()
            await self.drainCommands()
            group.cancelAll()
        }
        removeHealthFile()
        for b in bindings { await b.runtime.close() }
    }

    // MARK: runtimes

    private func handle(_ update: RuntimeUpdate, endpoint i: Int) async {
        switch update {
        case .event(let e):
            await registry.apply(i, e)
        case .resync:
            await resync(endpoint: i)
        case .unavailable(let e):
            await registry.markUnavailable(i, e)
        }
    }

    /// Lists the endpoint's containers and publishes every status (and clears the gone ones).
    func resync(endpoint i: Int) async {
        let started = ContinuousClock.now
        do {
            let list = try await bindings[i].runtime.containers()
            await registry.applyListing(i, list, startedAt: started)
            logger.debug("resynced \(list.count) containers of \(bindings[i].runtime.endpoint)")
        } catch {
            let e = BridgeError.wrapping(error)
            logger.warning("cannot list the containers of \(bindings[i].runtime.endpoint): \(e.message)")
            await registry.markUnavailable(i, e)
        }
    }

    private func followConnection() async {
        for await event in mqtt.connectionEvents {
            guard case .connected = event else { continue }
            for i in bindings.indices where await registry.endpoint(i).available {
                await resync(endpoint: i)
            }
            for e in extensions { await e.connected() }
        }
    }

    // MARK: commands

    private func serveMessages() async {
        await withDiscardingTaskGroup { workers in
            for await message in mqtt.messages {
                var consumed = false
                for e in extensions where !consumed { consumed = await e.handle(message) }
                if consumed { continue }
                guard let (kind, id, leaf) = topics.parse(message.topic) else { continue }
                switch leaf {
                case "status":
                    await registry.sawRetainedStatus(kind, id: id, payload: message.payload)
                case "command":
                    if let key = await accept(message, kind: kind, id: id) {
                        workers.addTask { await self.work(key) }
                    }
                default:
                    continue
                }
            }
        }
    }

    /// Validates a command and queues it. Returns a key when a worker must be started for it.
    private func accept(_ message: MQTTIncomingMessage, kind: RuntimeKind, id: String) async -> CommandQueues.Key? {
        if message.retain {
            logger.warning(
                "ignored a retained command on \(message.topic): commands must not be retained (clear it with an empty retained message)",
                metadata: ["runtime": "\(kind.rawValue)", "container": "\(id)"])
            return nil
        }
        guard let i = registry.endpointIndex(for: kind, id: id) else {
            logger.debug("ignored a command for \(kind.rawValue)/\(id): not in this bridge's namespace")
            return nil
        }
        let received = ContinuousClock.now
        var target = ReplyTarget(
            topic: topics.reply(kind, id), correlationData: message.correlationData, requestID: nil, receivedAt: received)
        if let rt = message.responseTopic, topics.acceptsResponseTopic(rt) {
            target.topic = rt
        }
        let tracked = await registry.tracked(i, id)
        let knownStatus = tracked?.visible == true ? tracked?.status : nil

        let command: Command
        switch Command.parse(message.payload, runtime: kind) {
        case .failure(let r):
            target.requestID = r.requestID
            reply(target, kind: kind, id: id, action: r.action, error: r.error, status: knownStatus, duration: nil)
            return nil
        case .success(let c):
            command = c
            target.requestID = c.requestID
        }
        func refuse(_ e: BridgeError) -> CommandQueues.Key? {
            reply(target, kind: kind, id: id, action: command.action.rawValue, error: e, status: knownStatus, duration: nil)
            return nil
        }
        let endpoint = await registry.endpoint(i)
        let runtime = bindings[i].runtime
        guard accepting.load(ordering: .relaxed) else {
            return refuse(BridgeError(.unavailable, "the bridge is shutting down; try again when it is back online"))
        }
        guard endpoint.available else {
            let why = endpoint.lastError?.message ?? "\(runtime.kind.rawValue) at \(runtime.endpoint) is not connected yet"
            return refuse(BridgeError(.unavailable, why))
        }
        guard let tracked, tracked.visible else {
            return refuse(BridgeError(.notFound, "no container '\(id)' is exposed by this bridge on \(runtime.endpoint)"))
        }
        let allowed = bindings[i].policy.allowedActions(name: tracked.name, labels: tracked.labels)
        guard allowed.contains(command.action) else {
            let list = Action.allCases.filter { allowed.contains($0) }.map(\.rawValue).joined(separator: ", ")
            return refuse(
                BridgeError(
                    .notAllowed,
                    "\(command.action.rawValue) is not allowed for \(id) (allowed: \(list.isEmpty ? "nothing" : list))"))
        }
        let job = Job(command: command, endpoint: i, id: id, target: target)
        switch queues.admit(job, target: target) {
        case .startWorker: return CommandQueues.Key(endpoint: i, id: id)
        case .queued, .joined: return nil
        case .full:
            return refuse(
                BridgeError(.busy, "\(id) already has \(queues.limit) commands waiting; try again when they are done"))
        }
    }

    /// Runs a container's queue until it is empty.
    private func work(_ key: CommandQueues.Key) async {
        while let job = queues.head(key) {
            await execute(job)
            queues.pop(key)
        }
    }

    private func execute(_ job: Job) async {
        let binding = bindings[job.endpoint]
        let kind = binding.runtime.kind
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
        do {
            try await withDeadline(deadline, what: "\(action.rawValue) of \(job.id)") {
                try await Self.perform(job.command, on: provider, stopTimeout: stopTimeout, known: knownStatus)
            }
        } catch {
            failure = BridgeError.wrapping(error)
        }
        let duration = ContinuousClock.now - started
        var status: ContainerStatus? = nil
        if failure?.code != .notFound {
            status = try? await withDeadline(.seconds(10), what: "status of \(job.id)") { try await provider.status() }
        }
        for target in job.finish() {
            reply(target, kind: kind, id: job.id, action: action.rawValue, error: failure, status: status, duration: duration)
        }
    }

    /// One step of the contract's action table.
    enum Step: Equatable {
        case nothing
        case invalid(String)
        case start, unpause, pause, stop, kill, restart
    }

    /// The contract's action table, with its "already there" column: what `action` means for a
    /// container whose status is `status`.
    static func plan(_ action: Action, _ status: ContainerStatus, id: String) -> Step {
        switch (action, status) {
        case (.status, _): .nothing
        case (.start, .running), (.wake, .running): .nothing
        case (.start, .paused): .invalid("\(id) is paused; send unpause or wake to resume it")
        case (.start, _): .start
        case (.wake, .paused): .unpause
        case (.wake, _): .start
        case (.stop, .stopped), (.kill, .stopped): .nothing
        case (.stop, _): .stop
        case (.kill, _): .kill
        case (.pause, .paused): .nothing
        case (.pause, .stopped): .invalid("\(id) is stopped; only a running container can be paused")
        case (.pause, _): .pause
        case (.unpause, .running): .nothing
        case (.unpause, .stopped): .invalid("\(id) is stopped, not paused; send start or wake")
        case (.unpause, _): .unpause
        case (.restart, _): .restart
        }
    }

    /// Carries out a command.
    ///
    /// `known` is the status the bridge already has from the runtime's events. It decides
    /// what to do without asking the runtime first (a round trip saved on every command); it
    /// may be a few milliseconds behind, so a decision to do nothing or to refuse is checked
    /// against a live read, and an operation the runtime refuses is re-planned from a live read
    /// (a `pause` of what turned out to be paused already is then ok).
    static func perform(_ c: Command, on p: any Provider, stopTimeout: Duration, known: ContainerStatus?) async throws {
        var live = false
        var status: ContainerStatus
        if let known, known != .error {
            status = known
        } else {
            status = try await p.status()
            live = true
        }
        var step = plan(c.action, status, id: p.id)
        if !live, step == .nothing || { if case .invalid = step { true } else { false } }() {
            status = try await p.status()
            live = true
            step = plan(c.action, status, id: p.id)
        }
        do {
            try await run(step, c, on: p, stopTimeout: stopTimeout)
        } catch let e as BridgeError where !live && (e.code == .runtimeError || e.code == .invalidState) {
            let again = plan(c.action, try await p.status(), id: p.id)
            if again == step { throw e }
            try await run(again, c, on: p, stopTimeout: stopTimeout)
        }
    }

    private static func run(_ step: Step, _ c: Command, on p: any Provider, stopTimeout: Duration) async throws {
        switch step {
        case .nothing: return
        case .invalid(let message): throw BridgeError(.invalidState, message)
        case .start: try await p.start()
        case .unpause: try await p.unpause()
        case .pause: try await p.pause()
        case .stop: try await p.stop(signal: c.signal, timeout: stopTimeout)
        case .kill: try await p.kill(signal: c.signal)
        case .restart: try await p.restart(timeout: c.timeout ?? stopTimeout)
        }
    }

    func reply(
        _ target: ReplyTarget, kind: RuntimeKind, id: String, action: String?, error: BridgeError?,
        status: ContainerStatus?, duration: Duration?
    ) {
        let payload = Payloads.reply(
            requestID: target.requestID, runtime: kind, id: id, action: action, error: error, status: status,
            duration: duration, bridge: settings.bridgeID)
        mqtt.publish(MQTTOutgoingMessage(topic: target.topic, payload: payload, correlationData: target.correlationData, droppable: false))
        var meta: Logger.Metadata = ["runtime": "\(kind.rawValue)", "container": "\(id)", "action": "\(action ?? "-")"]
        if let r = target.requestID { meta["request_id"] = "\(r)" }
        if let error {
            logger.warning("command \(action ?? "?") for \(id) failed: \(error.code.rawValue): \(error.message)", metadata: meta)
        } else {
            let ms = duration.map { " in \($0.wholeMilliseconds) ms" } ?? ""
            logger.info("command \(action ?? "?") for \(id): ok, \(status?.rawValue ?? "status unknown")\(ms)", metadata: meta)
        }
    }

    /// Publishes every visible container's status again.
    func republishStatuses() async { await registry.republishStatuses() }

    /// Stops taking commands and waits (bounded) for those in flight.
    private func drainCommands() async {
        accepting.store(false, ordering: .relaxed)
        let deadline = ContinuousClock.now + settings.shutdownGrace
        while !queues.isEmpty, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if !queues.isEmpty {
            logger.warning("shutting down with commands still running; they are answered unavailable")
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

/// An optional part of the MQTT surface around the bridge (Home Assistant discovery, …),
/// which can be read, tested and switched off alone.
public protocol BridgeExtension: Sendable {
    /// Called once when the bridge starts.
    func attach(to bridge: Bridge) async
    /// Runs for as long as the bridge does (cancelled at shutdown).
    func run() async
    /// Called after every (re)connect to the broker, after the statuses were resynced.
    func connected() async
    /// Offered every incoming message first; true if the extension consumed it.
    func handle(_ message: MQTTIncomingMessage) async -> Bool
}
