import IdlewatcherCore

/// The answer to one command, as the contract's reply JSON carries it.
public struct Reply: Sendable, Hashable {
    /// The command's `request_id`, or nil.
    public var requestID: String?
    /// The runtime of the container the command was for.
    public var runtime: RuntimeKind
    /// The container's id in topics.
    public var id: String
    /// The action as written (nil when none could be read).
    public var action: String?
    /// The live status after the operation, or the last known one for a command refused before
    /// anything ran; nil if it could not be read.
    public var status: ContainerStatus?
    /// Why the command failed; nil when it succeeded.
    public var error: BridgeError?
    /// How long the operation ran, when one ran.
    public var duration: Duration?
    /// For `start`, `wake`, `unpause` and `restart`: whether the container is ready (contract, "Readiness").
    public var ready: Bool?

    /// Whether the command succeeded: it has no error.
    public var ok: Bool { error == nil }

    /// A reply; `ready` only for `start`, `wake`, `unpause` and `restart` that ran.
    public init(
        requestID: String?, runtime: RuntimeKind, id: String, action: String?, status: ContainerStatus?,
        error: BridgeError?, duration: Duration?, ready: Bool? = nil
    ) {
        self.ready = ready
        self.requestID = requestID
        self.runtime = runtime
        self.id = id
        self.action = action
        self.status = status
        self.error = error
        self.duration = duration
    }
}
