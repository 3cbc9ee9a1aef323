import IdlewatcherCore

/// The poller's memory of the cluster between two reads of `/cluster/resources`, and the
/// rules that turn a fresh read into work: which CTs to confirm with `status/current`, and
/// which lifecycle events follow. No I/O here: ``ProxmoxRuntime/follow(_:)`` does the requests.
///
/// Proxmox pushes no events, so changes are found by comparison. `/cluster/resources` is
/// cheap (one request for the whole cluster) but may be stale; only the CTs whose entry
/// changed are confirmed with `status/current`, which is exact. Operations of the bridge
/// itself leave hints (the statuses they confirmed, in order), so that their events need no
/// request and two operations between two reads are still two events.
struct ProxmoxPoller: Sendable {
    /// What the poller knows of one guest.
    struct Known: Sendable, Hashable {
        var node: String
        var type: String = "lxc"
        var name: String
        /// What `/cluster/resources` said last: `running`, `stopped` or `unknown`.
        var reported: String
        /// The confirmed status.
        var status: ContainerStatus
        /// The listing's `uptime` when it was recorded.
        var uptime: Int64? = nil
        /// Set when the confirmed status disagreed with the listing (pvestatd had not caught up):
        /// when to confirm again at the latest if the listing never agrees. A change made
        /// before pvestatd reported the previous one (stopped by a task, started again inside
        /// the guest) leaves the listing's status as it was: only a fresh report (a new
        /// `uptime`) or this deadline tells.
        var staleUntil: ContinuousClock.Instant? = nil
    }

    /// How long a listing may lag behind a confirmed status before the guest is confirmed
    /// again: pvestatd's period (10 s) and a margin.
    static let staleWindow: Duration = .seconds(12)

    /// What to do about one CT after a read.
    enum Change: Sendable, Hashable {
        /// New in the listing: confirm its status, then `create`.
        case created(ClusterGuest)
        /// Gone from the listing: `destroy`.
        case destroyed(vmid: Int, Known)
        /// Its entry changed, or a task of it ended: confirm with `status/current`
        /// (and tell a suspended CT from a stopped one by the cluster's task list).
        case confirm(ClusterGuest, previous: Known)
        /// Operations of the bridge changed it, through `statuses` in order (one event each).
        /// `confirm`: the listing does not agree with the last of them (it may be stale, or the
        /// CT changed again since): confirm with `status/current` after them.
        case operated(ClusterGuest, previous: Known, statuses: [ContainerStatus], confirm: Bool)
        /// Only its node or name changed (migration, rename), or the listing caught up with
        /// what the poller knew: remember it, no event.
        case moved(ClusterGuest, previous: Known)
    }

    private(set) var known: [Int: Known] = [:]
    /// Nodes whose guests read `unknown` at the last resync.
    private(set) var offlineNodes: Set<String> = []
    /// False before the first read and after an outage: the next read is a resync.
    private(set) var synced = false
    /// The last operation hint already taken into account.
    var hintsSeen: UInt64 = 0

    init() {}

    /// Nodes whose guests read `unknown`: Proxmox cannot tell their status (node offline).
    static func offlineNodes(in guests: [ClusterGuest]) -> Set<String> {
        // A node is offline when none of its guests has data. One guest without data beside
        // others with it is new (pvestatd has not reported it yet), not a node gone away.
        var unknown: [String: Bool] = [:]
        for g in guests { unknown[g.node] = (unknown[g.node] ?? true) && g.status == "unknown" }
        return Set(unknown.filter(\.value).keys)
    }

    /// Whether this read must be answered with a resync rather than events: the first read,
    /// the first after an outage, or a node went offline or came back.
    func needsResync(_ guests: [ClusterGuest]) -> Bool {
        !synced || Self.offlineNodes(in: guests) != offlineNodes
    }

    /// Takes a read and its statuses as the new baseline (at a resync).
    mutating func adopt(_ guests: [ClusterGuest], statuses: [Int: ContainerStatus], hintsSeen: UInt64) {
        known = [:]
        for g in guests {
            known[g.vmid] = Known(
                node: g.node, type: g.type, name: g.name, reported: g.status, status: statuses[g.vmid] ?? .error)
        }
        offlineNodes = Self.offlineNodes(in: guests)
        synced = true
        self.hintsSeen = hintsSeen
    }

