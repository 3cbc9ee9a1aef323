import IdlewatcherCore
import MQTTClient

/// Home Assistant MQTT discovery. (Placeholder: filled in by the Home Assistant issue.)
public struct HomeAssistantDiscovery: BridgeExtension {
    public let prefix: String
    public let removeAfter: Duration
    public let version: String

    public init(prefix: String, removeAfter: Duration, version: String) {
        self.prefix = prefix
        self.removeAfter = removeAfter
        self.version = version
    }

    public func attach(to bridge: Bridge) async {}
    public func connected() async {}
    public func handle(_ message: MQTTIncomingMessage) async -> Bool { false }
}
