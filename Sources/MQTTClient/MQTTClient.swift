import Logging
import ServiceLifecycle

/// An MQTT client over libmosquitto, run as a ``Service``.
///
/// `publish` never blocks and never fails: messages wait in order while the broker is away.
/// Incoming messages and connection changes arrive on two async streams, each meant for one
/// consumer. On graceful shutdown the client publishes its will payload (`offline`) itself,
/// waits for the broker's acknowledgement (bounded) and disconnects cleanly.
public final class MQTTClient: Service, Sendable {
    /// How the client reaches and talks to the broker, as given to ``init(configuration:subscriptions:logger:)``.
    public let configuration: MQTTConfiguration
    /// Messages received on the subscriptions, in arrival order.
    public let messages: AsyncStream<MQTTIncomingMessage>
    /// `connected` after each accepted CONNACK, `disconnected` when a connection is lost.
    public let connectionEvents: AsyncStream<MQTTConnectionEvent>
    private let loop: MosquittoLoop

    /// Prepares the client; nothing connects and no thread starts until ``run()``.
    ///
    /// - Parameters:
    ///   - subscriptions: held from the first CONNACK on and renewed after every reconnect.
    ///   - logger: connection changes, failures with what to check, and messages the broker refused.
    public init(configuration: MQTTConfiguration, subscriptions: [MQTTSubscription] = [], logger: Logger) {
        self.configuration = configuration
        let (messages, mc) = AsyncStream<MQTTIncomingMessage>.makeStream()
        let (events, ec) = AsyncStream<MQTTConnectionEvent>.makeStream()
        self.messages = messages
        self.connectionEvents = events
        self.loop = MosquittoLoop(
            configuration: configuration, subscriptions: subscriptions, logger: logger, incoming: mc, connection: ec)
    }

    /// Queues a message; it goes out as soon as the broker is connected, after those queued before it.
    public func publish(_ message: MQTTOutgoingMessage) { loop.enqueue(message) }

    /// Adds subscriptions, held across reconnects.
    public func subscribe(_ subscriptions: [MQTTSubscription]) { loop.subscribe(subscriptions) }

    /// Whether a CONNACK was accepted on the current connection.
    public var isConnected: Bool { loop.connected.load(ordering: .relaxed) }

    /// Events dropped because the queue was full, since start (the log says how many at each reconnect).
    public var droppedMessages: Int { loop.dropped.load(ordering: .relaxed) }

    /// Runs the network loop until graceful shutdown or cancellation, then says `offline` and disconnects.
    public func run() async throws {
        loop.start()
        try? await gracefulShutdown()
        loop.stop()
        await loop.waitUntilFinished()
    }
}
