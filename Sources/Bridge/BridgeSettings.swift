import IdlewatcherCore

/// The bridge's own settings (from `bridge`, `mqtt.base_topic` and `defaults`).
public struct BridgeSettings: Sendable {
    /// `bridge.id`: `[A-Za-z0-9_-]+`.
    public var bridgeID: String
    public var baseTopic: String
    /// How long an operation other than stop/restart may take before its reply says `timeout`
    /// (stop and restart get their own timeout plus this).
    public var operationTimeout: Duration
    /// How many commands may wait per container before new ones are answered `busy`.
    public var commandQueueLimit: Int
    /// On SIGTERM, how long in-flight commands get to finish before they are failed.
    public var shutdownGrace: Duration
    /// Where to write the health file (`idlewatcher-bridge health` reads it); nil: nowhere.
    public var healthFile: String?
    /// How often the health file is rewritten.
    public var healthInterval: Duration

    public init(
        bridgeID: String, baseTopic: String = "idlewatcher", operationTimeout: Duration = .seconds(60),
        commandQueueLimit: Int = 16, shutdownGrace: Duration = .seconds(10), healthFile: String? = nil,
        healthInterval: Duration = .seconds(5)
    ) {
        self.healthFile = healthFile
        self.healthInterval = healthInterval
        self.bridgeID = bridgeID
        self.baseTopic = baseTopic
        self.operationTimeout = operationTimeout
        self.commandQueueLimit = commandQueueLimit
        self.shutdownGrace = shutdownGrace
    }
}

/// A runtime endpoint and the policy the bridge applies to its containers.
public struct RuntimeBinding: Sendable {
    public var runtime: any ContainerRuntime
    public var policy: ExposurePolicy

    public init(runtime: any ContainerRuntime, policy: ExposurePolicy) {
        self.runtime = runtime
        self.policy = policy
    }
}
