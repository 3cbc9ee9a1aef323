import IdlewatcherCore
import Logging
import MQTTClient
import ServiceLifecycle

/// The bridge: runtime events onto MQTT, MQTT commands onto runtimes.
///
/// One `Service` that runs its parts side by side: an ``EndpointSupervisor`` per runtime
/// endpoint (events into the ``Registry``, which publishes them and the retained statuses),
/// the ``CommandService`` (the one way to the runtimes), the MQTT intake (commands in,
/// replies out, messages to extensions), the extensions, and the health file. On graceful
/// shutdown it stops taking commands, lets those in flight finish (bounded), and returns; the
/// MQTT service, shut down after it, then says `offline`.
public final class Bridge: Service, Sendable {
    let settings: BridgeSettings
    let bindings: [RuntimeBinding]
    let mqtt: MQTTClient
    let topics: Topics
    let logger: Logger
    let registry: Registry
    /// The command service: submit commands from inside the process here.
    public let commands: CommandService
    let supervisors: [EndpointSupervisor]
    private let extensions: [any BridgeExtension]

    /// Wires the bridge; nothing runs until ``run()``. Give `mqtt` the subscriptions of
    /// ``subscriptions(settings:runtimes:extensions:)`` when creating it.
    public init(
        settings: BridgeSettings, runtimes: [RuntimeBinding], mqtt: MQTTClient, extensions: [any BridgeExtension] = [],
        logger: Logger
    ) {
        self.settings = settings
        self.bindings = runtimes
        self.mqtt = mqtt
        self.logger = logger
        let topics = Topics(base: settings.baseTopic, bridgeID: settings.bridgeID)
        let registry = Registry(bindings: runtimes, topics: topics, publish: { [mqtt] in mqtt.publish($0) }, logger: logger)
        self.registry = registry
        self.topics = topics
        self.commands = CommandService(bindings: runtimes, registry: registry, settings: settings, logger: logger)
        self.supervisors = runtimes.indices.map {
            EndpointSupervisor(index: $0, runtime: runtimes[$0].runtime, registry: registry, logger: logger)
        }
        self.extensions = extensions
    }

    /// The subscriptions the bridge and its extensions need; give them to the MQTT client at creation.
    public static func subscriptions(
        settings: BridgeSettings, runtimes: [RuntimeKind], extensions: [any BridgeExtension] = []
    ) -> [MQTTSubscription] {
        let topics = Topics(base: settings.baseTopic, bridgeID: settings.bridgeID)
        var subs: [MQTTSubscription] = []
        for kind in Set(runtimes).sorted() {
            subs.append(MQTTSubscription(filter: topics.commandFilter(kind), retainHandling: .doNotSend, retainAsPublished: true))
            subs.append(MQTTSubscription(filter: topics.statusFilter(kind), retainHandling: .send))
        }
        subs.append(MQTTSubscription(filter: topics.bridgeIndex, retainHandling: .send))
        return subs + extensions.flatMap(\.subscriptions)
    }

    /// Runs every part until graceful shutdown; then stops taking commands, gives those in flight
    /// `shutdownGrace` to finish, removes the health file and returns.
    public func run() async throws {
        // Every extension's inbox and change stream exist before anything is published.
        var routes: [(filters: [String], inbox: AsyncStream<MQTTIncomingMessage>.Continuation)] = []
        var contexts: [ExtensionContext] = []
        for e in extensions {
            let (messages, inbox) = AsyncStream<MQTTIncomingMessage>.makeStream()
            routes.append((e.subscriptions.map(\.filter), inbox))
            var extensionLogger = logger
            extensionLogger[metadataKey: "component"] = "\(e.name)"
            contexts.append(
                ExtensionContext(
                    bridgeID: settings.bridgeID, topics: topics, logger: extensionLogger, messages: messages,
                    changes: await registry.changes(), publish: { [mqtt] in mqtt.publish($0) }, registry: registry,
                    commands: commands))
        }
        let intake = MQTTIntake(
            topics: topics, registry: registry, commands: commands, publish: { [mqtt] in mqtt.publish($0) },
            bridgeID: settings.bridgeID, logger: logger, protocolVersion: mqtt.configuration.protocolVersion, routes: routes)

        await withDiscardingTaskGroup { group in
            group.addTask { try? await self.commands.run() }
            group.addTask { await self.followBroker() }
            for s in supervisors { group.addTask { try? await s.run() } }
            group.addTask { await intake.serve(self.mqtt.messages) }
            if let path = settings.healthFile { group.addTask { await self.reportHealth(to: path) } }
            for (e, context) in zip(extensions, contexts) { group.addTask { await e.run(context) } }
            try? await gracefulShutdown()
            await commands.drain()
            group.cancelAll()
        }
        removeHealthFile()
    }

    /// After every (re)connect to the broker: publish every status again, then tell the extensions.
    private func followBroker() async {
        for await event in mqtt.connectionEvents {
            // A broker connection that keeps flapping never lets this stream run dry: without
            // this check a shutdown would wait for it for ever.
            if Task.isCancelled { return }
            guard case .connected = event else {
                await registry.brokerLost()
                continue
            }
            for s in supervisors { await s.resyncIfAvailable() }
            await registry.republishIndex()
            await registry.announce(.brokerConnected)
        }
    }
}
