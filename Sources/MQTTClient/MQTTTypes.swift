/// The MQTT protocol version spoken to the broker.
public enum MQTTProtocolVersion: String, Sendable, Hashable {
    case v5 = "5"
    case v311 = "3.1.1"
}

/// A message to publish. Queued while the broker is away and sent in order after reconnect.
public struct MQTTOutgoingMessage: Sendable, Hashable {
    public var topic: String
    public var payload: [UInt8]
    public var retain: Bool
    public var qos: Int32
    /// MQTT 5 Correlation Data (echoed in replies to a Response Topic).
    public var correlationData: [UInt8]?
    /// MQTT 5 Response Topic, for a request this bridge sends (a wake to another bridge).
    public var responseTopic: String?
    /// Whether an overflowing queue may drop this message (events) or must keep it (replies, statuses).
    public var droppable: Bool

    public init(
        topic: String, payload: [UInt8], retain: Bool = false, qos: Int32 = 1, responseTopic: String? = nil,
        correlationData: [UInt8]? = nil, droppable: Bool = true
    ) {
        self.responseTopic = responseTopic
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos
        self.correlationData = correlationData
        self.droppable = droppable
    }
}

/// A message received from the broker.
public struct MQTTIncomingMessage: Sendable, Hashable {
    public var topic: String
    public var payload: [UInt8]
    /// The retain flag as the broker delivered it (retain-as-published on MQTT 5 command subscriptions).
    public var retain: Bool
    public var qos: Int32
    /// MQTT 5 Response Topic, if the publisher set one.
    public var responseTopic: String?
    /// MQTT 5 Correlation Data, if the publisher set it.
    public var correlationData: [UInt8]?

    public init(
        topic: String, payload: [UInt8], retain: Bool = false, qos: Int32 = 0, responseTopic: String? = nil,
        correlationData: [UInt8]? = nil
    ) {
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos
        self.responseTopic = responseTopic
        self.correlationData = correlationData
    }
}

/// A subscription the client holds across reconnects.
public struct MQTTSubscription: Sendable, Hashable {
    public enum RetainHandling: Sendable, Hashable {
        /// Send retained messages at subscribe time (status topics: the bridge reads what it left).
        case send
        /// Never send retained messages at subscribe time (command topics).
        case doNotSend
    }

    public var filter: String
    public var qos: Int32
    public var retainHandling: RetainHandling
    /// Deliver the retain flag as published, so that live retained messages can be refused.
    public var retainAsPublished: Bool

    public init(filter: String, qos: Int32 = 1, retainHandling: RetainHandling = .send, retainAsPublished: Bool = false) {
        self.filter = filter
        self.qos = qos
        self.retainHandling = retainHandling
        self.retainAsPublished = retainAsPublished
    }
}

/// Connection changes, in order.
public enum MQTTConnectionEvent: Sendable, Hashable {
    /// CONNACK accepted; subscriptions are renewed and the birth message is out.
    case connected
    /// The connection is gone; the client reconnects with backoff.
    case disconnected(reason: String)
}

/// How to reach and talk to the broker.
public struct MQTTConfiguration: Sendable {
    public var host: String
    public var port: Int32
    public var tls: Bool
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var username: String?
    /// The password itself (read from a file or the environment by the caller); never logged.
    public var password: String?
    public var clientID: String
    public var protocolVersion: MQTTProtocolVersion
    public var keepAlive: Int32
    /// Published retained at every connect (before anything else) — `online`.
    public var birth: MQTTOutgoingMessage?
    /// The MQTT will — `offline`; also published by the client itself before a clean disconnect.
    public var will: MQTTOutgoingMessage?
    /// At most this many messages wait while the broker is away; beyond it the oldest droppable go.
    public var queueLimit: Int
    public var reconnectDelayMin: Duration
    public var reconnectDelayMax: Duration

    public init(
        host: String = "127.0.0.1", port: Int32 = 1883, tls: Bool = false, caFile: String? = nil,
        certFile: String? = nil, keyFile: String? = nil, username: String? = nil, password: String? = nil,
        clientID: String, protocolVersion: MQTTProtocolVersion = .v5, keepAlive: Int32 = 30,
        birth: MQTTOutgoingMessage? = nil, will: MQTTOutgoingMessage? = nil, queueLimit: Int = 10_000,
        reconnectDelayMin: Duration = .milliseconds(100), reconnectDelayMax: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.tls = tls
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.username = username
        self.password = password
        self.clientID = clientID
        self.protocolVersion = protocolVersion
        self.keepAlive = keepAlive
        self.birth = birth
        self.will = will
        self.queueLimit = queueLimit
        self.reconnectDelayMin = reconnectDelayMin
        self.reconnectDelayMax = reconnectDelayMax
    }

    /// `host:port`, for log lines.
    public var address: String { "\(tls ? "mqtts" : "mqtt")://\(host):\(port)" }
}
