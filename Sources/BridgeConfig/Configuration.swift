import ConfigReader
import IdlePolicy
import IdlewatcherCore

/// The whole configuration file, validated. Secrets are already read (from files or the
/// environment) and are never printed: `description`s leave them out.
public struct Configuration: Sendable {
    /// The `mqtt:` section: where the broker is, and how the bridge talks to it.
    public struct MQTT: Sendable {
        /// The broker's host name or address, from `mqtt.url`.
        public var host = "127.0.0.1"
        /// The broker's port, from `mqtt.url`; 1883, or 8883 for `mqtts://`, when the URL names none.
        public var port: Int32 = 1883
        /// Whether `mqtt.url` is `mqtts://`.
        public var tls = false
        /// `mqtt.url` as written (`mqtt://HOST:PORT` or `mqtts://…`); ``host``, ``port`` and ``tls`` come from it.
        public var url = "mqtt://127.0.0.1:1883"
        /// `mqtt.base_topic`: the first level of every topic; no wildcards, no leading or trailing `/`.
        public var baseTopic = "idlewatcher"
        /// `mqtt.client_id` (1 to 128 bytes); by default `idlewatcher-bridge-<bridge_id>`.
        public var clientID: String
        /// `mqtt.protocol`: `5` or `3.1.1` (the file may also say `5.0`, `311` or `4`).
        public var protocolVersion = "5"
        /// `mqtt.username`; nil: anonymous.
        public var username: String?
        /// The first line of `mqtt.password_file`, else `IDLEWATCHER_MQTT_PASSWORD`; nil: none. Never printed.
        public var password: String?
        /// `mqtt.ca_file`: the CA that signed the broker's certificate (only with `mqtts://`); nil: the system's.
        public var caFile: String?
        /// `mqtt.cert_file`: a client certificate, with ``keyFile`` (only with `mqtts://`).
        public var certFile: String?
        /// `mqtt.key_file`: the client certificate's private key, with ``certFile``.
        public var keyFile: String?
        /// `mqtt.queue_limit` (1 to 10,000,000): how many messages may wait while the broker is away.
        public var queueLimit = 10_000
        /// `mqtt.keepalive` (5 s to 65535 s, whole seconds): the PINGREQ interval when nothing else is sent.
        public var keepAlive: Duration = .seconds(30)
    }

    /// The `defaults:` section: timeouts and permissions for the containers of every endpoint.
    public struct Defaults: Sendable {
        /// `defaults.stop_timeout` (at most 1 h): how long `stop` waits before killing, unless the command
        /// or the container's `idlewatcher.stop_timeout` label says.
        public var stopTimeout: Duration = .seconds(10)
        /// `defaults.allow`: the actions commands may ask for; a container's `idlewatcher.allow` label can only narrow it.
        public var allow: [Action] = Action.allCases
        /// `defaults.operation_timeout` (at least 1 s): how long an operation may run before its reply says `timeout`.
        public var operationTimeout: Duration = .seconds(60)
        /// `defaults.command_queue_limit` (1 to 10,000): how many commands may wait per container before one more
        /// is answered `busy`.
        public var commandQueueLimit = 16
    }

    /// The `homeassistant:` section: MQTT discovery of the exposed containers.
    public struct HomeAssistant: Sendable {
        /// `homeassistant.enabled`: whether discovery configs are published at all.
        public var enabled = true
        /// `homeassistant.prefix`: Home Assistant's discovery prefix (no wildcards).
        public var prefix = "homeassistant"
        /// `homeassistant.remove_after`: how long a removed container keeps its entities (compose recreates
        /// containers under the same name).
        public var removeAfter: Duration = .seconds(24 * 3600)
    }

    /// `bridge.id` (`[A-Za-z0-9_-]+`); by default the host name.
    public var bridgeID: String
    /// `bridge.health_file`: where the running bridge keeps its health for `idlewatcher-bridge health`.
    public var healthFile: String
    /// The `mqtt:` section.
    public var mqtt: MQTT
    /// Every runtime endpoint of every section (`docker:`, `podman:`, `proxmox:`), in the order
    /// of the registered runtime modules and of the file.
    public var endpoints: [RuntimeEndpoint] = []
    /// The `defaults:` section.
    public var defaults = Defaults()
    /// The `homeassistant:` section.
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
