import HTTPClient
import IdlewatcherCore
import Logging

/// One guest of `/cluster/resources?type=vm`.
struct ClusterGuest: Sendable, Hashable {
    var vmid: Int
    /// `lxc` or `qemu`.
    var type: String
    var node: String
    var name: String
    /// `running`, `stopped`, or `unknown` while the node is offline.
    var status: String
    var template: Bool
    /// Bytes received and sent by the guest (pvestatd's counters), when listed.
    var netBytes: UInt64?
    /// Whether the listing named it (a guest pvestatd has not reported yet has no name there).
    var named = true

    init(vmid: Int, type: String = "lxc", node: String, name: String, status: String, template: Bool = false) {
        self.vmid = vmid
        self.type = type
        self.node = node
        self.name = name
        self.status = status
        self.template = template
    }

    init?(json: JSON) {
        guard let vmid = json["vmid"]?.int64, let node = json["node"]?.string else { return nil }
        self.vmid = Int(vmid)
        self.type = json["type"]?.string ?? ""
        self.node = node
        self.name = json["name"]?.string ?? "CT\(vmid)"
        self.named = json["name"]?.string != nil
        self.status = json["status"]?.string ?? "unknown"
        self.template = (json["template"]?.int64 ?? 0) == 1 || json["template"]?.bool == true
        if let i = json["netin"]?.int64, let o = json["netout"]?.int64, i >= 0, o >= 0 {
            self.netBytes = UInt64(i) &+ UInt64(o)
        }
    }

    var ref: String { "\(node)/\(vmid)" }
}
