import DockerProvider
import IdlewatcherCore
import ProxmoxProvider

/// The whole configuration file, validated. Secrets are already read (from files or the
/// environment) and are never printed: `description`s leave them out.
public struct Configuration: Sendable {
    public struct MQTT: Sendable {
        public var host = "127.0.0.1"
        public var port: Int32 = 1883
        public var tls = false
        public var url = "mqtt://127.0.0.1:1883"
        public var baseTopic = "idlewatcher"
        public var clientID: String
        public var protocolVersion = "5"
        public var username: String?
        public var password: String?
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var queueLimit = 10_000
        public var keepAlive: Duration = .seconds(30)
    }

    public struct Docker: Sendable {
        public var url = "unix:///var/run/docker.sock"
        public var idPrefix = ""
        public var include: [String] = []
        public var exclude: [String] = []
        public var protected: [String] = []
        public var caFile: String?
        public var certFile: String?
        public var keyFile: String?
    }

    public struct Defaults: Sendable {
        public var stopTimeout: Duration = .seconds(10)
        public var allow: [Action] = Action.allCases
        public var operationTimeout: Duration = .seconds(60)
        public var commandQueueLimit = 16
    }

    public struct HomeAssistant: Sendable {
        public var enabled = true
        public var prefix = "homeassistant"
        public var removeAfter: Duration = .seconds(24 * 3600)
    }

    public var bridgeID: String
    /// `bridge.health_file`: where the running bridge keeps its health for `idlewatcher-bridge health`.
    public var healthFile: String
    public var mqtt: MQTT
    public var docker: [Docker] = []
    /// `podman:`: the same keys as `docker:`, default URL `unix:///run/podman/podman.sock`.
    public var podman: [Docker] = []
    public var proxmox: [ProxmoxEndpointConfiguration] = []
    /// Per Proxmox entry: the `include`/`exclude`-like policy keys do not apply; kept for symmetry.
    public var defaults = Defaults()
    public var homeAssistant = HomeAssistant()
}
