import IdlewatcherCore

/// One idle-managed container's timer, without I/O: activity and leases in, "put it to sleep
/// now" out. Times are the wall clock (`Timestamp`): what the retained idle state shows and
/// what a restarted bridge takes back.
struct IdleTimer: Sendable, Equatable {
    /// A lease: held until released, or until `until`.
    struct Lease: Sendable, Equatable {
        var until: Timestamp?
    }

    var settings: IdleSettings
    var lastActivity: Timestamp
    var leases: [String: Lease] = [:]
    /// Whether the container runs (only a running container is put to sleep).
    var running: Bool
    /// After a failed idle action: not again before this.
    var retryAt: Timestamp?
    /// The delay before the next retry (30 s, doubling, at most 10 min).
    var retryDelay: Duration = .seconds(30)
    /// An idle action is in flight.
    var sleeping = false
    /// Whether its idle action is allowed for it (else it is never put to sleep).
    var allowed = true
    /// No activity since the bridge started: a retained idle state of its own may still set
    /// `lastActivity` (the restart takes back where it was).
    var restorable = true

    init(settings: IdleSettings, lastActivity: Timestamp, running: Bool) {
        self.settings = settings
        self.lastActivity = lastActivity
        self.running = running
    }

    /// When it goes to sleep if nothing happens; nil while a lease is held or it does not run.
    var sleepsAt: Timestamp? {
        guard running, allowed, leases.isEmpty, settings.managed else { return nil }
        let due = lastActivity + settings.timeout
        if let retryAt, retryAt > due { return retryAt }
        return due
    }

    /// Activity: the timer starts again.
    mutating func touch(at now: Timestamp) {
        if now > lastActivity { lastActivity = now }
        restorable = false
        retryAt = nil
        retryDelay = .seconds(30)
    }

    mutating func apply(_ m: ActivityMessage, at now: Timestamp) {
        touch(at: now)
        switch m {
        case .touch: break
        case .lease(let holder, let ttl): leases[holder] = Lease(until: ttl.map { now + $0 })
        case .release(let holder): leases.removeValue(forKey: holder)
        }
    }

    /// Drops the leases whose ttl ended; true if any did. The end of a ttl is not activity:
    /// the timer runs from the last activity (the lease message was one), so a container whose
    /// timeout has passed sleeps as soon as its last lease ends.
    mutating func expireLeases(at now: Timestamp) -> Bool {
        let ended = leases.filter { $0.value.until.map { $0 <= now } ?? false }
        guard !ended.isEmpty else { return false }
        for holder in ended.keys { leases.removeValue(forKey: holder) }
        return true
    }

    /// Whether the idle action is due now.
    func due(at now: Timestamp) -> Bool {
        guard !sleeping, let at = sleepsAt else { return false }
        return at <= now
    }

    /// The idle action failed: try again later, never sooner than 30 s.
    mutating func failed(at now: Timestamp) {
        sleeping = false
        retryAt = now + retryDelay
        retryDelay = min(retryDelay * 2, .seconds(600))
    }

    /// The leases as the idle state shows them, by holder.
    var holders: [(holder: String, until: Timestamp?)] {
        leases.sorted { $0.key < $1.key }.map { ($0.key, $0.value.until) }
    }
}

extension Timestamp {
    static func + (t: Timestamp, d: Duration) -> Timestamp {
        let (s, a) = d.components
        return Timestamp(nanoseconds: t.nanoseconds &+ s &* 1_000_000_000 &+ a / 1_000_000_000)
    }
}
