import HTTPClient
import IdlewatcherCore
import Logging

/// The rules of Proxmox tasks that the provider relies on.
enum ProxmoxTasks {
    /// `OK` and `WARNINGS: N` are success; anything else is the error text.
    static func succeeded(_ exitstatus: String) -> Bool {
        exitstatus == "OK" || exitstatus.hasPrefix("WARNINGS:")
    }

    /// Task types that change whether an LXC runs, or leave it freshly stopped.
    static let lifecycleTypes: Set<String> = [
        "vzstart", "vzstop", "vzshutdown", "vzreboot", "vzsuspend", "vzresume", "hastart", "hastop",
        "vzcreate", "vzrestore", "vzmigrate", "vzrollback",
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
