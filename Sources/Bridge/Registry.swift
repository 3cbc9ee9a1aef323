import IdlewatcherCore
import Logging
import MQTTClient

/// What the bridge knows of every container, and the one place that publishes events and
/// statuses, so that what reaches the broker is in the order the state changed.
actor Registry {
    struct Tracked: Sendable {
        var name: String
        var ref: String?
        var labels: [String: String]
        var status: ContainerStatus
        var since: Timestamp
        var visible: Bool
        var model: String?
        /// The kind of guest (Proxmox `lxc`/`qemu`), the status JSON's `type`.
        var type: String?
        /// False while its runtime cannot reach it (its status is the last known one).
        var reachable = true
        /// `health` of the status JSON; `none` while not running.
        var health: Health = .none
        /// Whether it was ever seen with a healthcheck (a start then reads `starting`).
        var hasHealthcheck = false
        /// When the bridge last changed this entry from an event (a listing begun earlier must not undo it).
        var changedAt: ContinuousClock.Instant
    }

    struct Endpoint: Sendable {
        var available = false
        var listed = false
        /// Reached but not listed yet: at start, or back after an outage and resyncing.
        var connecting = true
        var lastError: BridgeError?
        var containers: [String: Tracked] = [:]
    }

    let bindings: [RuntimeBinding]
    let topics: Topics
    let publish: @Sendable (MQTTOutgoingMessage) -> Void
    let logger: Logger
    private(set) var endpoints: [Endpoint]
    /// Ids whose retained status on the broker was published by this bridge, by runtime.
    private var retainedOurs: [RuntimeKind: Set<String>] = [:]
    /// Everyone following ``changes()``.
    private var followers: [AsyncStream<BridgeChange>.Continuation] = []
    /// The retained index last published (``Topics/bridgeIndex``), and whether one is due.
    private var publishedIndex: [String]? = nil
    private var indexDue = false
    /// False while the broker is away: the index waits for it (it would only take a place
    /// in the outgoing queue that events need), and goes out when it is back.
    private var brokerUp = false
    /// Label problems already logged, by `<runtime>/<id>`: one warning per container and label.
    private var labelWarnings: [String: Set<String>] = [:]
    /// Commands waiting for an endpoint to connect or resync (``awaitContact(_:within:)``), in arrival order.
    private var contactWaiters: [Int: [(ticket: Int, resume: CheckedContinuation<Void, Never>)]] = [:]
    private var nextTicket = 0

    /// - Parameter publish: where events and statuses go (the MQTT client's queue, in order).
    init(bindings: [RuntimeBinding], topics: Topics, publish: @escaping @Sendable (MQTTOutgoingMessage) -> Void, logger: Logger) {
        self.bindings = bindings
        self.topics = topics
        self.publish = publish
        self.logger = logger
        self.endpoints = Array(repeating: Endpoint(), count: bindings.count)
    }

    /// The registry's changes from now on, in the order they were published.
    func changes() -> AsyncStream<BridgeChange> {
        let (stream, continuation) = AsyncStream<BridgeChange>.makeStream()
        followers.append(continuation)
        return stream
    }

    /// Tells every follower.
    func announce(_ change: BridgeChange) {
        for f in followers { f.yield(change) }
    }

    /// Logs what is wrong with a container's `idlewatcher.*` labels, each problem once.
    private func checkLabels(_ kind: RuntimeKind, _ id: String, _ labels: [String: String]) {
        let problems = ExposurePolicy.labelProblems(labels)
        let key = "\(kind)/\(id)"
        guard !problems.isEmpty || labelWarnings[key] != nil else { return }
        var seen = labelWarnings[key] ?? []
        for p in problems where seen.insert(p).inserted {
            logger.warning("\(key): \(p)", metadata: ["runtime": "\(kind)", "container": "\(id)"])
        }
        labelWarnings[key] = seen
    }

    private func snapshot(_ i: Int, _ id: String, _ t: Tracked) -> ContainerSnapshot {
        ContainerSnapshot(
            runtime: bindings[i].runtime.runtime, id: id, name: t.name, status: t.status, health: t.health, since: t.since,
            labels: t.labels,
            model: t.model, type: t.type, allowed: bindings[i].policy.allowedActions(name: t.name, labels: t.labels))
    }

    /// Every exposed container.
    func snapshots() -> [ContainerSnapshot] {
        visibleContainers().map { snapshot($0.0, $0.1, $0.2) }
    }

    /// The endpoint whose namespace holds `id` (longest `id_prefix` first), or nil: not ours.
    /// Byte-wise, as the broker compares topics: `String.hasPrefix` compares characters, so
    /// `nas-` followed by a combining mark or U+200D would not count as `nas-` (found by fuzzing).
    nonisolated func endpointIndex(for runtime: RuntimeKind, id: String) -> Int? {
        var best: Int? = nil
        for (i, b) in bindings.enumerated() where b.runtime.kind == runtime && id.utf8.starts(with: b.runtime.idPrefix.utf8) {
            if best == nil || b.runtime.idPrefix.utf8.count > bindings[best!].runtime.idPrefix.utf8.count { best = i }
        }
        return best
    }

    func tracked(_ i: Int, _ id: String) -> Tracked? { endpoints[i].containers[id] }

    func endpoint(_ i: Int) -> Endpoint { endpoints[i] }

    /// Every visible container, for observers that publish per container (discovery).
    func visibleContainers() -> [(Int, String, Tracked)] {
        var out: [(Int, String, Tracked)] = []
        for (i, e) in endpoints.enumerated() {
            for (id, t) in e.containers where t.visible { out.append((i, id, t)) }
        }
        return out.sorted { $0.1 < $1.1 }
    }

    // MARK: runtime updates

    func markUnavailable(_ i: Int, _ error: BridgeError) {
        endpoints[i].available = false
        endpoints[i].connecting = false
        endpoints[i].lastError = error
        resumeContactWaiters(i)
    }

    /// The endpoint answers again (its first update after an outage, or a resync begins):
    /// commands wait for the listing rather than read the old error.
    func markConnecting(_ i: Int) {
        guard !endpoints[i].available else { return }
        endpoints[i].connecting = true
        endpoints[i].lastError = nil
    }

    /// Returns once endpoint `i` is listed or has failed, at once when it is neither connecting
    /// nor resyncing, or after `limit`. A command that arrives while the bridge is still
    /// connecting at start-up (an automation that sends `wake` as soon as the bridge says
    /// `online`), or while it lists a runtime that just came back, waits for it instead of
    /// being answered `unavailable` for a runtime that is about to be there.
    func awaitContact(_ i: Int, within limit: Duration) async {
        guard endpoints[i].connecting, !endpoints[i].available else { return }
        let ticket = nextTicket
        nextTicket += 1
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            contactWaiters[i, default: []].append((ticket, c))
            Task {
                try? await Task.sleep(for: limit)
                self.resumeContactWaiter(i, ticket)
            }
        }
    }

    private func resumeContactWaiter(_ i: Int, _ ticket: Int) {
        guard let k = contactWaiters[i]?.firstIndex(where: { $0.ticket == ticket }) else { return }
        contactWaiters[i]!.remove(at: k).resume.resume()
    }

    private func resumeContactWaiters(_ i: Int) {
        for w in contactWaiters.removeValue(forKey: i) ?? [] { w.resume.resume() }
    }

    /// A fresh listing: publish every visible container's status; clear the ones that are gone.
    func applyListing(_ i: Int, _ list: [ContainerInfo], startedAt: ContinuousClock.Instant) {
        let kind = bindings[i].runtime.kind
        let policy = bindings[i].policy
        let now = Timestamp.now()
        var next: [String: Tracked] = [:]
        for c in list {
            var t: Tracked
            if var old = endpoints[i].containers[c.id] {
                if old.changedAt <= startedAt, old.status != c.status {
                    old.status = c.status
                    old.since = now
                }
                old.labels = c.labels
                old.ref = c.ref
                old.name = c.name
                old.model = c.model
                old.type = c.type
                old.reachable = c.reachable
                if old.changedAt <= startedAt, let h = c.health { old.setHealth(h) }
                if old.status != .running { old.health = .none }
                t = old
            } else {
                t = Tracked(
                    name: c.name, ref: c.ref, labels: c.labels, status: c.status, since: now, visible: false,
                    model: c.model, changedAt: startedAt)
                t.type = c.type
                t.reachable = c.reachable
                t.setHealth(c.health ?? .none)
            }
            t.visible = policy.isVisible(name: c.name, labels: c.labels)
            if t.visible { checkLabels(kind, c.id, c.labels) }
            next[c.id] = t
            if t.visible { publishStatus(kind, c.id, t, updated: now) }
        }
        for (id, old) in endpoints[i].containers where next[id] == nil && old.visible {
            clearStatus(kind, id)
            announce(.removed(kind, id: id))
        }
        endpoints[i].containers = next
        endpoints[i].available = true
        endpoints[i].listed = true
        endpoints[i].connecting = false
        endpoints[i].lastError = nil
        reconcileRetained(kind)
        resumeContactWaiters(i)
    }

    /// One lifecycle event: published as it came, and the retained status when it changed.
    func apply(_ i: Int, _ e: LifecycleEvent) {
        let kind = bindings[i].runtime.kind
        let policy = bindings[i].policy
        let now = Timestamp.now()
        if e.kind == .renamed, let previous = e.previousID, previous != e.id,
            let old = endpoints[i].containers.removeValue(forKey: previous)
        {
            if old.visible {
                clearStatus(kind, previous)
                announce(.removed(kind, id: previous))
            }
            endpoints[i].containers[e.id] = old
        }
        let existing = endpoints[i].containers[e.id]
        var t =
            existing
            ?? Tracked(
                name: e.name ?? e.id, ref: e.ref, labels: e.labels ?? [:], status: e.status ?? .running, since: e.time,
                visible: false, model: nil, changedAt: .now)
        if let labels = e.labels { t.labels = labels }
        if let name = e.name { t.name = name }
        if let ref = e.ref { t.ref = ref }
        if let type = e.type { t.type = type }
        let wasVisible = existing?.visible ?? false
        t.visible = policy.isVisible(name: t.name, labels: t.labels)
        if t.visible, e.labels != nil { checkLabels(kind, e.id, t.labels) }
        let newStatus = e.status ?? t.status
        let oldHealth = t.health
        if let h = e.health {
            t.setHealth(h)
        } else if newStatus != .running {
            t.health = .none
        } else if e.kind == .started || e.kind == .restarted {
            t.health = t.hasHealthcheck ? .starting : .none
        }
        let changed =
            existing == nil || newStatus != t.status || e.kind == .renamed || (t.visible && !wasVisible) || t.health != oldHealth
        if newStatus != t.status || existing == nil {
            t.status = newStatus
            t.since = e.time
        }
        t.changedAt = .now

        if t.visible {
            publish(
                MQTTOutgoingMessage(
                    topic: topics.event(kind, e.id),
                    payload: Payloads.event(e, runtime: kind, type: t.type, status: newStatus, bridge: topics.bridgeID)))
        }
        if e.kind == .destroyed {
            endpoints[i].containers.removeValue(forKey: e.id)
            if t.visible || wasVisible {
                clearStatus(kind, e.id)
                announce(.removed(kind, id: e.id))
            }
            return
        }
        endpoints[i].containers[e.id] = t
        if t.visible, changed {
            publishStatus(kind, e.id, t, updated: now)
        } else if wasVisible, !t.visible {
            clearStatus(kind, e.id)
            announce(.removed(kind, id: e.id))
        }
    }

    /// A readiness read (while a command waited for the container): its health, published if it changed.
    func sawReadiness(_ i: Int, _ id: String, _ r: Readiness) {
        guard var t = endpoints[i].containers[id], r.status == t.status, r.health != t.health else { return }
        t.setHealth(r.health)
        endpoints[i].containers[id] = t
        if t.visible { publishStatus(bindings[i].runtime.kind, id, t, updated: .now()) }
    }

    /// Publishes every visible container's status again (Home Assistant restarted).
    func republishStatuses() {
        let now = Timestamp.now()
        for (i, e) in endpoints.enumerated() {
            let kind = bindings[i].runtime.kind
            for (id, t) in e.containers.sorted(by: { $0.key < $1.key }) where t.visible {
                publishStatus(kind, id, t, updated: now)
            }
        }
    }

    // MARK: retained statuses on the broker

    /// The retained index of this bridge (left by an earlier run, or this one's echo): every
    /// status in it is one of ours on the broker, whether or not the broker sent it back.
    func sawIndex(_ payload: [UInt8]) {
        guard !payload.isEmpty, let json = try? JSON.parse(payload, maxDepth: 4),
            json["bridge"]?.string == topics.bridgeID, let entries = json["statuses"]?.array
        else { return }
        var touched: Set<RuntimeKind> = []
        for entry in entries.compactMap(\.string) {
            let parts = entry.split(separator: "/", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let kind = RuntimeKind(String(parts[0]))
            if retainedOurs[kind, default: []].insert(String(parts[1])).inserted { touched.insert(kind) }
        }
        for kind in touched { reconcileRetained(kind) }
    }

    /// What the index should say now: the statuses this bridge publishes and those it has not cleared yet.
    private func currentIndex() -> [String] {
        var out = Set<String>()
        for (i, e) in endpoints.enumerated() {
            let kind = bindings[i].runtime.kind.rawValue
            for (id, t) in e.containers where t.visible { out.insert("\(kind)/\(id)") }
        }
        for (kind, ids) in retainedOurs { for id in ids { out.insert("\(kind.rawValue)/\(id)") } }
        return out.sorted()
    }

    /// Publishes the index once things settle (at most once a second), if it changed.
    private func indexChanged() {
        guard !indexDue else { return }
        indexDue = true
        Task {
            try? await Task.sleep(for: .seconds(1))
            self.publishIndex()
        }
    }

    private func publishIndex() {
        indexDue = false
        guard brokerUp else { return }
        let index = currentIndex()
        guard index != publishedIndex else { return }
        publishedIndex = index
        var w = JSONWriter()
        w.add("bridge", topics.bridgeID)
        w.add("statuses", index)
        publish(MQTTOutgoingMessage(topic: topics.bridgeIndex, payload: Array(w.finish().utf8), retain: true, droppable: false))
    }

    /// The broker came back: publish the index again with the statuses.
    func republishIndex() {
        brokerUp = true
        publishedIndex = nil
        indexChanged()
    }

    /// The broker is away (the index waits for it).
    func brokerLost() { brokerUp = false }

    /// A retained status seen on the broker (empty payload: cleared).
    func sawRetainedStatus(_ kind: RuntimeKind, id: String, payload: [UInt8]) {
        if payload.isEmpty {
            retainedOurs[kind, default: []].remove(id)
            return
        }
        guard let json = try? JSON.parse(payload, maxDepth: 8), json["bridge"]?.string == topics.bridgeID else { return }
        retainedOurs[kind, default: []].insert(id)
        reconcileRetained(kind, only: [id])  // the others were reconciled when they came, or at the last listing
    }

    /// Clears retained statuses this bridge left for containers that no longer exist (or are
    /// no longer exposed), in namespaces whose runtime has been listed. Never another bridge's.
    private func reconcileRetained(_ kind: RuntimeKind, only: Set<String>? = nil) {
        guard let ids = only ?? retainedOurs[kind], !ids.isEmpty else { return }
        for id in ids {
            guard let i = endpointIndex(for: kind, id: id), endpoints[i].listed else { continue }
            if let t = endpoints[i].containers[id], t.visible { continue }
            logger.info("clearing the retained status of \(kind.rawValue)/\(id): the container no longer exists")
            clearStatus(kind, id)
        }
    }

    // MARK: publishing

    private func publishStatus(_ kind: RuntimeKind, _ id: String, _ t: Tracked, updated: Timestamp) {
        publish(
            MQTTOutgoingMessage(
                topic: topics.status(kind, id),
                payload: Payloads.status(
                    t.status, runtime: kind, id: id, name: t.name, type: t.type, since: t.since, updated: updated,
                    health: t.health, reachable: t.reachable, bridge: topics.bridgeID),
                retain: true, droppable: false))
        if let i = endpointIndex(for: kind, id: id) {
            announce(.status(snapshot(i, id, t)))
        }
        if publishedIndex?.contains("\(kind.rawValue)/\(id)") != true { indexChanged() }
    }

    private func clearStatus(_ kind: RuntimeKind, _ id: String) {
        retainedOurs[kind, default: []].remove(id)
        indexChanged()
        publish(MQTTOutgoingMessage(topic: topics.status(kind, id), payload: [], retain: true, droppable: false))
    }
}

extension Registry.Tracked {
    /// Takes a health the runtime reported (only a running container has one).
    mutating func setHealth(_ h: Health) {
        if h != .none { hasHealthcheck = true }
        health = status == .running ? h : .none
    }
}
