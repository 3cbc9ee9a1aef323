import ConfigReader
import IdlePolicy
import IdlewatcherCore

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
    /// Every runtime endpoint of every section (`docker:`, `podman:`, `proxmox:`), in the order
    /// of the registered runtime modules and of the file.
    public var endpoints: [RuntimeEndpoint] = []
    public var defaults = Defaults()
    public var homeAssistant = HomeAssistant()
    /// `idle:`: timers, leases, readiness, dependencies.
    public var idle = IdleConfiguration()

    /// The endpoints of one runtime.
    public func endpoints(_ kind: RuntimeKind) -> [RuntimeEndpoint] { endpoints.filter { $0.kind == kind } }

    /// `check-config`'s summary: "1 Docker endpoint(s), 0 Proxmox cluster(s)" (every runtime
    /// with an entry, and those counted even without one).
    public var summary: String {
        runtimeModules.compactMap { m -> String? in
            let n = endpoints(m.description.kind).count
            return n > 0 || m.countedWhenAbsent ? "\(n) \(m.countNoun)" : nil
        }.joined(separator: ", ")
    }
}
