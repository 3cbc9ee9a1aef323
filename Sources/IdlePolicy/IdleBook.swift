import Bridge
import IdlewatcherCore
import Logging
import MQTTClient

/// Everything the idle policy knows, in one actor: the containers of this bridge, their timers,
/// what a restarted bridge took back, and what is still to publish. Its methods return what to
/// do (submit, publish); ``IdlePolicy`` does it.
actor IdleBook {
    let configuration: IdleConfiguration
    let topics: Topics
    let logger: Logger

    /// Every container of this bridge, as last seen.
    private(set) var containers: [ContainerRef: ContainerSnapshot] = [:]
    /// The idle-managed ones.
    private(set) var timers: [ContainerRef: IdleTimer] = [:]
    /// Retained idle states of this bridge from before a restart, not yet taken back.
    private var restored: [ContainerRef: IdleStatePayload.Restored] = [:]
    /// Whether the retained idle states have all arrived (``IdlePolicy/restoreGrace`` after the
    /// first connection).
    private(set) var restoreDone = false
    /// Idle states to publish, and when each was last published (at most once a second).
    private var dirty: Set<ContainerRef> = []
    private var lastPublished: [ContainerRef: ContinuousClock.Instant] = [:]
    /// What was last published per container: an unchanged state is not published again…
    private var lastPayload: [ContainerRef: [UInt8]] = [:]
    /// …except after a reconnect (the broker may have lost its retained messages).
    private var forced: Set<ContainerRef> = []
    /// Malformed activity, logged at most once a minute per container.
    private var malformedLogged: [ContainerRef: ContinuousClock.Instant] = [:]
    /// Containers whose idle action is not allowed (logged once).
    private var refusalLogged: Set<ContainerRef> = []
    /// The dependencies each running container holds a lease on, and when it was last renewed.
    private var heldLeases: [ContainerRef: (deps: [ContainerRef], renewed: ContinuousClock.Instant)] = [:]
    /// Network counters: the last sample per container.
    private var traffic: [ContainerRef: (bytes: UInt64, at: ContinuousClock.Instant)] = [:]

    init(configuration: IdleConfiguration, topics: Topics, logger: Logger) {
        self.configuration = configuration
        self.topics = topics
        self.logger = logger
    }

    /// What the policy must do after a change.
    struct Work: Sendable {
        var publish: [MQTTOutgoingMessage] = []
        var sleep: [(ContainerRef, IdleAction)] = []
        var sample: [ContainerRef] = []

        mutating func merge(_ o: Work) {
            publish += o.publish
            sleep += o.sleep
            sample += o.sample
        }
    }

    /// The holder name of this bridge's leases on `dependent`'s dependencies.
    func holder(of dependent: ContainerRef) -> String { "\(topics.bridgeID):\(dependent)" }

    // MARK: settings

    /// Compose services of `runtime`'s containers, `<project>/<service>` → id.
    private func services(of runtime: RuntimeKind) -> [String: String] {
        var out: [String: String] = [:]
        for (ref, c) in containers where ref.runtime == runtime {
            if let p = c.labels["com.docker.compose.project"], let s = c.labels["com.docker.compose.service"] {
                out["\(p)/\(s)"] = ref.id
            }
        }
        return out
    }

    func settings(_ ref: ContainerRef) -> IdleSettings? {
        guard let c = containers[ref] else { return nil }
        return configuration.settings(for: ref, labels: c.labels, siblings: services(of: ref.runtime))
    }

    /// The dependencies of `ref`, in order; throws on a cycle.
    func dependencies(of ref: ContainerRef) throws -> [ContainerRef] {
        guard let deps = settings(ref)?.dependsOn else { return [] }
        var path: [ContainerRef] = [ref]
        func visit(_ r: ContainerRef) throws {
            for d in settings(r)?.dependsOn ?? configuration.containers[r]?.dependsOn ?? [] {
                if let i = path.firstIndex(of: d) {
                    let cycle = (path[i...] + [d]).map(\.description).joined(separator: " → ")
                    throw BridgeError(
                        .invalidState, "dependency cycle \(cycle): fix depends_on (idle.containers or idlewatcher.depends_on)")
                }
                path.append(d)
                try visit(d)
                path.removeLast()
            }
        }
        try visit(ref)
        return deps
    }

    // MARK: changes

    func apply(_ change: BridgeChange, now: Timestamp) -> Work {
        var work = Work()
        switch change {
        case .status(let c):
            let ref = ContainerRef(c.runtime.kind, c.id)
            let before = containers[ref]
            containers[ref] = c
            work.merge(update(ref, wasRunning: before.map { $0.status == .running }, now: now))
        case .removed(let kind, let id):
            let ref = ContainerRef(kind, id)
            containers.removeValue(forKey: ref)
            if timers.removeValue(forKey: ref) != nil {
                lastPayload.removeValue(forKey: ref)
                work.publish.append(
                    MQTTOutgoingMessage(topic: topics.idle(kind, id), payload: [], retain: true, droppable: false))
            }
            work.publish += releaseLeases(of: ref)
        case .answered(let reply):
            let ref = ContainerRef(reply.runtime, reply.id)
            if reply.ok, ["start", "wake", "unpause", "restart"].contains(reply.action ?? ""), timers[ref] != nil {
                timers[ref]?.touch(at: now)
                dirty.insert(ref)
            }
        case .brokerConnected:
            // The broker may have lost its retained messages: publish them all again.
            dirty.formUnion(timers.keys)
            forced.formUnion(timers.keys)
            for ref in heldLeases.keys { heldLeases[ref]?.renewed = .now - .seconds(3600) }
        }
        return work
    }

    /// A container's settings or status changed.
    private func update(_ ref: ContainerRef, wasRunning: Bool?, now: Timestamp) -> Work {
        var work = Work()
        guard let c = containers[ref], let s = settings(ref) else { return work }
        if wasRunning == nil {
            for p in IdleLabels(c.labels).problems {
                logger.warning("\(ref): \(p); it is ignored", metadata: ["runtime": "\(ref.runtime)", "container": "\(ref.id)"])
            }
        }
        let running = c.status == .running
        if s.managed {
            var t = timers[ref] ?? newTimer(ref, settings: s, running: running, now: now)
            t.settings = s
            if running, wasRunning == false { t.touch(at: now) }  // started elsewhere: a whole timeout from now
            if !running { t.sleeping = false }
            t.running = running
            t.allowed = c.allowed.contains(s.action.action)
            if !t.allowed, refusalLogged.insert(ref).inserted {
                logger.warning(
                    "\(ref) is idle-managed but its idle action \(s.action.rawValue) is not allowed for it (allowed: \(c.allowed.map(\.rawValue).sorted().joined(separator: ", "))): it is never put to sleep",
                    metadata: ["runtime": "\(ref.runtime)", "container": "\(ref.id)"])
            }
            if timers[ref] != t {
                timers[ref] = t
                dirty.insert(ref)
            }
        } else if timers.removeValue(forKey: ref) != nil {
            lastPayload.removeValue(forKey: ref)
            work.publish.append(
                MQTTOutgoingMessage(topic: topics.idle(ref.runtime, ref.id), payload: [], retain: true, droppable: false))
        }
        if running, !s.dependsOn.isEmpty {
            if heldLeases[ref]?.deps != s.dependsOn {
                work.publish += releaseLeases(of: ref)
                heldLeases[ref] = (s.dependsOn, .now)
                work.publish += leaseMessages(ref, s.dependsOn, release: false)
            }
        } else {
            work.publish += releaseLeases(of: ref)
        }
        return work
    }

    private func newTimer(_ ref: ContainerRef, settings: IdleSettings, running: Bool, now: Timestamp) -> IdleTimer {
        var t = IdleTimer(settings: settings, lastActivity: now, running: running)
        if let r = restored.removeValue(forKey: ref) {
            t.lastActivity = min(r.lastActivity, now)
            t.leases = r.leases.filter { $0.value.until.map { $0 > now } ?? true }
            // It was asleep when the bridge went away and runs now: started meanwhile, by hand
            // or otherwise. That is activity (a grace period), not an old timer run out.
            if r.wasAsleep, running { t.lastActivity = now }
        }
        return t
    }

    // MARK: dependency leases

    private func leaseMessages(_ ref: ContainerRef, _ deps: [ContainerRef], release: Bool) -> [MQTTOutgoingMessage] {
        var w = JSONWriter()
        w.add("holder", holder(of: ref))
        if release { w.add("release", true) } else { w.add("ttl", Self.dependencyLeaseTTL) }
        let payload = Array(w.finish().utf8)
        return deps.map { MQTTOutgoingMessage(topic: topics.activity($0.runtime, $0.id), payload: payload, droppable: false) }
    }

    /// A dependency lease lasts this long unless renewed (every ``dependencyLeaseRenewal``), so
    /// that a bridge that dies holding one does not keep its dependencies awake for ever.
    static let dependencyLeaseTTL = "10m"
    static let dependencyLeaseRenewal = Duration.seconds(240)

    private func releaseLeases(of ref: ContainerRef) -> [MQTTOutgoingMessage] {
        guard let held = heldLeases.removeValue(forKey: ref) else { return [] }
        return leaseMessages(ref, held.deps, release: true)
    }

    // MARK: messages

    /// A message on an activity topic of this bridge's namespace.
    func activity(_ ref: ContainerRef, payload: [UInt8], retained: Bool, now: Timestamp) {
        let meta: Logger.Metadata = ["runtime": "\(ref.runtime)", "container": "\(ref.id)"]
        if retained {
            logger.warning(
                "ignored a retained activity message on \(topics.activity(ref.runtime, ref.id)): activity must not be retained (clear it with an empty retained message)",
                metadata: meta)
            return
        }
        switch ActivityMessage.parse(payload) {
        case .failure(let e):
            let last = malformedLogged[ref]
            if last == nil || ContinuousClock.now - last! >= .seconds(60) {
                malformedLogged[ref] = .now
                logger.warning(
                    "ignored an activity message for \(ref): \(e.message) (logged once a minute at most)", metadata: meta)
            }
        case .success(let m):
            guard timers[ref] != nil else {
                logger.debug("activity for \(ref), which is not idle-managed", metadata: meta)
                return
            }
            timers[ref]?.apply(m, at: now)
            dirty.insert(ref)
        }
    }

    /// A retained idle state seen on the broker: this bridge's from before a restart.
    func retainedIdleState(_ ref: ContainerRef, payload: [UInt8], now: Timestamp) {
        guard !payload.isEmpty, let r = IdleStatePayload.decode(payload, bridge: topics.bridgeID) else { return }
        if var t = timers[ref] {
            // Known already (the listing came first): take back what the state says.
            if t.restorable, !(r.wasAsleep && t.running) { t.lastActivity = min(r.lastActivity, now) }
            for (h, l) in r.leases where l.until.map({ $0 > now }) ?? true { t.leases[h] = l }
            timers[ref] = t
            dirty.insert(ref)
        } else {
            restored[ref] = r
        }
    }

    /// The retained idle states have been read: timers go live, and the states of containers
    /// that are gone (or no longer idle-managed) are cleared, in the runtimes already listed.
    func markRestored() -> Work {
        var work = Work()
        if !restoreDone { logger.debug("idle policy: retained idle states read; timers are live") }
        restoreDone = true
        let listed = Set(containers.keys.map(\.runtime))
        for ref in restored.keys.sorted() where listed.contains(ref.runtime) && timers[ref] == nil {
            restored.removeValue(forKey: ref)
            logger.info("clearing the idle state of \(ref): it is gone or no longer idle-managed")
            work.publish.append(
                MQTTOutgoingMessage(topic: topics.idle(ref.runtime, ref.id), payload: [], retain: true, droppable: false))
        }
        return work
    }

    // MARK: time

    /// No timer, nothing to publish, no lease to renew: the tick can wait longer.
    var isQuiet: Bool { timers.isEmpty && dirty.isEmpty && heldLeases.isEmpty }

    /// Called a few times a second: expired leases, due idle actions, idle states to publish.
    func tick(now: Timestamp) -> Work {
        var work = Work()
        for (ref, var t) in timers {
            var changed = t.expireLeases(at: now)
            if restoreDone, t.due(at: now) {
                t.sleeping = true
                changed = true
                work.sleep.append((ref, t.settings.action))
            }
            if changed {
                timers[ref] = t
                dirty.insert(ref)
            }
        }
        let clock = ContinuousClock.now
        for ref in dirty {
            guard let t = timers[ref] else {
                dirty.remove(ref)
                continue
            }
            if let last = lastPublished[ref], clock - last < .seconds(1) { continue }
            dirty.remove(ref)
            let payload = IdleStatePayload.encode(t, bridge: topics.bridgeID)
            guard forced.remove(ref) != nil || lastPayload[ref] != payload else { continue }
            lastPublished[ref] = clock
            lastPayload[ref] = payload
            work.publish.append(
                MQTTOutgoingMessage(topic: topics.idle(ref.runtime, ref.id), payload: payload, retain: true, droppable: false))
        }
        for (ref, held) in heldLeases where clock - held.renewed >= Self.dependencyLeaseRenewal {
            heldLeases[ref]?.renewed = clock
            work.publish += leaseMessages(ref, held.deps, release: false)
        }
        return work
    }

    /// The idle action ended.
    func slept(_ ref: ContainerRef, _ reply: Reply, now: Timestamp) {
        guard var t = timers[ref] else { return }
        let meta: Logger.Metadata = [
            "runtime": "\(ref.runtime)", "container": "\(ref.id)", "action": "\(t.settings.action.rawValue)",
        ]
        if reply.ok {
            t.sleeping = false
            t.running = reply.status == .running
            logger.info("\(ref) was idle for \(t.settings.timeout): \(t.settings.action.rawValue) done", metadata: meta)
        } else {
            t.failed(at: now)
            logger.warning(
                "the idle \(t.settings.action.rawValue) of \(ref) failed: \(reply.error?.code.rawValue ?? "?"): \(reply.error?.message ?? ""); trying again at \(t.retryAt?.rfc3339 ?? "-")",
                metadata: meta)
        }
        timers[ref] = t
        dirty.insert(ref)
    }

    // MARK: traffic

    /// Idle-managed running containers with a traffic threshold.
    func trafficWatched() -> [ContainerRef] {
        timers.filter { $0.value.running && $0.value.settings.trafficThreshold > 0 }.keys.sorted()
    }

    /// New counter readings: a rate at or above the threshold is activity.
    func sampled(_ counters: [ContainerRef: UInt64], now: Timestamp) {
        let clock = ContinuousClock.now
        for (ref, bytes) in counters {
            defer { traffic[ref] = (bytes, clock) }
            guard let previous = traffic[ref], bytes >= previous.bytes, let t = timers[ref] else { continue }
            let seconds = Double((clock - previous.at).wholeMilliseconds) / 1000
            guard seconds > 0 else { continue }
            let perMinute = Double(bytes - previous.bytes) * 60 / seconds
            if perMinute >= Double(t.settings.trafficThreshold) {
                timers[ref]?.touch(at: now)
                dirty.insert(ref)
            }
        }
    }
}
