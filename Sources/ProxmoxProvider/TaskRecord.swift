import HTTPClient
import IdlewatcherCore
import Logging

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
    /// Who started it, as the UPID names them: `root@pam`, `root@pam!bridge` for a token.
    var user: String = ""

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
        if let u = UPID(upid) {
            self.user = u.user
        } else if let u = json["user"]?.string {
            self.user = json["tokenid"]?.string.map { "\(u)!\($0)" } ?? u
        }
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
