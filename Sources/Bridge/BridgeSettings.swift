import IdlewatcherCore

/// The bridge's own settings (from `bridge`, `mqtt.base_topic` and `defaults`).
public struct BridgeSettings: Sendable {
    /// `bridge.id`: `[A-Za-z0-9_-]+`.
    public var bridgeID: String
    /// `mqtt.base_topic`: the first level of every topic.
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

    /// Settings; by default a 60 s operation timeout, 16 waiting commands per container, 10 s of shutdown
    /// grace, and no health file (rewritten every 5 s when there is one).
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
    /// The endpoint, as the bridge drives it.
    public var runtime: any ContainerRuntime
    /// Which of its containers are exposed, and what commands may do to each.
    public var policy: ExposurePolicy

    /// Binds `runtime` to `policy`.
    public init(runtime: any ContainerRuntime, policy: ExposurePolicy) {
        self.runtime = runtime
        self.policy = policy
    }
}
