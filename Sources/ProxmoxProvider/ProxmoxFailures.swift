import HTTPClient
import IdlewatcherCore
import Logging

/// How the API's failures read as the contract's errors. Shared by requests and logins.
struct ProxmoxFailures: Sendable {
    /// The URL as configured, for messages (never with credentials).
    let url: String
    let requestTimeout: Duration

    init(configuration: ProxmoxEndpointConfiguration) {
        url = configuration.url
        requestTimeout = configuration.requestTimeout
    }

    /// No HTTP answer at all.
    func transport(_ e: HTTPError, method: String, path: String) -> BridgeError {
        switch e.kind {
        case .timeout:
            return BridgeError(
                .timeout,
                "Proxmox at \(url) did not answer \(method) \(path) within \(requestTimeout.wholeMilliseconds / 1000) s: \(e.message)"
            )
        case .tls:
            return BridgeError(
                .unavailable,
                "cannot reach Proxmox at \(url): \(e.message) (set ca_file to the cluster's CA, /etc/pve/pve-root-ca.pem)")
        case .connect, .transfer:
            return BridgeError(.unavailable, "cannot reach Proxmox at \(url): \(e.message)")
        }
    }

    /// A non-200 answer as the contract's error, with Proxmox's own words.
    /// `doing` completes "Proxmox refused to …" ("start CT 105").
    func failure(_ r: ProxmoxReply, doing: String, vmid: Int?) -> BridgeError {
        if r.isMissingConfiguration, let vmid {
            return BridgeError(.notFound, "no guest \(vmid) on Proxmox at \(url) (\(r.text))")
        }
        switch r.status {
        case 301, 302, 307, 308:
            return BridgeError(
                .unavailable, "Proxmox at \(url) redirects (HTTP \(r.status) \(r.reason)): use https:// in url")
        case 403:
            return BridgeError(
                .runtimeError,
                "Proxmox refused to \(doing): \(r.text) (grant that privilege to the token or user, see docs/proxmox.md)")
        case 400:
            let details = r.errors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
            return BridgeError(
                .runtimeError, "Proxmox rejected the request to \(doing): \(r.text)" + (details.isEmpty ? "" : " (\(details))"))
        case 500, 501:
            return BridgeError(.runtimeError, "Proxmox refused to \(doing): \(r.text)")
        case 595, 596:
            // pve-proxy could not forward the request to the node that owns the guest.
            return BridgeError(.unavailable, "Proxmox at \(url) cannot reach the node to \(doing): \(r.text)")
        case 502...599:
            return BridgeError(.unavailable, "Proxmox at \(url) answered HTTP \(r.status) \(r.reason) to \(doing)")
        default:
            return BridgeError(.runtimeError, "Proxmox answered HTTP \(r.status) \(r.reason) to \(doing): \(r.text)")
        }
    }
}
