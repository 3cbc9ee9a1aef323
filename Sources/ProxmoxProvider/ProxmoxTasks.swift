import HTTPClient
import IdlewatcherCore
import Logging

/// The rules of Proxmox tasks that the provider relies on.
enum ProxmoxTasks {
    /// `OK` and `WARNINGS: N` are success; anything else is the error text.
    static func succeeded(_ exitstatus: String) -> Bool {
        exitstatus == "OK" || exitstatus.hasPrefix("WARNINGS:")
    }

    /// Task types that change whether a guest runs (or is paused), or leave it freshly stopped.
    static let lifecycleTypes: Set<String> = [
        "vzstart", "vzstop", "vzshutdown", "vzreboot", "vzsuspend", "vzresume", "hastart", "hastop",
        "vzcreate", "vzrestore", "vzmigrate", "vzrollback",
        "qmstart", "qmstop", "qmshutdown", "qmreboot", "qmpause", "qmsuspend", "qmresume", "qmreset",
        "qmcreate", "qmrestore", "qmigrate", "qmrollback",
    ]

    /// The latest finished lifecycle task of `vmid` among `records`: by end time, then start
    /// time, then the worker's start in clock ticks (tasks one second apart are common), then
    /// the order Proxmox listed them in (newest first).
    static func latestLifecycleTask(of vmid: Int, in records: [TaskRecord]) -> TaskRecord? {
        let id = String(vmid)
        var best: (record: TaskRecord, index: Int)? = nil
        for (index, r) in records.enumerated() where r.id == id && r.finished && lifecycleTypes.contains(r.type) {
            guard let b = best else {
                best = (r, index)
                continue
            }
            let a = (r.endtime ?? 0, r.starttime, r.pstart)
            let c = (b.record.endtime ?? 0, b.record.starttime, b.record.pstart)
            if a > c { best = (r, index) }
        }
        return best?.record
    }

    /// Whether a CT that reads `stopped` is suspended: its latest lifecycle task is a
    /// successful `vzsuspend`. Nil when `records` hold no lifecycle task of it.
    static func suspended(_ vmid: Int, in records: [TaskRecord]) -> Bool? {
        guard let t = latestLifecycleTask(of: vmid, in: records) else { return nil }
        return t.type == "vzsuspend" && succeeded(t.exitstatus ?? "")
    }
}

/// `/cluster/tasks` between two reads: which guests had a lifecycle task end since the last
/// one. Proxmox rebroadcasts a node's task list when a task starts and when it
/// ends, so a change made through Proxmox (GUI, API, `pct`/`qm`, HA) shows here well before
/// `/cluster/resources` (pvestatd, up to its period stale) has it. No I/O.
struct TaskWatch: Sendable {
    /// UPID → whether it had ended, at the last read.
    private var seen: [String: Bool] = [:]
    private var primed = false

    init() {}

    /// The guests whose lifecycle task has ended since the last read, each with its newest such
    /// task. The first read only takes note. A task that is still running is not news: a
    /// guest's status settles when its task ends (a start ends once the guest runs, a
    /// shutdown once it is down), so one confirmation per change is enough.
    mutating func news(in records: [TaskRecord]) -> [Int: TaskRecord] {
        var out: [Int: TaskRecord] = [:]
        var next: [String: Bool] = [:]
        for r in records where !r.upid.isEmpty {
            next[r.upid] = r.finished
            guard primed, r.finished, seen[r.upid] != true, ProxmoxTasks.lifecycleTypes.contains(r.type),
                let vmid = Int(r.id)
            else { continue }
            if let o = out[vmid], (o.starttime, o.pstart) > (r.starttime, r.pstart) { continue }
            out[vmid] = r
        }
        seen = next
        primed = true
        return out
    }

    /// Forget everything (after an outage): the next read takes note again.
    mutating func reset() {
        seen = [:]
        primed = false
    }
}
