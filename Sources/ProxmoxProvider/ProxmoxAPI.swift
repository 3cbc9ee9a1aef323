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

    static func isMissingConfiguration(_ text: String) -> Bool {
        text.hasPrefix("Configuration file ") && text.hasSuffix("does not exist")
    }

    init(status: Int, reason: String, body: [UInt8]) {
        self.status = status
        self.reason = reason
        self.errors = [:]
        guard !body.isEmpty, let json = try? JSON.parse(body) else { return }
        data = json["data"]
        if let m = json["message"]?.string { message = Self.trimmed(m) }
        for (k, v) in json["errors"]?.object ?? [:] { errors[k] = v.string ?? "\(v)" }
    }

    /// Proxmox ends its messages with a newline; replies and logs do not want it.
    static func trimmed(_ s: String) -> String {
        var t = Substring(s)
        while let c = t.last, c == "\n" || c == "\r" || c == " " { t.removeLast() }
        return String(t)
    }
}

/// The Proxmox VE API of one cluster: authenticated requests, and the mapping of its
/// failures onto the contract's error codes with messages a person can act on.
final class ProxmoxAPI: Sendable {
    let configuration: ProxmoxEndpointConfiguration
    let http: HTTPClient
    let auth: ProxmoxAuth
    let failures: ProxmoxFailures
    let logger: Logger

    /// The URL as configured, for messages (never with credentials).
    var url: String { configuration.url }

    init(configuration: ProxmoxEndpointConfiguration, logger: Logger) throws {
        self.configuration = configuration
        let http = HTTPClient(configuration: try configuration.httpConfiguration().get())
        self.http = http
        self.logger = logger
        self.failures = ProxmoxFailures(configuration: configuration)
        self.auth = ProxmoxAuth(configuration: configuration, http: http, logger: logger)
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
            var headers = credentials.headers
            var body: [UInt8]? = nil
            if method != "GET" {
                headers.append(("Content-Type", "application/x-www-form-urlencoded"))
                body = Array(FormEncoding.encode(form).utf8)
            }
            let request = HTTPRequest(
                method: method, path: "/api2/json" + path, headers: headers, body: body,
                timeout: timeout ?? configuration.requestTimeout)
            let started = ContinuousClock.now
            let response: HTTPResponse
            do {
                response = try await http.send(request)
            } catch let e as HTTPError {
                logger.debug("proxmox \(method) \(path) failed: \(e.message)", metadata: metadata)
                throw transportFailure(e, method: method, path: path)
            }
            let ms = (ContinuousClock.now - started).wholeMilliseconds
            logger.debug(
                "proxmox \(method) \(path) → \(response.status) \(response.reason) (\(ms) ms)", metadata: metadata)
            if response.status == 401 {
                if !retried, await auth.rejected(credentials) {
                    retried = true
                    continue
                }
                throw auth.failure(reason: response.reason)
            }
            return ProxmoxReply(status: response.status, reason: response.reason, body: response.body)
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

    /// `status/current` of one CT: `running` or `stopped`.
    func currentStatus(node: String, vmid: Int, metadata: Logger.Metadata = [:]) async throws -> String {
        let data = try await self.data(
            "GET", Self.ctPath(node: node, vmid: vmid) + "/status/current",
            doing: "read the status of CT \(vmid) on node \(node)",
            vmid: vmid, metadata: metadata)
        guard let status = data["status"]?.string else {
            throw BridgeError(.runtimeError, "Proxmox at \(url) sent an unreadable status for CT \(vmid)")
        }
        return status
    }

    static func ctPath(node: String, vmid: Int) -> String {
        "/nodes/\(FormEncoding.percentEncode(node))/lxc/\(vmid)"
    }
}

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
        self.status = json["status"]?.string ?? "unknown"
        self.template = (json["template"]?.int64 ?? 0) == 1 || json["template"]?.bool == true
    }

    var ref: String { "\(node)/\(vmid)" }
}

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
            return BridgeError(.notFound, "no CT \(vmid) on Proxmox at \(url) (\(r.text))")
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
