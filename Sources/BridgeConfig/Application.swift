import Bridge
import DockerProvider
import IdlewatcherCore
import Logging
import HomeAssistant
import MQTTClient
import PodmanProvider
import ProxmoxProvider

/// The services a configuration describes, wired together: the MQTT client and the bridge
/// with its runtimes and extensions. Run them in a `ServiceGroup`, MQTT first.
public struct Application: Sendable {
    public let mqtt: MQTTClient
    public let bridge: Bridge
    public let configuration: Configuration

    public init(configuration c: Configuration, version: String, logger: Logger) throws {
        self.configuration = c
        let settings = BridgeSettings(
            bridgeID: c.bridgeID, baseTopic: c.mqtt.baseTopic, operationTimeout: c.defaults.operationTimeout,
            commandQueueLimit: c.defaults.commandQueueLimit, healthFile: c.healthFile)
        let topics = Topics(base: c.mqtt.baseTopic, bridgeID: c.bridgeID)

        var bindings: [RuntimeBinding] = []
        for (flavor, endpoints) in [(EngineFlavor.docker, c.docker), (EngineFlavor.podman, c.podman)] {
            for d in endpoints {
                let configuration = DockerEndpointConfiguration(
                    url: d.url, idPrefix: d.idPrefix, caFile: d.caFile, certFile: d.certFile, keyFile: d.keyFile)
                let runtime =
                    flavor.description.kind == .docker
                    ? try DockerRuntime(configuration: configuration, logger: logger)
                    : try Podman.runtime(configuration: configuration, logger: logger)
                let policy = ExposurePolicy(
                    include: Set(d.include), exclude: Set(d.exclude), protected: Set(d.protected),
                    allow: Set(c.defaults.allow), stopTimeout: c.defaults.stopTimeout)
                bindings.append(RuntimeBinding(runtime: runtime, policy: policy))
            }
        }
        for p in c.proxmox {
            if p.insecureSkipVerify {
                logger.warning(
                    "TLS certificate verification is OFF for Proxmox at \(p.url) (insecure_skip_verify): anyone on the path can read the API token. Prefer ca_file with /etc/pve/pve-root-ca.pem."
                )
            }
            let runtime = try ProxmoxRuntime(configuration: p, logger: logger)
            let policy = ExposurePolicy(allow: Set(c.defaults.allow), stopTimeout: c.defaults.stopTimeout)
            bindings.append(RuntimeBinding(runtime: runtime, policy: policy))
        }

        let online = MQTTOutgoingMessage(topic: topics.bridgeState, payload: Array("online".utf8), retain: true, droppable: false)
        let offline = MQTTOutgoingMessage(topic: topics.bridgeState, payload: Array("offline".utf8), retain: true, droppable: false)
        let mqttConfiguration = MQTTConfiguration(
            host: c.mqtt.host, port: c.mqtt.port, tls: c.mqtt.tls, caFile: c.mqtt.caFile, certFile: c.mqtt.certFile,
            keyFile: c.mqtt.keyFile, username: c.mqtt.username, password: c.mqtt.password, clientID: c.mqtt.clientID,
            protocolVersion: c.mqtt.protocolVersion == "5" ? .v5 : .v311,
            keepAlive: Int32(c.mqtt.keepAlive.components.seconds), birth: online, will: offline,
            queueLimit: c.mqtt.queueLimit)
        var extensions: [any BridgeExtension] = []
        if c.homeAssistant.enabled {
            extensions.append(
                HomeAssistantDiscovery(
                    prefix: c.homeAssistant.prefix, removeAfter: c.homeAssistant.removeAfter, version: version,
                    bridgeID: c.bridgeID))
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
