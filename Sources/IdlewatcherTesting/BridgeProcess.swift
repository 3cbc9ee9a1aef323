import Foundation

/// The MQTT protocol version a bridge is configured to speak (`mqtt.protocol`): end-to-end tests
/// of commands, events, resyncs and retained commands run under each.
public enum MQTTVersion: String, Sendable, CaseIterable, CustomStringConvertible {
    case v5 = "5"
    case v311 = "3.1.1"
    public var description: String { "MQTT \(rawValue)" }
}

/// The idlewatcher-bridge executable, run as users run it: a config file and a process.
public final class BridgeProcess: @unchecked Sendable {
    // @unchecked: immutable after init; the child process is thread-safe for what we call.
    public let child: ChildProcess
    public let configURL: URL
    public let bridgeID: String

    /// The built executable (`IDLEWATCHER_BRIDGE_BIN`, else `.build/debug/idlewatcher-bridge`).
    public static var executable: String {
        if let p = ProcessInfo.processInfo.environment["IDLEWATCHER_BRIDGE_BIN"] { return p }
        return repositoryRoot.appendingPathComponent(".build/debug/idlewatcher-bridge").path
    }

    /// Writes `yaml` to a file and starts the bridge on it.
    public init(yaml: String, bridgeID: String, environment: [String: String]? = nil, logLevel: String = "debug") throws {
        let dir = try makeTemporaryDirectory("bridge")
        configURL = dir.appendingPathComponent("config.yaml")
        try yaml.write(to: configURL, atomically: true, encoding: .utf8)
        self.bridgeID = bridgeID
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment ?? [:] { env[k] = v }
        child = try ChildProcess(
            [Self.executable, "--config", configURL.path, "--log-level", logLevel], log: dir.appendingPathComponent("bridge.log"),
            environment: env)
    }

    /// A typical config for one broker and the local Docker engine.
    public static func dockerConfig(
        bridgeID: String, broker: MosquittoBroker, mqttVersion: MQTTVersion = .v5, dockerExtra: String = "", extra: String = "",
        mqttExtra: String = ""
    ) -> String {
        """
        bridge:
          id: \(bridgeID)
        mqtt:
          url: \(broker.url)
          client_id: iw-\(bridgeID)-\(UUID().uuidString.prefix(4))
          protocol: \(mqttVersion.rawValue)
        \(mqttExtra)
        docker:
          - url: unix:///var/run/docker.sock
        \(dockerExtra)
        \(extra.contains("homeassistant:") ? "" : "homeassistant:\n  enabled: false")
        \(extra)
        """
    }

    public var log: String { child.output }

    /// The version the sources declare (`let bridgeVersion = "…"` in the executable's sources,
    /// Sources/idlewatcher-bridge): what `--version` and Home Assistant's `sw_version` must say.
    public static func sourceVersion() throws -> String {
        let dir = repositoryRoot.appendingPathComponent("Sources/idlewatcher-bridge")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }.sorted()
        for file in files {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where line.hasPrefix("let bridgeVersion = \"") {
                let value = line.dropFirst("let bridgeVersion = \"".count).prefix { $0 != "\"" }
                if !value.isEmpty { return String(value) }
            }
        }
        throw TestSupportError("no `let bridgeVersion = \"…\"` line in Sources/idlewatcher-bridge")
    }

    /// Stops the bridge with SIGTERM; returns the exit status.
    @discardableResult
    public func stop() async -> Int32 { await child.terminate() }
}
