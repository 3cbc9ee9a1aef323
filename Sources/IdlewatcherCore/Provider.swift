/// One container of one runtime, and everything the bridge can do to it.
///
/// The seed interface of the project: the bridge drives every runtime through it and never
/// knows which one it drives. Operations return when the runtime says the operation is done
/// (for asynchronous runtimes: when its task ended); they throw ``BridgeError`` with the
/// contract's codes (`not_found`, `unavailable`, `timeout`, `runtime_error`, …).
/// Cancelling the calling task abandons the request. A container's lifecycle events come
/// from its endpoint (``ContainerRuntime/follow(_:)``), one stream for all its containers.
public protocol Provider: Sendable {
    /// The container's id in topics, with the endpoint's `id_prefix`.
    var id: String { get }

    /// Starts the container.
    func start() async throws
    /// Freezes the container (Proxmox: suspends the CT).
    func pause() async throws
    /// Thaws a paused container (Proxmox: resumes the CT).
    func unpause() async throws
    /// Stops the container: `signal` (nil: the runtime's default) then, after `timeout`
    /// (nil: the runtime's default), a hard kill.
    func stop(signal: Signal?, timeout: Duration?) async throws
    /// Sends `signal` (nil: SIGKILL) to the container's main process.
    func kill(signal: Signal?) async throws
    /// Restarts the container, waiting `timeout` for it to stop.
    func restart(timeout: Duration?) async throws
    /// Reads the live status from the runtime.
    func status() async throws -> ContainerStatus
    /// Reads whether the container is ready (contract, "Readiness"); may make the runtime run
    /// a healthcheck where nothing else runs them (Podman without systemd).
    func readiness() async throws -> Readiness
}

/// What the bridge knows about one container of a runtime at a listing.
public struct ContainerInfo: Sendable, Hashable {
    /// The id in topics, with the endpoint's `id_prefix`.
    public var id: String
    /// The runtime's own name for it (Docker: the name; Proxmox: the CT's hostname).
    public var name: String
    /// The runtime's own handle (Docker: full container id; Proxmox: `<node>/<vmid>`).
    public var ref: String
    /// Its live status at the listing.
    public var status: ContainerStatus
    /// Docker labels (Proxmox: none); the bridge reads `idlewatcher.*` from them.
    public var labels: [String: String]
    /// Its health as the listing tells it (Docker: the `(healthy)` of its status line); nil
    /// where the listing does not tell (Podman).
    public var health: Health?
    /// What the container runs on, for people: the image (Docker) or the node (Proxmox).
    public var model: String?
    /// The runtime's own kind of guest where it has several (Proxmox: `lxc` or `qemu`), published
    /// as `type` in the status and event JSON; nil where there is one kind (Docker, Podman).
    public var type: String?
    /// False while the runtime cannot reach it (a Proxmox node that is offline): `status` is
    /// then the last one known, and the status JSON says `"reachable":false`.
    public var reachable: Bool = true

    /// A listed container; without labels or model, and with health `none`, unless given.
    public init(
        id: String, name: String, ref: String, status: ContainerStatus, labels: [String: String] = [:],
        model: String? = nil, health: Health? = Health.none, type: String? = nil
    ) {
        self.health = health
        self.type = type
        self.id = id
        self.name = name
        self.ref = ref
        self.status = status
        self.labels = labels
        self.model = model
    }
}

/// What a runtime endpoint tells the bridge as time goes by.
public enum RuntimeUpdate: Sendable, Hashable {
    /// A lifecycle event of one container, in the order the runtime produced them.
    case event(LifecycleEvent)
    /// The runtime is reachable (again): the bridge lists its containers and publishes fresh statuses.
    case resync
    /// The runtime cannot be reached; the endpoint keeps retrying with backoff.
    case unavailable(BridgeError)
}

/// One endpoint of a runtime: a Docker engine, a Podman service, or a Proxmox VE cluster.
///
/// It lists containers, hands out a ``Provider`` per container and follows one stream of
/// updates for all its containers (one Docker `/events` stream, one Proxmox poller). It does
/// not reconnect by itself: ``RuntimeWatch`` (run by the bridge's supervisor) does that, the
/// same way for every runtime.
public protocol ContainerRuntime: Sendable {
    /// What this runtime is and can do.
    var runtime: RuntimeDescription { get }
    /// The endpoint's URL, for log lines and error messages (never with credentials).
    var endpoint: String { get }
    /// The prefix of every id of this endpoint (`nas-`), or "".
    var idPrefix: String { get }
    /// The delays between reconnection attempts.
    var reconnectBackoff: Backoff { get }
    /// Every container this endpoint exposes, with its live status.
    func containers() async throws -> [ContainerInfo]
    /// The container with this id (prefix included). Does no I/O: operations on a container
    /// that does not exist throw `not_found`.
    func provider(for id: String) -> any Provider
    /// Follows the endpoint for as long as the connection lasts: hands `handler` a `.resync`
    /// once the runtime answers (and whenever the bridge must list again), then its events, in
    /// order (the next one waits for the handler to return). Returns or throws when the
    /// connection is lost; never reports `.unavailable` itself.
    func follow(_ handler: @escaping @Sendable (RuntimeUpdate) async -> Void) async throws
    /// The network byte counters (received + sent, since the container started) of the running
    /// containers among `ids`; ids it cannot tell are left out.
    func networkBytes(of ids: [String]) async throws -> [String: UInt64]
    /// Tells the runtime its connection was lost (for its log: `first` for the failure that
    /// made it unavailable, then each failed retry).
    func connectionLost(_ error: BridgeError, first: Bool)
    /// Stops the watcher and releases connections.
    func close() async
    /// Why `id` is not one of the endpoint's listed containers, in words a person can act on
    /// (`VM 104 is a QEMU VM, and this bridge exposes types [lxc] there`), or nil for the
    /// bridge's own "not exposed" message. Asked when a command names an unknown id; may ask
    /// the runtime. By default nil.
    func whyNotListed(_ id: String) async -> String?
}

extension ContainerRuntime {
    /// Nil: the bridge's own message.
    public func whyNotListed(_ id: String) async -> String? { nil }

    /// The topic segment.
    public var kind: RuntimeKind { runtime.kind }

    /// Follows the endpoint until the calling task is cancelled, reconnecting with
    /// ``reconnectBackoff``; see ``RuntimeWatch``.
    public func watch(_ handler: @escaping @Sendable (RuntimeUpdate) async -> Void) async {
        await RuntimeWatch(self).run(handler)
    }
}

extension Provider {
    /// Brings the container to `running`: unpause if paused, else start.
    public func wake() async throws {
        switch try await status() {
        case .running: return
        case .paused: try await unpause()
        case .stopped, .error: try await start()
        }
    }
}
