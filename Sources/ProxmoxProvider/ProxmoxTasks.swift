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

/// One entry of `/nodes/{node}/tasks` or `/cluster/tasks`.
struct TaskRecord: Sendable, Hashable {
    var upid: String
    var node: String
    var type: String
    /// The vmid for guest tasks.
    var id: String
    var starttime: Int64
    var pstart: Int64
    /// Nil while the task runs.
    var endtime: Int64?
    /// The exit status once finished (`OK`, `WARNINGS: 2`, an error text).
    var exitstatus: String?

    init(
        upid: String = "", node: String = "", type: String, id: String, starttime: Int64, pstart: Int64 = 0,
        endtime: Int64?, exitstatus: String?
    ) {
        self.upid = upid
        self.node = node
        self.type = type
        self.id = id
        self.starttime = starttime
        self.pstart = pstart
        self.endtime = endtime
        self.exitstatus = exitstatus
    }

    init?(json: JSON) {
        guard let type = json["type"]?.string, let start = json["starttime"]?.int64 else { return nil }
        self.upid = json["upid"]?.string ?? ""
        self.node = json["node"]?.string ?? ""
        self.type = type
        self.id = json["id"]?.string ?? ""
        self.starttime = start
        self.pstart = json["pstart"]?.int64 ?? 0
        // Running tasks have no endtime; `status` is "RUNNING" (node list) or absent (cluster list).
        self.endtime = json["endtime"]?.int64
        if let end = endtime, end > 0, let s = json["status"]?.string, s != "RUNNING" {
            self.exitstatus = s
        } else {
            self.endtime = nil
            self.exitstatus = nil
        }
    }

    var finished: Bool { endtime != nil }
}

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

extension ProxmoxAPI {
    /// Waits for a task by polling its status on the node named in the UPID.
    /// Returns its exit status if it succeeded; throws `runtime_error` with Proxmox's text if
    /// it failed, `not_found` if it failed because the CT does not exist, `timeout` past `deadline`.
    @discardableResult
    func waitForTask(
        _ upid: UPID, vmid: Int, what: String, deadline: ContinuousClock.Instant, metadata: Logger.Metadata
    ) async throws -> String {
        let path = "/nodes/\(FormEncoding.percentEncode(upid.node))/tasks/\(FormEncoding.percentEncode(upid.text))/status"
        var delay = Duration.milliseconds(50)
        while true {
            let data = try await self.data("GET", path, doing: "read the task \(upid)", vmid: vmid, metadata: metadata)
            if data["status"]?.string == "stopped" {
                let exit = ProxmoxReply.trimmed(data["exitstatus"]?.string ?? "")
                if ProxmoxTasks.succeeded(exit) {
                    logger.debug("\(upid.type) of CT \(vmid) ended: \(exit)", metadata: metadata)
                    return exit
                }
                if ProxmoxReply.isMissingConfiguration(exit) {
                    throw BridgeError(.notFound, "no CT \(vmid) on Proxmox at \(url) (\(exit))")
                }
                throw BridgeError(
                    .runtimeError, "\(what) failed: the \(upid.type) task said: \(exit.isEmpty ? "unknown error" : exit)")
            }
            if ContinuousClock.now + delay > deadline {
                throw BridgeError(
                    .timeout,
                    "\(what) did not finish in time: the \(upid.type) task \(upid) is still running on node \(upid.node)")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(500))
        }
    }

    /// The recent tasks of one CT on its node (running ones too).
    func tasks(of vmid: Int, node: String, metadata: Logger.Metadata = [:]) async throws -> [TaskRecord] {
        let data = try await self.data(
            "GET", "/nodes/\(FormEncoding.percentEncode(node))/tasks?vmid=\(vmid)&source=all&limit=50",
            doing: "list the tasks of CT \(vmid)", metadata: metadata)
        return (data.array ?? []).compactMap(TaskRecord.init(json:))
    }

    /// `/cluster/tasks`: running and recent tasks of every node, in one request.
    func clusterTasks(metadata: Logger.Metadata = [:]) async throws -> [TaskRecord] {
        let data = try await self.data("GET", "/cluster/tasks", doing: "list the cluster's tasks", metadata: metadata)
        return (data.array ?? []).compactMap(TaskRecord.init(json:))
    }
}
