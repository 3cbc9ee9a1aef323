/// The MQTT protocol version spoken to the broker.
public enum MQTTProtocolVersion: String, Sendable, Hashable {
    /// MQTT 5: Response Topics, Correlation Data, retain handling, PUBACK reason codes.
    case v5 = "5"
    /// MQTT 3.1.1: none of those; a message the broker refuses looks accepted to the client.
    case v311 = "3.1.1"
}

/// A message to publish. Queued while the broker is away and sent in order after reconnect.
public struct MQTTOutgoingMessage: Sendable, Hashable {
    /// Where it goes; no wildcards.
    public var topic: String
    /// The bytes as they go out (an empty retained payload clears the topic's retained message).
    public var payload: [UInt8]
    /// Whether the broker keeps it for later subscribers.
    public var retain: Bool
    /// 0 or 1. At QoS 1 over MQTT 5 the broker's refusal (its PUBACK reason code) is logged.
    public var qos: Int32
    /// MQTT 5 Correlation Data (echoed in replies to a Response Topic).
    public var correlationData: [UInt8]?
    /// MQTT 5 Response Topic, for a request this bridge sends (a wake to another bridge).
    public var responseTopic: String?
    /// Whether an overflowing queue may drop this message (events) or must keep it (replies, statuses).
    public var droppable: Bool

    /// A message to publish; by default QoS 1, not retained, droppable (an event).
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
    /// The topic it was published on.
    public var topic: String
    /// The bytes as published.
    public var payload: [UInt8]
    /// The retain flag as the broker delivered it (retain-as-published on MQTT 5 command subscriptions).
    public var retain: Bool
    /// The QoS it was delivered with.
    public var qos: Int32
    /// MQTT 5 Response Topic, if the publisher set one.
    public var responseTopic: String?
    /// MQTT 5 Correlation Data, if the publisher set it.
    public var correlationData: [UInt8]?

    /// A received message (the client makes these; tests and in-process callers may too).
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
    /// Whether the broker sends the retained messages that match at subscribe time (MQTT 5;
    /// on 3.1.1 it always does).
    public enum RetainHandling: Sendable, Hashable {
        /// Send retained messages at subscribe time (status topics: the bridge reads what it left).
        case send
        /// Never send retained messages at subscribe time (command topics).
        case doNotSend
    }

    /// The topic filter (`+` one level, `#` the rest).
    public var filter: String
    /// The highest QoS the broker may deliver with.
    public var qos: Int32
    /// Whether retained messages come at subscribe time.
    public var retainHandling: RetainHandling
    /// Deliver the retain flag as published, so that live retained messages can be refused.
    public var retainAsPublished: Bool

    /// A subscription at QoS 1 that gets retained messages, by default.
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
    /// The broker's host name or address (checked against its certificate over TLS).
    public var host: String
    /// The broker's port.
    public var port: Int32
    /// Whether to speak TLS (`mqtts://`).
    public var tls: Bool
    /// The CA that signed the broker's certificate (nil: the system's, `/etc/ssl/certs`).
    public var caFile: String?
    /// A client certificate, for brokers that require one (with ``keyFile``).
    public var certFile: String?
    /// The client certificate's private key.
    public var keyFile: String?
    /// The user name to log in with (nil: anonymous).
    public var username: String?
    /// The password itself (read from a file or the environment by the caller); never logged.
    public var password: String?
    /// The MQTT client id; unique on the broker (a second client with the same id pushes the first off).
    public var clientID: String
    /// MQTT 5 or 3.1.1.
    public var protocolVersion: MQTTProtocolVersion
    /// Seconds between PINGREQs when idle; the broker sends the will after 1.5 × this without a word.
    public var keepAlive: Int32
    /// Published retained at every connect (before anything else) — `online`.
    public var birth: MQTTOutgoingMessage?
    /// The MQTT will — `offline`; also published by the client itself before a clean disconnect.
    public var will: MQTTOutgoingMessage?
    /// At most this many messages wait while the broker is away; beyond it the oldest droppable go.
    public var queueLimit: Int
    /// The wait before the first attempt after a lost connection; it doubles after each failed
    /// attempt, up to ``reconnectDelayMax``.
    public var reconnectDelayMin: Duration
    /// The longest wait between two attempts: how late, at worst, the client notices that the
    /// broker is back.
    public var reconnectDelayMax: Duration

    /// A configuration; the reconnect schedule defaults to 0.2 s doubling up to 2 s.
    ///
    /// Why so low a cap: the cost of an attempt on a broker that is down is one refused TCP
    /// connection (or a TLS handshake) every 2 s, nothing for the broker or the network; the cost
    /// of a high cap is that a bridge comes back up to that long after its broker restarted,
    /// while a home automation waits to wake a container through it (the former 10 s cap made
    /// it 4-10 s late). With 2 s the attempts come 0.2, 0.6, 1.4, 3, 5, 7 … s after the loss,
    /// so the bridge is back at most 2 s after the broker listens again.
    public init(
        host: String = "127.0.0.1", port: Int32 = 1883, tls: Bool = false, caFile: String? = nil,
        certFile: String? = nil, keyFile: String? = nil, username: String? = nil, password: String? = nil,
        clientID: String, protocolVersion: MQTTProtocolVersion = .v5, keepAlive: Int32 = 30,
        birth: MQTTOutgoingMessage? = nil, will: MQTTOutgoingMessage? = nil, queueLimit: Int = 10_000,
        reconnectDelayMin: Duration = .milliseconds(200), reconnectDelayMax: Duration = .seconds(2)
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
