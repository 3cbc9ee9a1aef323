import Foundation

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
        bridgeID: String, broker: MosquittoBroker, dockerExtra: String = "", extra: String = "", mqttExtra: String = ""
    ) -> String {
        """
        bridge:
          id: \(bridgeID)
        mqtt:
          url: \(broker.url)
          client_id: iw-\(bridgeID)-\(UUID().uuidString.prefix(4))
        \(mqttExtra)
        docker:
          - url: unix:///var/run/docker.sock
        \(dockerExtra)
        \(extra.contains("homeassistant:") ? "" : "homeassistant:\n  enabled: false")
        \(extra)
        """
    }

    public var log: String { child.output }

    /// Stops the bridge with SIGTERM; returns the exit status.
    @discardableResult
    public func stop() async -> Int32 { await child.terminate() }
}