    /// The cluster could not be read: the next successful read is a resync.
    mutating func lost() { synced = false }

    /// What changed since the last read. `hints`: per guest, the statuses that operations of the
    /// bridge confirmed since then, in order. `tasked`: guests with a lifecycle task
    /// that ended since the last read (`/cluster/tasks`), confirmed even where the
    /// listing (up to pvestatd's period stale) still shows the old status. In vmid order.
    func changes(
        _ guests: [ClusterGuest], hints: [Int: [ContainerStatus]], tasked: Set<Int> = [],
        now: ContinuousClock.Instant = .now
    ) -> [Change] {
        var out: [(Int, Change)] = []
        var present = Set<Int>()
        for g in guests {
            present.insert(g.vmid)
            guard let k = known[g.vmid] else {
                out.append((g.vmid, .created(g)))
                continue
            }
            var current = k.status
            var steps: [ContainerStatus] = []
            for s in hints[g.vmid] ?? [] where s != current {
                steps.append(s)
                current = s
            }
            if !steps.isEmpty {
                out.append(
                    (
                        g.vmid,
                        .operated(g, previous: k, statuses: steps, confirm: !Self.agrees(current, reported: g.status, g.type))
                    ))
            } else if tasked.contains(g.vmid) {
                out.append((g.vmid, .confirm(g, previous: k)))
            } else if g.status != k.reported {
                // A listing that caught up with what the poller knows (a stale one, after an
                // operation of the bridge) needs no request.
                if Self.agrees(k.status, reported: g.status, g.type) {
                    out.append((g.vmid, .moved(g, previous: k)))
                } else {
                    out.append((g.vmid, .confirm(g, previous: k)))
                }
            } else if let until = k.staleUntil, !Self.agrees(k.status, reported: g.status, g.type),
                g.uptime != k.uptime || now >= until
            {
                // The listing still disagrees, but pvestatd has reported since (or should have).
                out.append((g.vmid, .confirm(g, previous: k)))
            } else if g.node != k.node || g.name != k.name {
                out.append((g.vmid, .moved(g, previous: k)))
            }
        }
        for (vmid, k) in known where !present.contains(vmid) {
            out.append((vmid, .destroyed(vmid: vmid, k)))
        }
        return out.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Remembers a CT after its change was handled.
    /// `unconfirmed`: the status could not be confirmed; the next read looks at it again.
    mutating func record(
        _ g: ClusterGuest, status: ContainerStatus, unconfirmed: Bool = false, now: ContinuousClock.Instant = .now
    ) {
        let stale = !unconfirmed && !Self.agrees(status, reported: g.status, g.type)
        known[g.vmid] = Known(
            node: g.node, type: g.type, name: g.name, reported: unconfirmed ? "" : g.status, status: status,
            uptime: g.uptime, staleUntil: stale ? now + Self.staleWindow : nil)
    }

    mutating func remove(_ vmid: Int) { known.removeValue(forKey: vmid) }

    /// Whether a confirmed status matches what `/cluster/resources` reports (a suspended CT
    /// reads `stopped`, a paused VM `paused`).
    static func agrees(_ status: ContainerStatus, reported: String, _ type: String) -> Bool {
        switch status {
        case .running: reported == "running"
        case .stopped: reported == "stopped"
        case .paused: type == "qemu" ? ClusterGuest.pausedStates.contains(reported) : reported == "stopped"
        case .error: false
        }
    }

    /// The event for a change of status, or nil when there is none to tell. Changes to or
    /// from `error` (a node offline) are told by a resync instead.
    /// The event action the contract names for that change (`start`, `stop`, …).
    static func action(from old: ContainerStatus, to new: ContainerStatus) -> String? {
        eventKind(from: old, to: new).flatMap { ProxmoxRuntime.actionNames[$0] }
    }

    static func eventKind(from old: ContainerStatus, to new: ContainerStatus) -> LifecycleEvent.Kind? {
        switch (old, new) {
        case (.stopped, .running): .started
        case (.paused, .running): .unpaused
        case (.running, .stopped), (.paused, .stopped): .stopped
        case (.running, .paused), (.stopped, .paused): .paused
        default: nil
        }
    }
}
