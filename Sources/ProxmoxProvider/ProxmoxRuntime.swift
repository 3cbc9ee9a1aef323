import HTTPClient
import IdlewatcherCore
import Logging
import Synchronization

/// One Proxmox VE cluster as a ``ContainerRuntime``: lists its guests (LXC containers, and
/// QEMU VMs where `types` says so), hands out a provider per guest, and polls
/// `/cluster/resources` and `/cluster/tasks` once per `poll_interval` for the whole cluster to
/// turn changes into lifecycle events.
public final class ProxmoxRuntime: ContainerRuntime {
    /// Proxmox VE: commands take no `signal`; `stop` and `restart` take a `timeout`.
    public static let description = RuntimeDescription(
        kind: .proxmox, displayName: "Proxmox", signalActions: [], manufacturer: "Proxmox VE", icon: "mdi:server",
        containerNoun: "Proxmox guest", modelBefore: " on ", modelAfter: "", readinessInterval: .seconds(1),
        typeNouns: ["lxc": "LXC container", "qemu": "QEMU VM"])
    /// ``description``: the same for every cluster.
    public var runtime: RuntimeDescription { Self.description }
    /// From the poll interval (at most 1 s), doubling up to 30 s.
    public var reconnectBackoff: Backoff { Backoff(initial: min(configuration.pollInterval, .seconds(1)), maximum: .seconds(30)) }
    /// The cluster's configuration, as given.
    public let configuration: ProxmoxEndpointConfiguration
    /// The cluster's URL as configured.
    public var endpoint: String { configuration.url }
    /// The configured `id_prefix`, or "".
    public var idPrefix: String { configuration.idPrefix }
    let api: ProxmoxAPI
    let logger: Logger
    private let shared = Mutex(Shared())

    /// What listings, the poller and operations tell each other.
    private struct Shared {
        /// vmid → node and type, for every exposed guest of the last listing (paths name both).
        var locations: [Int: GuestLocation] = [:]
        /// Names read from status/current for guests the listing did not name yet.
        var currentNames: [Int: String] = [:]
        /// Network byte counters of the running guests of the last read.
        var netBytes: [Int: UInt64] = [:]
        /// CTs known to be suspended: the task list that says so may have scrolled away.
        var suspended: Set<Int> = []
        /// When the poller last read `/cluster/tasks` (it keeps ``suspended`` current).
        var tasksReadAt: ContinuousClock.Instant?
        /// The last status known of each guest: what a guest of a node that went offline keeps.
        var lastStatus: [Int: ContainerStatus] = [:]
        /// Statuses that operations confirmed, in order, for the poller (the newest few thousand).
        var hints: [(vmid: Int, status: ContainerStatus, sequence: UInt64)] = []
        var hintSequence: UInt64 = 0
        /// The last listing handed to the bridge, so that the poller's baseline is what the bridge published.
        var listing: Listing?
        var listingSequence: UInt64 = 0
    }

    /// One listing of the exposed CTs with their statuses.
    struct Listing: Sendable {
        var guests: [ClusterGuest]
        var statuses: [Int: ContainerStatus]
        /// The newest operation hint when the listing began: later ones are not in it for sure.
        var hintsSeen: UInt64
        var sequence: UInt64
    }

