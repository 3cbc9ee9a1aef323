import Bridge
import HomeAssistant
import IdlePolicy
import IdlewatcherCore
import Logging
import MQTTClient

/// The services a configuration describes, wired together: the MQTT client and the bridge
/// with its runtimes and extensions. Run them in a `ServiceGroup`, MQTT first.
public struct Application: Sendable {
    /// The MQTT client: the bridge's and the extensions' subscriptions, `online` at connect, `offline` as its will.
    public let mqtt: MQTTClient
    /// The bridge: one runtime per configured endpoint, with the idle policy and (when enabled) Home Assistant
    /// discovery as extensions.
    public let bridge: Bridge
    /// The configuration it was built from.
    public let configuration: Configuration

    /// Wires the services and builds every endpoint's runtime (no I/O yet), logging the endpoints' warnings.
    /// Throws if a runtime cannot be built (an unusable URL). `version` goes into Home Assistant's devices.
    public init(configuration c: Configuration, version: String, logger: Logger) throws {
        self.configuration = c
        let settings = BridgeSettings(
            bridgeID: c.bridgeID, baseTopic: c.mqtt.baseTopic, operationTimeout: c.defaults.operationTimeout,
            commandQueueLimit: c.defaults.commandQueueLimit, healthFile: c.healthFile)
        let topics = Topics(base: c.mqtt.baseTopic, bridgeID: c.bridgeID)

        var bindings: [RuntimeBinding] = []
        for e in c.endpoints {
            for w in e.warnings { logger.warning("\(w)") }
            var runtimeLogger = logger
            runtimeLogger[metadataKey: "runtime"] = "\(e.kind)"
            let wakeTimeouts = Dictionary(
                c.idle.containers.compactMap { ref, o in ref.runtime == e.kind ? o.wakeTimeout.map { (ref.id, $0) } : nil },
                uniquingKeysWith: { a, _ in a })
            let policy = ExposurePolicy(
                include: Set(e.include), exclude: Set(e.exclude), protected: Set(e.protected), allow: Set(c.defaults.allow),
                stopTimeout: c.defaults.stopTimeout, wakeTimeout: c.idle.wakeTimeout, wakeTimeouts: wakeTimeouts)
            bindings.append(RuntimeBinding(runtime: try e.make(runtimeLogger), policy: policy))
        }

        let online = MQTTOutgoingMessage(topic: topics.bridgeState, payload: Array("online".utf8), retain: true, droppable: false)
        let offline = MQTTOutgoingMessage(
            topic: topics.bridgeState, payload: Array("offline".utf8), retain: true, droppable: false)
        let mqttConfiguration = MQTTConfiguration(
            host: c.mqtt.host, port: c.mqtt.port, tls: c.mqtt.tls, caFile: c.mqtt.caFile, certFile: c.mqtt.certFile,
            keyFile: c.mqtt.keyFile, username: c.mqtt.username, password: c.mqtt.password, clientID: c.mqtt.clientID,
            protocolVersion: c.mqtt.protocolVersion == "5" ? .v5 : .v311,
            keepAlive: Int32(c.mqtt.keepAlive.components.seconds), birth: online, will: offline,
            queueLimit: c.mqtt.queueLimit)
        var extensions: [any BridgeExtension] = [IdlePolicy(configuration: c.idle, topics: topics)]
        if c.homeAssistant.enabled {
            extensions.append(
                HomeAssistantDiscovery(
                    prefix: c.homeAssistant.prefix, removeAfter: c.homeAssistant.removeAfter, version: version,
                    bridgeID: c.bridgeID, baseTopic: c.mqtt.baseTopic))
        }
        var mqttLogger = logger
        mqttLogger[metadataKey: "component"] = "mqtt"
        self.mqtt = MQTTClient(
            configuration: mqttConfiguration,
            subscriptions: Bridge.subscriptions(
                settings: settings, runtimes: bindings.map(\.runtime.kind), extensions: extensions),
            logger: mqttLogger)
        self.bridge = Bridge(settings: settings, runtimes: bindings, mqtt: mqtt, extensions: extensions, logger: logger)
    }
}
