import HTTPClient
import IdlewatcherCore
import Logging

/// The two kinds of Proxmox VE guest the bridge drives.
public enum GuestType: String, Sendable, Hashable, CaseIterable, Comparable {
    /// An LXC container (`pct`, `/nodes/{node}/lxc/{vmid}`).
    case lxc
    /// A QEMU/KVM virtual machine (`qm`, `/nodes/{node}/qemu/{vmid}`).
    case qemu

    /// How messages name one: `CT 105`, `VM 200`.
    var noun: String { self == .lxc ? "CT" : "VM" }

    /// In the order of the contract's list: lxc, qemu.
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// One guest of `/cluster/resources?type=vm`.
struct ClusterGuest: Sendable, Hashable {
    var vmid: Int
    /// `lxc` or `qemu`.
    var type: String
    var node: String
    var name: String
    /// `running`, `stopped`, `unknown` (no data: new, or the node is offline); a VM also
    /// `paused` (and whatever else pvestatd stored from its qmpstatus).
    var status: String
    var template: Bool
    /// Bytes received and sent by the guest (pvestatd's counters), when listed.
    var netBytes: UInt64?
    /// Whether the listing named it (a guest pvestatd has not reported yet has no name there).
    var named = true
    /// Seconds since it booted, as pvestatd last reported (0 when stopped): a new value means
    /// a fresh report.
    var uptime: Int64?

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
        self.uptime = json["uptime"]?.int64
        if let i = json["netin"]?.int64, let o = json["netout"]?.int64, i >= 0, o >= 0 {
            self.netBytes = UInt64(i) &+ UInt64(o)
        }
    }

    var ref: String { "\(node)/\(vmid)" }

    /// `lxc` or `qemu`; nil for any other type.
    var guestType: GuestType? { GuestType(rawValue: type) }

    /// Its node and type, for API paths (an exposed guest is always `lxc` or `qemu`).
    var location: GuestLocation { GuestLocation(node: node, type: guestType ?? .lxc) }

    /// `CT 105`, `VM 200`.
    var label: String { "\(guestType?.noun ?? "guest") \(vmid)" }
}

/// Where a guest lives: its node, and whether it is a CT or a VM (the API path differs).
struct GuestLocation: Sendable, Hashable {
    var node: String
    var type: GuestType
}

/// What `status/current` says of a guest.
struct GuestState: Sendable, Hashable {
    /// `running`, `stopped`, or `paused` for a VM whose QEMU is paused (`qmpstatus`).
    var status: String
    var name: String?
    /// A VM with `agent: 1`: its addresses come from the guest agent.
    var agent: Bool

    /// A VM's `status` is `running` whenever QEMU runs; its `qmpstatus` tells a paused one
    /// (`paused`, `suspended` for guest S3, `prelaunch` before its CPUs ever ran).
    static func status(_ status: String, qmpstatus: String?) -> String {
        guard status == "running", let q = qmpstatus else { return status }
        return ClusterGuest.pausedStates.contains(q) ? "paused" : status
    }
}

extension ClusterGuest {
    /// What a paused VM reads (qmpstatus, and what pvestatd copies to `/cluster/resources`).
    static let pausedStates: Set<String> = ["paused", "suspended", "prelaunch"]
}
