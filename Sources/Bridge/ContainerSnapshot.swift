import IdlewatcherCore

/// One exposed container as the bridge knows it, for extensions.
public struct ContainerSnapshot: Sendable, Hashable {
    /// Its runtime: topic segment, names, device fields.
    public var runtime: RuntimeDescription
    /// The id in topics.
    public var id: String
    /// The runtime's name for it.
    public var name: String
    /// Its status, as last published.
    public var status: ContainerStatus
    /// Its health (`none` while not running).
    public var health: Health
    /// When the current status began.
    public var since: Timestamp
    /// Its labels (Docker, Podman; none on Proxmox).
    public var labels: [String: String]
    /// What it runs, for people: the image (Docker, Podman) or the node (Proxmox); see
    /// ``RuntimeDescription/deviceModel(_:)``.
    public var model: String?
    /// The kind of guest where the runtime has several (Proxmox `lxc`, `qemu`), else nil.
    public var type: String?
    /// The actions commands may ask for on it.
    public var allowed: Set<Action>
}

/// A change in what the bridge publishes, as extensions observe it (in order).
public enum BridgeChange: Sendable, Hashable {
    /// A container's retained status was published (it changed, or a resync).
    case status(ContainerSnapshot)
    /// A container is gone (destroyed, no longer exposed): its status was cleared.
    case removed(RuntimeKind, id: String)
    /// The bridge (re)connected to the broker and published every status again.
    case brokerConnected
    /// A command was answered (whoever sent it).
    case answered(Reply)
}
