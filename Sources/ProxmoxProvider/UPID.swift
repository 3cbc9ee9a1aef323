import HTTPClient
import IdlewatcherCore
import Logging

/// A Proxmox task id:
/// `UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{type}:{id}:{user}:` (pstart may
/// have nine hex digits). The node it names is the one to ask about the task.
struct UPID: Sendable, Hashable, CustomStringConvertible {
    let text: String
    let node: String
    let pid: UInt64
    /// The worker's start in clock ticks since the node booted: finer than `starttime`.
    let pstart: UInt64
    /// Seconds since the epoch.
    let starttime: UInt64
    let type: String
    /// The vmid for guest tasks, or "".
    let id: String
    let user: String

    init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 9, parts[0] == "UPID", parts[8].isEmpty, !parts[1].isEmpty, !parts[5].isEmpty,
            !parts[7].isEmpty,
            parts[2].count == 8, let pid = UInt64(parts[2], radix: 16),
            (8...9).contains(parts[3].count), let pstart = UInt64(parts[3], radix: 16),
            parts[4].count == 8, let start = UInt64(parts[4], radix: 16)
        else { return nil }
        self.text = text
        self.node = parts[1]
        self.pid = pid
        self.pstart = pstart
        self.starttime = start
        self.type = parts[5]
        self.id = parts[6]
        self.user = parts[7]
    }

    var description: String { text }
}
