import IdlewatcherCore

/// How to reach and authenticate to one Proxmox VE cluster (one `proxmox:` entry of the config).
public struct ProxmoxEndpointConfiguration: Sendable {
    public enum Credentials: Sendable {
        /// `PVEAPIToken=<tokenID>=<secret>`; tokenID is `user@realm!name`.
        case token(id: String, secret: String)
        /// Ticket auth: `POST /access/ticket`, renewed well before its two hours run out.
        case password(username: String, password: String, realm: String?)
    }

    /// `https://pve1.lan:8006` (or `http://` for a test simulator).
    public var url: String
    public var credentials: Credentials
    /// PEM of the cluster's CA (`/etc/pve/pve-root-ca.pem`); nil: the system's trust store.
    public var caFile: String?
    /// Skip certificate verification (only when a user asks; the bridge warns at start).
    public var insecureSkipVerify: Bool
    /// Nodes to watch; empty: every node.
    public var nodes: [String]
    /// CTs to expose; empty: every non-template LXC.
    public var vmids: [Int]
    /// How often `/cluster/resources` is read.
    public var pollInterval: Duration
    public var idPrefix: String
    /// The deadline of one API request.
    public var requestTimeout: Duration

    public init(
        url: String, credentials: Credentials, caFile: String? = nil, insecureSkipVerify: Bool = false,
        nodes: [String] = [], vmids: [Int] = [], pollInterval: Duration = .seconds(2), idPrefix: String = "",
        requestTimeout: Duration = .seconds(15)
    ) {
        self.url = url
        self.credentials = credentials
        self.caFile = caFile
        self.insecureSkipVerify = insecureSkipVerify
        self.nodes = nodes
        self.vmids = vmids
        self.pollInterval = pollInterval
        self.idPrefix = idPrefix
        self.requestTimeout = requestTimeout
    }
}
