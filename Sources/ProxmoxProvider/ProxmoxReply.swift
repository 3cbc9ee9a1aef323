import HTTPClient
import IdlewatcherCore
import Logging

/// One answer of the Proxmox VE API, taken out of its `{"data": …}` envelope.
struct ProxmoxReply: Sendable {
    var status: Int
    /// The reason phrase: Proxmox puts the first line of its error message there.
    var reason: String
    var data: JSON?
    /// `message` of an error body, its trailing newline trimmed.
    var message: String?
    /// `errors` of a 400: parameter name → what is wrong with it.
    var errors: [String: String]

    var ok: Bool { status == 200 }

    /// Proxmox's own words for a failure: the message, else the reason phrase, else the status.
    var text: String {
        if let m = message, !m.isEmpty { return m }
        if !reason.isEmpty { return reason }
        return "HTTP \(status)"
    }

    /// The 500 Proxmox gives for a CT that does not exist (or not on that node):
    /// `Configuration file 'nodes/pve/lxc/999.conf' does not exist`.
    var isMissingConfiguration: Bool { status == 500 && Self.isMissingConfiguration(text) }

    /// `Configuration file 'nodes/pve/lxc/999.conf' does not exist` (a CT, a VM's GET),
    /// `unable to find configuration file for VM 999 on node 'pve1'` (a VM's actions).
    static func isMissingConfiguration(_ text: String) -> Bool {
        (text.hasPrefix("Configuration file ") && text.hasSuffix("does not exist"))
            || text.hasPrefix("unable to find configuration file for VM")
    }

    init(status: Int, reason: String, body: [UInt8]) {
        self.status = status
        self.reason = reason
        self.errors = [:]
        guard !body.isEmpty, let json = try? JSON.parse(body) else { return }
        data = json["data"]
        if let m = json["message"]?.string { message = m.trimmingWhitespace() }
        for (k, v) in json["errors"]?.object ?? [:] { errors[k] = v.string ?? "\(v)" }
    }
}
