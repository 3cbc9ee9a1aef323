import IdlewatcherCore
import Logging
import YAML

/// A runtime as the configuration knows it: its top-level section, how to read one entry of
/// it (with `check-config` problems), and how to build the endpoint. Each runtime module
/// provides one; BridgeConfig registers them in one line (`RuntimeModules.swift`).
public protocol RuntimeModule {
    /// What the runtime is: topic segment, names, what its commands accept.
    static var description: RuntimeDescription { get }
    /// The top-level configuration key: `docker`, `podman`, `proxmox`. A list of entries.
    static var section: String { get }
    /// How `check-config` counts its entries: "Docker endpoint(s)".
    static var countNoun: String { get }
    /// Whether `check-config` counts it even with no entry ("0 Proxmox cluster(s)"): the
    /// runtimes of the first version do, as scripts may read that line.
    static var countedWhenAbsent: Bool { get }
    /// Reads one entry of the section (problems go to `reader`, with `path` in front); nil if
    /// it cannot be used.
    static func endpoint(_ node: YAMLNode, path: String, reader: inout ConfigReader) -> RuntimeEndpoint?
}

extension RuntimeModule {
    /// Not counted without an entry, unless the module says otherwise.
    public static var countedWhenAbsent: Bool { false }
}

/// One configured endpoint of a runtime, ready to build.
public struct RuntimeEndpoint: Sendable {
    /// The runtime: the topic segment of its containers.
    public var kind: RuntimeKind
    /// As configured, for messages (never with credentials).
    public var url: String
    /// The endpoint's `id_prefix` (`nas-`), or "".
    public var idPrefix: String
    /// Container names: empty `include` means all.
    public var include: [String]
    /// Container names never exposed, whatever `include` says.
    public var exclude: [String]
    /// Names the bridge never acts on (only `status`).
    public var protected: [String]
    /// Lines for the log at start (an insecure setting, say); never a secret.
    public var warnings: [String]
    /// Builds the runtime. No I/O: its HTTP client starts with the first request.
    public var make: @Sendable (Logger) throws -> any ContainerRuntime

    /// An endpoint; by default every container exposed, none protected, no warnings.
    public init(
        kind: RuntimeKind, url: String, idPrefix: String, include: [String] = [], exclude: [String] = [],
        protected: [String] = [], warnings: [String] = [], make: @escaping @Sendable (Logger) throws -> any ContainerRuntime
    ) {
        self.kind = kind
        self.url = url
        self.idPrefix = idPrefix
        self.include = include
        self.exclude = exclude
        self.protected = protected
        self.warnings = warnings
        self.make = make
    }
}
