/// One lifecycle event of one container, as the runtime reported it (or the bridge detected it).
public struct LifecycleEvent: Sendable, Hashable {
    /// The container's id in topics (with the endpoint's `id_prefix`).
    public var id: String
    /// The runtime's display name of the container.
    public var name: String?
    /// The runtime's own handle (Docker: full container id; Proxmox: `<node>/<vmid>`).
    public var ref: String?
    /// What happened, in the core's words: the bridge decides by this, never by `action`.
    public var kind: Kind
    /// The runtime's own word for it, published as the event JSON's `action` (Docker's
    /// `start`, `die`, `health_status`, …; the bridge's for Proxmox).
    public var action: String
    /// The status right after the event; nil when the event does not change it
    /// (the bridge then keeps the status it knew).
    public var status: ContainerStatus?
    /// The runtime's event time, or when the bridge saw the change.
    public var time: Timestamp
    /// String attributes (Docker's event attributes minus labels).
    public var attributes: [String: String]
    /// For `rename`: the id the container had before.
    public var previousID: String?
    /// The container's labels or tags, when the event carries them (used for per-container policy).
    public var labels: [String: String]?
    /// The health the event reports (a `health_status` event), or nil.
    public var health: Health?
    /// The kind of guest (``ContainerInfo/type``): Proxmox `lxc` or `qemu`; nil for Docker and Podman.
    public var type: String?

    /// An event; `name`, `ref`, `previousID`, `labels` and `health` are nil and `attributes` empty unless given.
    public init(
        id: String, name: String? = nil, ref: String? = nil, kind: Kind, action: String, status: ContainerStatus?,
        time: Timestamp, attributes: [String: String] = [:], previousID: String? = nil,
        labels: [String: String]? = nil, health: Health? = nil, type: String? = nil
    ) {
        self.health = health
        self.type = type
        self.id = id
        self.name = name
        self.ref = ref
        self.kind = kind
        self.action = action
        self.status = status
        self.time = time
        self.attributes = attributes
        self.previousID = previousID
        self.labels = labels
    }
}

extension LifecycleEvent {
    /// The kinds of lifecycle event, whatever the runtime calls them.
    public enum Kind: Sendable, Hashable {
        /// Created, started, restarted, paused, unpaused, sent a signal (`killed`: the status need not change),
        /// stopped, exited (`died`), removed (`destroyed`), out of memory (`oom`).
        case created, started, restarted, paused, unpaused, killed, stopped, died, destroyed, oom
        /// The container has a new id (`previousID` holds the old one).
        case renamed
        /// The container's healthcheck reported (the status does not change).
        case health
        /// Anything else the runtime reports that the bridge passes on.
        case other
    }
}
