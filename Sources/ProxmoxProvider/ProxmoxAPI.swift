import HTTPClient
import IdlewatcherCore
import Logging

/// The Proxmox VE API of one cluster: authenticated requests, and the mapping of its
/// failures onto the contract's error codes with messages a person can act on.
final class ProxmoxAPI: Sendable {
    let configuration: ProxmoxEndpointConfiguration
    let http: HTTPClient
    let auth: ProxmoxAuth
    let failures: ProxmoxFailures
    let transport: ProxmoxTransport
    let logger: Logger

    /// The URL as configured, for messages (never with credentials).
    var url: String { configuration.url }

    init(configuration: ProxmoxEndpointConfiguration, logger: Logger) throws {
        self.configuration = configuration
        let http = HTTPClient(configuration: try configuration.httpConfiguration().get())
        self.http = http
        self.logger = logger
        self.failures = ProxmoxFailures(configuration: configuration)
        self.transport = ProxmoxTransport(http: http, failures: failures, logger: logger)
        self.auth = ProxmoxAuth(configuration: configuration, transport: transport, logger: logger)
    }

    /// Sends one request under `/api2/json` and returns whatever Proxmox answered, except:
    /// transport failures and a final 401 throw (`unavailable`, `timeout`). With ticket auth a
    /// 401 (expired ticket, stale CSRF token) logs in again and retries once.
    func send(
        _ method: String, _ path: String, form: [(String, String)] = [], timeout: Duration? = nil,
        metadata: Logger.Metadata = [:]
    ) async throws -> ProxmoxReply {
        var retried = false
        while true {
            let credentials = try await auth.credentials(forWrite: method != "GET")
            let reply = try await transport.exchange(
                method, path, headers: credentials.headers, form: form, timeout: timeout, metadata: metadata)
            if reply.status == 401 {
                if !retried, await auth.rejected(credentials) {
                    retried = true
                    continue
                }
                throw auth.failure(reason: reply.reason)
            }
            return reply
        }
    }

    /// `send`, then the envelope's `data` of a 200, or the failure as a ``BridgeError``.
    func data(
        _ method: String, _ path: String, form: [(String, String)] = [], doing: String, vmid: Int? = nil,
        metadata: Logger.Metadata = [:]
    ) async throws -> JSON {
        let reply = try await send(method, path, form: form, metadata: metadata)
        guard reply.ok else { throw failure(reply, doing: doing, vmid: vmid) }
        return reply.data ?? .null
    }

    func transportFailure(_ e: HTTPError, method: String, path: String) -> BridgeError {
        failures.transport(e, method: method, path: path)
    }

    func failure(_ r: ProxmoxReply, doing: String, vmid: Int?) -> BridgeError {
        failures.failure(r, doing: doing, vmid: vmid)
    }
}

extension ProxmoxAPI {
    /// `/cluster/resources?type=vm`: every guest of the cluster, in one request.
    func clusterGuests(metadata: Logger.Metadata = [:]) async throws -> [ClusterGuest] {
        let data = try await self.data(
            "GET", "/cluster/resources?type=vm", doing: "list the cluster's guests", metadata: metadata)
        guard let list = data.array else {
            throw BridgeError(.runtimeError, "Proxmox at \(url) sent an unreadable /cluster/resources answer")
        }
        return list.compactMap(ClusterGuest.init(json:))
    }

    /// `status/current` of one guest: `running`, `stopped`, or (a VM) `paused`.
    func currentStatus(_ at: GuestLocation, vmid: Int, metadata: Logger.Metadata = [:]) async throws -> String {
        try await currentState(at, vmid: vmid, metadata: metadata).status
    }

    /// `status/current` of one guest: its status, its name where it says (a guest too new
    /// for `/cluster/resources` to name has one here), and whether a VM has its agent configured.
    func currentState(_ at: GuestLocation, vmid: Int, metadata: Logger.Metadata = [:]) async throws -> GuestState {
        let what = "\(at.type.noun) \(vmid)"
        let data = try await self.data(
            "GET", Self.guestPath(at, vmid: vmid) + "/status/current", doing: "read the status of \(what) on node \(at.node)",
            vmid: vmid, metadata: metadata)
        guard let status = data["status"]?.string else {
            throw BridgeError(.runtimeError, "Proxmox at \(url) sent an unreadable status for \(what)")
        }
        return GuestState(
            status: GuestState.status(status, qmpstatus: data["qmpstatus"]?.string), name: data["name"]?.string,
            agent: data["agent"]?.int64 == 1 || data["agent"]?.string == "1")
    }

    /// `/nodes/{node}/lxc/{vmid}` or `/nodes/{node}/qemu/{vmid}`.
    static func guestPath(_ at: GuestLocation, vmid: Int) -> String {
        "/nodes/\(FormEncoding.percentEncode(at.node))/\(at.type.rawValue)/\(vmid)"
    }

    static func ctPath(node: String, vmid: Int) -> String {
        "/nodes/\(FormEncoding.percentEncode(node))/lxc/\(vmid)"
    }
}
