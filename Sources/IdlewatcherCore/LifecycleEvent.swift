/// One lifecycle event of one container, as the runtime reported it (or the bridge detected it).
public struct LifecycleEvent: Sendable, Hashable {
    /// The container's id in topics (with the endpoint's `id_prefix`).
    public var id: String
    /// The runtime's display name of the container.
    public var name: String?
    /// The runtime's own handle (Docker: full container id; Proxmox: `<node>/<vmid>`).
    public var ref: String?
    /// Docker's action name (`start`, `die`, `health_status`, …) or the bridge's for Proxmox.
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

    public init(
        id: String, name: String? = nil, ref: String? = nil, action: String, status: ContainerStatus?,
        time: Timestamp, attributes: [String: String] = [:], previousID: String? = nil,
        labels: [String: String]? = nil
    ) {
        self.id = id
        self.name = name
        self.ref = ref
        self.action = action
        self.status = status
        self.time = time
        self.attributes = attributes
        self.previousID = previousID
        self.labels = labels
    }
}