    /// A runtime for one cluster. Throws `bad_request` if the URL is unusable; no I/O: it logs in with
    /// the first request.
    public init(configuration: ProxmoxEndpointConfiguration, logger: Logger) throws {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "runtime"] = "proxmox"
        self.logger = logger
        self.api = try ProxmoxAPI(configuration: configuration, logger: logger)
    }

    // MARK: listing

    /// Whether the bridge exposes this guest: a non-template guest of the configured `types`
    /// on a watched node, in `vmids`.
    func exposes(_ g: ClusterGuest) -> Bool {
        g.guestType.map(configuration.types.contains) == true && !g.template
            && (configuration.nodes.isEmpty || configuration.nodes.contains(g.node))
            && (configuration.vmids.isEmpty || configuration.vmids.contains(g.vmid))
    }

    /// The exposed CTs, in one `/cluster/resources` request; remembers where each one lives.
    func exposedGuests() async throws -> [ClusterGuest] {
        let guests = try await api.clusterGuests().filter(exposes)
        shared.withLock { s in
            s.locations = Dictionary(guests.map { ($0.vmid, $0.location) }, uniquingKeysWith: { a, _ in a })
            s.netBytes = Dictionary(
                guests.compactMap { g in g.status == "running" ? g.netBytes.map { (g.vmid, $0) } : nil },
                uniquingKeysWith: { a, _ in a })
        }
        return guests
    }

    /// From the last `/cluster/resources` read: no request of its own.
    public func networkBytes(of ids: [String]) async throws -> [String: UInt64] {
        let counters = shared.withLock { $0.netBytes }
        var out: [String: UInt64] = [:]
        for id in ids {
            let rest = id.hasPrefix(configuration.idPrefix) ? String(id.dropFirst(configuration.idPrefix.count)) : id
            if let vmid = Int(rest), let n = counters[vmid] { out[id] = n }
        }
        return out
    }

    /// The statuses of a listing: as listed (a VM `paused` from its qmpstatus), `paused` for
    /// stopped CTs whose latest lifecycle task is a successful `vzsuspend` (`records`, the
    /// cluster's task list, read here if not given and some CT reads stopped). A guest of a
    /// node that is offline keeps the last status known (`error` if none ever was).
    func statuses(of guests: [ClusterGuest], records given: [TaskRecord]? = nil) async -> [Int: ContainerStatus] {
        var records = given
        if records == nil, guests.contains(where: { $0.status == "stopped" && $0.guestType == .lxc }) {
            do {
                records = try await api.clusterTasks()
            } catch {
                logger.debug(
                    "cannot read /cluster/tasks, paused CTs are told from memory: \(BridgeError.wrapping(error).message)")
            }
        }
        // A guest without data on a node that answers is too new for pvestatd: one status/current
        // read tells what it is (an offline node's guests keep their last status).
        let offline = ProxmoxPoller.offlineNodes(in: guests)
        var fresh: [Int: String] = [:]
        for g in guests where g.status == "unknown" && !offline.contains(g.node) {
            if let current = try? await api.currentState(g.location, vmid: g.vmid) {
                fresh[g.vmid] = current.status
                if !g.named, let name = current.name { shared.withLock { $0.currentNames[g.vmid] = name } }
            }
        }
        return shared.withLock { s in
            var out: [Int: ContainerStatus] = [:]
            for g in guests {
                let reported = fresh[g.vmid] ?? g.status
                switch reported {
                case "running":
                    s.suspended.remove(g.vmid)
                    out[g.vmid] = .running
                case "stopped" where g.guestType == .qemu:
                    out[g.vmid] = .stopped
                case "stopped":
                    let suspended = records.flatMap { ProxmoxTasks.suspended(g.vmid, in: $0) } ?? s.suspended.contains(g.vmid)
                    if suspended { s.suspended.insert(g.vmid) } else { s.suspended.remove(g.vmid) }
                    out[g.vmid] = suspended ? .paused : .stopped
                case _ where g.guestType == .qemu && ClusterGuest.pausedStates.contains(reported):
                    out[g.vmid] = .paused
                case _ where offline.contains(g.node):
                    out[g.vmid] = s.lastStatus[g.vmid] ?? .error
                default:
                    out[g.vmid] = .error
                }
            }
            for (vmid, status) in out { s.lastStatus[vmid] = status }
            if given != nil || records != nil { s.tasksReadAt = .now }
            return out
        }
    }

    /// The exposed guests of one `/cluster/resources` read, with their statuses: `paused` for
    /// suspended CTs (from the task list) and paused VMs, `error` on a node that is offline.
    public func containers() async throws -> [ContainerInfo] {
        let hintsSeen = shared.withLock { $0.hintSequence }
        let guests = try await exposedGuests()
        let statuses = await statuses(of: guests)
        shared.withLock { s in
            s.listingSequence += 1
            s.listing = Listing(guests: guests, statuses: statuses, hintsSeen: hintsSeen, sequence: s.listingSequence)
        }
        let names = shared.withLock { $0.currentNames }
        let offline = ProxmoxPoller.offlineNodes(in: guests)
        return guests.map {
            var c = ContainerInfo(
                id: configuration.idPrefix + String($0.vmid), name: $0.named ? $0.name : names[$0.vmid] ?? $0.name, ref: $0.ref,
                status: statuses[$0.vmid] ?? .error, model: $0.node, type: $0.type)
            c.reachable = !offline.contains($0.node)
            return c
        }
    }

    /// The guest whose vmid is `id` without the prefix; no I/O. An id that is not a vmid gives a provider
    /// whose operations throw `not_found`.
    public func provider(for id: String) -> any Provider {
        let rest = id.hasPrefix(configuration.idPrefix) ? String(id.dropFirst(configuration.idPrefix.count)) : id
        let vmid = rest.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } ? Int(rest) : nil
        return ProxmoxContainer(id: id, vmid: vmid, runtime: self)
    }

    /// Why a vmid is not listed: one `/cluster/resources` read says whether it exists, is a
    /// template, a VM where only CTs are exposed, on another node or outside `vmids`.
    public func whyNotListed(_ id: String) async -> String? {
        let rest = id.hasPrefix(configuration.idPrefix) ? String(id.dropFirst(configuration.idPrefix.count)) : id
        guard rest.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let vmid = Int(rest) else {
            return "'\(id)' names no guest of Proxmox at \(configuration.url): expected \(idPrefix)<vmid>"
        }
        do {
            _ = try await locate(vmid)
            return nil
        } catch {
            return BridgeError.wrapping(error).message
        }
    }

    /// Fails the requests in flight and stops the HTTP client.
    public func close() async { api.http.shutdown() }

    // MARK: where guests live, what operations confirmed

    /// The node and type of the last listing, if the guest was exposed then.
    func cachedLocation(of vmid: Int) -> GuestLocation? { shared.withLock { $0.locations[vmid] } }

    /// Finds the guest's node and type with one `/cluster/resources` request, or says why it is
    /// not one of ours.
    func locate(_ vmid: Int) async throws -> GuestLocation {
        let all = try await api.clusterGuests()
        shared.withLock { s in
            s.locations = Dictionary(all.filter(exposes).map { ($0.vmid, $0.location) }, uniquingKeysWith: { a, _ in a })
        }
        guard let g = all.first(where: { $0.vmid == vmid }) else {
            throw BridgeError(.notFound, "no guest \(vmid) on the Proxmox cluster at \(configuration.url)")
        }
        guard let type = g.guestType else {
            throw BridgeError(.notFound, "\(vmid) on Proxmox at \(configuration.url) is a \(g.type) guest, neither lxc nor qemu")
        }
        if !configuration.types.contains(type) {
            let types = configuration.types.sorted().map(\.rawValue).joined(separator: ", ")
            throw BridgeError(
                .notFound,
                "\(g.label) on Proxmox at \(configuration.url) is a \(type == .qemu ? "QEMU VM" : "CT"), and this bridge exposes types [\(types)] there (add \(type.rawValue) to proxmox[].types)"
            )
        }
        if g.template {
            throw BridgeError(.notFound, "\(g.label) on Proxmox at \(configuration.url) is a template; templates cannot run")
        }
        if !configuration.nodes.isEmpty, !configuration.nodes.contains(g.node) {
            throw BridgeError(
                .notFound,
                "\(g.label) is on node \(g.node), which this bridge does not watch (nodes: \(configuration.nodes.joined(separator: ", ")))"
            )
        }
        if !configuration.vmids.isEmpty, !configuration.vmids.contains(vmid) {
            throw BridgeError(.notFound, "\(g.label) is not in this bridge's vmids for \(configuration.url)")
        }
        return g.location
    }

    /// Whether a CT that reads `stopped` is suspended. While the poller reads `/cluster/tasks`
    /// every interval (and so keeps what it knows current), from memory: no request. Otherwise
    /// from the CT's own task list, or from memory when the list no longer holds a lifecycle
    /// task of it.
    func suspended(_ vmid: Int, node: String, metadata: Logger.Metadata) async throws -> Bool {
        let fresh = shared.withLock { s in
            s.tasksReadAt.map { ContinuousClock.now - $0 < configuration.pollInterval * 2 + .seconds(1) } ?? false
        }
        if fresh { return knownSuspended(vmid) }
        let records = try await api.tasks(of: vmid, node: node, metadata: metadata)
        return shared.withLock { s in
            let suspended = ProxmoxTasks.suspended(vmid, in: records) ?? s.suspended.contains(vmid)
            if suspended { s.suspended.insert(vmid) } else { s.suspended.remove(vmid) }
            return suspended
        }
    }

    func knownSuspended(_ vmid: Int) -> Bool { shared.withLock { $0.suspended.contains(vmid) } }

    /// An operation confirmed `status`: remember it, and let the poller tell the event
    /// without asking Proxmox again.
    func operationConfirmed(_ vmid: Int, at location: GuestLocation, status: ContainerStatus) {
        shared.withLock { s in
            s.hintSequence += 1
            s.hints.append((vmid, status, s.hintSequence))
            if s.hints.count > 4096 { s.hints.removeFirst(s.hints.count - 4096) }
            s.locations[vmid] = location
            s.lastStatus[vmid] = status
            guard location.type == .lxc else { return }
            if status == .paused { s.suspended.insert(vmid) } else { s.suspended.remove(vmid) }
        }
    }

    /// Hints newer than `sequence`, and the newest sequence.
    private func hints(after sequence: UInt64) -> ([Int: [ContainerStatus]], UInt64) {
        shared.withLock { s in
            var out: [Int: [ContainerStatus]] = [:]
            for h in s.hints where h.sequence > sequence { out[h.vmid, default: []].append(h.status) }
            return (out, s.hintSequence)
        }
    }

    // MARK: watching

    /// Polls `/cluster/resources` and `/cluster/tasks` once per `poll_interval` until a read of
    /// the resources fails (then throws). The first read, and any read whose set of offline
    /// nodes changed, is a `.resync`. A guest whose listing changed, or that had a lifecycle
    /// task end, is confirmed with one `status/current`; the event names the task's
    /// user and UPID when a task made the change.
    public func follow(_ handler: @escaping @Sendable (RuntimeUpdate) async -> Void) async throws {
        var poller = ProxmoxPoller()
        var tasks = TaskWatch()
        var first = true
        while !Task.isCancelled {
            let tick = ContinuousClock.now
            // Operations that end after this may or may not show in the read: their hints are for later.
            let hintsBefore = shared.withLock { $0.hintSequence }
            let guests = try await exposedGuests()
            let records = await clusterTasks()
            let news = records.map { tasks.news(in: $0) } ?? [:]
            if poller.needsResync(guests) {
                let statuses = await statuses(of: guests, records: records)
                logNodes(before: poller.synced ? poller.offlineNodes : [], after: ProxmoxPoller.offlineNodes(in: guests), guests)
                if first {
                    logger.info(
                        "polling Proxmox at \(configuration.url) every \(configuration.pollInterval) (\(configuration.types.sorted().map(\.rawValue).joined(separator: ", ")))"
                    )
                }
                first = false
                poller.adopt(guests, statuses: statuses, hintsSeen: hintsBefore)
                let listed = shared.withLock { $0.listingSequence }
                await handler(.resync)
                // The bridge listed the guests itself (a read of its own, maybe after a change):
                // start from what it published, or a change in between would never be told.
                if let l = shared.withLock({ $0.listing }), l.sequence > listed {
                    poller.adopt(l.guests, statuses: l.statuses, hintsSeen: l.hintsSeen)
                }
            } else {
                let (hints, sequence) = hints(after: poller.hintsSeen)
                for change in poller.changes(guests, hints: hints, tasked: Set(news.keys)) {
                    for event in await apply(change, to: &poller, tasks: news, records: records) {
                        if let vmid = Int(event.attributes["vmid"] ?? ""), let status = event.status {
                            shared.withLock { $0.lastStatus[vmid] = status }
                        }
                        await handler(.event(event))
                    }
                }
                poller.hintsSeen = sequence
            }
            try? await Task.sleep(until: tick + configuration.pollInterval, clock: .continuous)
        }
    }

    /// `/cluster/tasks`, or nil when it cannot be read (logged once per kind of failure): the
    /// poll goes on with `/cluster/resources` alone, as fresh as pvestatd makes it.
    private func clusterTasks() async -> [TaskRecord]? {
        do {
            let records = try await api.clusterTasks()
            shared.withLock { $0.tasksReadAt = .now }
            return records
        } catch {
            logger.debug("cannot read /cluster/tasks this time: \(BridgeError.wrapping(error).message)")
            return nil
        }
    }

    /// Handles one change: confirms it where needed, updates the poller, returns its events.
    /// A guest whose confirmation fails is left unconfirmed, so the next read looks again.
    private func apply(
        _ change: ProxmoxPoller.Change, to poller: inout ProxmoxPoller, tasks: [Int: TaskRecord], records: [TaskRecord]?
    ) async -> [LifecycleEvent] {
        let seen = Timestamp.now()
        switch change {
        case .created(var g):
            guard let status = await confirmedStatus(of: g, previous: nil, records: records) else { return [] }
            // Listed before pvestatd reported it (`status: unknown`, no name): the status and
            // name come from status/current, read just now.
            if !g.named, let name = shared.withLock({ $0.currentNames.removeValue(forKey: g.vmid) }) { g.name = name }
            poller.record(g, status: status)
            logger.info("\(g.label) (\(g.name)) appeared on node \(g.node)", metadata: ["vmid": "\(g.vmid)"])
            return [event(g, kind: .created, status: status, time: seen, task: tasks[g.vmid])]
        case .destroyed(let vmid, let k):
            poller.remove(vmid)
            shared.withLock { _ = $0.suspended.remove(vmid) }
            let g = ClusterGuest(vmid: vmid, type: k.type, node: k.node, name: k.name, status: "stopped")
            logger.info("\(g.label) (\(k.name)) is gone from node \(k.node)", metadata: ["vmid": "\(vmid)"])
            return [event(g, kind: .destroyed, status: .stopped, time: seen, task: tasks[vmid])]
        case .confirm(let g, let previous):
            return await confirm(g, from: previous.status, in: &poller, time: seen, task: tasks[g.vmid], records: records)
        case .operated(let g, let previous, let statuses, let confirm):
            var events: [LifecycleEvent] = []
            var current = previous.status
            for status in statuses {
                if let kind = ProxmoxPoller.eventKind(from: current, to: status) {
                    events.append(event(g, kind: kind, status: status, time: seen, task: nil))
                }
                current = status
            }
            poller.record(g, status: current)
            if confirm {
                events += await self.confirm(g, from: current, in: &poller, time: seen, task: nil, records: records)
            }
            return events
        case .moved(let g, let previous):
            poller.record(g, status: previous.status)
            return []
        }
    }

    /// Confirms a guest whose listing changed (or that had a task), records it, and returns the
    /// event of the change.
    private func confirm(
        _ g: ClusterGuest, from old: ContainerStatus, in poller: inout ProxmoxPoller, time: Timestamp, task: TaskRecord?,
        records: [TaskRecord]?
    ) async -> [LifecycleEvent] {
        guard let status = await confirmedStatus(of: g, previous: old, records: records) else {
            poller.record(g, status: old, unconfirmed: true)
            return []
        }
        poller.record(g, status: status)
        guard let kind = ProxmoxPoller.eventKind(from: old, to: status) else { return [] }
        return [event(g, kind: kind, status: status, time: time, task: task)]
    }

    /// `status/current` of a changed guest. A CT that reads `stopped` after running is
    /// suspended if the cluster's task list (`records`, read this interval) says its latest
    /// lifecycle task is a successful `vzsuspend`; no task at all is a stop from inside.
    private func confirmedStatus(
        of g: ClusterGuest, previous: ContainerStatus?, records: [TaskRecord]?
    ) async
        -> ContainerStatus?
    {
        let metadata: Logger.Metadata = ["vmid": "\(g.vmid)"]
        do {
            let current = try await api.currentState(g.location, vmid: g.vmid, metadata: metadata)
            if !g.named, let name = current.name { shared.withLock { $0.currentNames[g.vmid] = name } }
            switch current.status {
            case "running":
                shared.withLock { _ = $0.suspended.remove(g.vmid) }
                return .running
            case "paused":
                return .paused
            case "stopped" where g.guestType == .qemu:
                return .stopped
            case "stopped":
                if previous == .running {
                    // A suspend still running: the CT reads stopped before its checkpoint task
                    // ends. Look again at the next read rather than call it a stop.
                    if let records, records.contains(where: { $0.id == String(g.vmid) && !$0.finished && $0.type == "vzsuspend" })
                    {
                        return nil
                    }
                    let suspended: Bool
                    if let records {
                        suspended = ProxmoxTasks.suspended(g.vmid, in: records) ?? false
                        shared.withLock { s in
                            if suspended { s.suspended.insert(g.vmid) } else { s.suspended.remove(g.vmid) }
                        }
                    } else {
                        suspended = try await self.suspended(g.vmid, node: g.node, metadata: metadata)
                    }
                    return suspended ? .paused : .stopped
                }
                return previous == .paused ? .paused : .stopped
            default:
                return .error
            }
        } catch {
            logger.debug(
                "cannot confirm the change of \(g.label) yet: \(BridgeError.wrapping(error).message)", metadata: metadata)
            return nil
        }
    }

    /// The contract's Proxmox event actions.
    static let actionNames: [LifecycleEvent.Kind: String] = [
        .created: "create", .started: "start", .stopped: "stop", .paused: "pause", .unpaused: "unpause", .destroyed: "destroy",
    ]

    /// An event; `task`: the Proxmox task that made the change, whose user and UPID go into the attributes.
    private func event(
        _ g: ClusterGuest, kind: LifecycleEvent.Kind, status: ContainerStatus, time: Timestamp, task: TaskRecord?
    ) -> LifecycleEvent {
        var attributes = ["node": g.node, "vmid": String(g.vmid)]
        if let task {
            if !task.user.isEmpty { attributes["user"] = task.user }
            attributes["upid"] = task.upid
            attributes["task"] = task.type
        }
        return LifecycleEvent(
            id: configuration.idPrefix + String(g.vmid), name: g.name, ref: g.ref, kind: kind,
            action: Self.actionNames[kind] ?? "\(kind)", status: status, time: time, attributes: attributes, type: g.type)
    }

    /// One line per node that went offline or came back.
    private func logNodes(before: Set<String>, after: Set<String>, _ guests: [ClusterGuest]) {
        for node in after.subtracting(before).sorted() {
            let count = guests.filter { $0.node == node }.count
            logger.warning(
                "node \(node) of Proxmox at \(configuration.url) is offline: its \(count) guests keep their last status, marked unreachable, and commands for them answer unavailable until it is back"
            )
        }
        for node in before.subtracting(after).sorted() {
            logger.info("node \(node) of Proxmox at \(configuration.url) is back")
        }
    }
}

extension ProxmoxRuntime {
    /// Logs the loss as a warning the first time, each failed retry at debug level.
    public func connectionLost(_ error: BridgeError, first: Bool) {
        if first {
            logger.warning("lost Proxmox at \(configuration.url): \(error.message); retrying with backoff")
        } else {
            logger.debug("Proxmox at \(configuration.url) still unreachable: \(error.message)")
        }
    }
}
