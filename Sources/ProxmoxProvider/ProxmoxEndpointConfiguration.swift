import HTTPClient
import IdlewatcherCore

/// How to reach and authenticate to one Proxmox VE cluster (one `proxmox:` entry of the config).
public struct ProxmoxEndpointConfiguration: Sendable {
    /// How the bridge logs in: an API token, or a user name and password (ticket auth).
    public enum Credentials: Sendable {
        /// `PVEAPIToken=<tokenID>=<secret>`; tokenID is `user@realm!name`.
        case token(id: String, secret: String)
        /// Ticket auth: `POST /access/ticket`, renewed well before its two hours run out.
        case password(username: String, password: String, realm: String?)
    }

    /// `https://pve1.lan:8006` (or `http://` for a test simulator).
    public var url: String
    /// The token or password to log in with; never logged.
    public var credentials: Credentials
    /// PEM of the cluster's CA (`/etc/pve/pve-root-ca.pem`); nil: the system's trust store.
    public var caFile: String?
    /// Skip certificate verification (only when a user asks; the bridge warns at start).
    public var insecureSkipVerify: Bool
    /// Nodes to watch; empty: every node.
    public var nodes: [String]
    /// Guests to expose; empty: every non-template guest of the exposed ``types``.
    public var vmids: [Int]
    /// The kinds of guest to expose: `[lxc]` by default, `[lxc, qemu]` for VMs too.
    public var types: Set<GuestType> = [.lxc]
    /// How often `/cluster/resources` is read.
    public var pollInterval: Duration
    /// Put before every vmid to make the id in topics (`pve1-` gives `pve1-105`); "" for none.
    public var idPrefix: String
    /// The deadline of one API request.
    public var requestTimeout: Duration
    /// How long an operation may take: its task and the `status/current` confirmation after it
    /// (a stop or restart gets its own timeout on top). Shorter than the bridge's operation
    /// timeout, so that the reply names the task that did not finish.
    public var taskTimeout: Duration
    /// Ticket auth: how old a ticket may get before it is renewed (Proxmox tickets live 2 h).
    public var ticketRenewal: Duration

    /// A cluster; by default every LXC of every node, polled every 2 s, with the certificate verified.
    public init(
        url: String, credentials: Credentials, caFile: String? = nil, insecureSkipVerify: Bool = false,
        nodes: [String] = [], vmids: [Int] = [], pollInterval: Duration = .seconds(2), idPrefix: String = "",
        requestTimeout: Duration = .seconds(15), taskTimeout: Duration = .seconds(50),
        ticketRenewal: Duration = .seconds(3600)
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
        self.taskTimeout = taskTimeout
        self.ticketRenewal = ticketRenewal
    }

    /// The libcurl settings for this cluster, or what is wrong with `url`.
    ///
    /// Accepts `https://HOST[:PORT]`, with or without a trailing `/` or `/api2/json`.
    public func httpConfiguration() -> Result<HTTPClientConfiguration, BridgeError> {
        EndpointURL.parse(
            url, schemes: [("https://", true), ("http://", false)], ignoredPath: "/api2/json", example: "https://HOST:8006"
        )
        .map { HTTPClientConfiguration(baseURL: $0.baseURL, caFile: caFile, verifyPeer: !insecureSkipVerify) }
        .mapError { BridgeError(.badRequest, "\($0.message), got '\(url)'") }
    }
}

extension RuntimeKind {
    /// Proxmox VE, `<base>/proxmox/<vmid>/…`.
    public static let proxmox = RuntimeKind("proxmox")
}
