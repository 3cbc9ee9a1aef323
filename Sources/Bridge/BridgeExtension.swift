import IdlewatcherCore
import Logging
import MQTTClient

/// An optional part of the MQTT surface around the bridge (Home Assistant discovery, the idle
/// policy, …), which can be read, tested and switched off alone.
///
/// It sees the bridge only through its ``ExtensionContext``: its own topics, publishing, the
/// bridge's changes, and the command service.
public protocol BridgeExtension: Sendable {
    /// A name for log lines: `homeassistant`.
    var name: String { get }
    /// The topic filters whose messages it wants; subscribed with the bridge's own.
    var subscriptions: [MQTTSubscription] { get }
    /// Runs for as long as the bridge does (cancelled at shutdown).
    func run(_ context: ExtensionContext) async
}

/// What an extension may do, and nothing else.
public struct ExtensionContext: Sendable {
    /// `bridge.id`.
    public let bridgeID: String
    /// The topic layout (base topic, the bridge's state topic).
    public let topics: Topics
    /// A logger whose `component` is the extension's name.
    public let logger: Logger
    /// Messages on the extension's own ``BridgeExtension/subscriptions``, in arrival order.
    public let messages: AsyncStream<MQTTIncomingMessage>
    /// The bridge's changes since before it started: statuses published, containers gone,
    /// broker (re)connected. In order.
    public let changes: AsyncStream<BridgeChange>
    private let publisher: @Sendable (MQTTOutgoingMessage) -> Void
    private let registry: Registry
    private let commands: CommandService

    init(
        bridgeID: String, topics: Topics, logger: Logger, messages: AsyncStream<MQTTIncomingMessage>,
        changes: AsyncStream<BridgeChange>, publish: @escaping @Sendable (MQTTOutgoingMessage) -> Void, registry: Registry,
        commands: CommandService
    ) {
        self.bridgeID = bridgeID
        self.topics = topics
        self.logger = logger
        self.messages = messages
        self.changes = changes
        self.publisher = publish
        self.registry = registry
        self.commands = commands
    }

    /// Queues a message for the broker (in order with everything the bridge publishes).
    public func publish(_ message: MQTTOutgoingMessage) { publisher(message) }

    /// Every exposed container now.
    public func containers() async -> [ContainerSnapshot] { await registry.snapshots() }

    /// Publishes every exposed container's status again (for a consumer that restarted).
    public func republishStatuses() async { await registry.republishStatuses() }

    /// Runs a command through the command service, exactly as if it had come over MQTT.
    public func submit(_ command: Command, to runtime: RuntimeKind, _ id: String) async -> Reply {
        await commands.submit(command, to: runtime, id)
    }

    /// Whether `runtime`/`id` is served by this bridge (else another bridge on the broker may serve it).
    public func owns(_ runtime: RuntimeKind, _ id: String) -> Bool { commands.owns(runtime, id) }

    /// Adds a step that runs before every `start`, `wake`, `unpause` and `restart`, inside the
    /// container's queue slot (dependencies are woken here). Throwing fails the command with
    /// that error, before the container is touched.
    public func beforeWaking(_ step: @escaping CommandService.Prerequisite) { commands.addPrerequisite(step) }

    /// The containers' network byte counters (in + out), for those of `ids` the runtime can
    /// tell: Proxmox from its last poll (no request), Docker/Podman with one stats read each.
    public func networkBytes(_ runtime: RuntimeKind, _ ids: [String]) async -> [String: UInt64] {
        await commands.networkBytes(runtime, ids)
    }
}
