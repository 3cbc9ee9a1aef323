import IdlewatcherCore

/// `<runtime>/<id>`: a container as topics name it, on this bridge or another.
public struct ContainerRef: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The runtime segment: `docker`, `proxmox`, ….
    public var runtime: RuntimeKind
    /// The container's id in topics, with its endpoint's `id_prefix`.
    public var id: String

    /// The container `id` of `runtime`.
    public init(_ runtime: RuntimeKind, _ id: String) {
        self.runtime = runtime
        self.id = id
    }

    /// `docker/db`: a runtime segment, `/`, an id without `/`, `+` or `#`.
    public init?(parsing text: String) {
        let parts = text.trimmingWhitespace().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
            parts[0].utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }),
            !parts[1].contains("+"), !parts[1].contains("#")
        else { return nil }
        self.init(RuntimeKind(String(parts[0])), String(parts[1]))
    }

    /// `<runtime>/<id>`.
    public var description: String { "\(runtime)/\(id)" }
    /// By ``description``, so that messages and cycles come in a stable order.
    public static func < (a: Self, b: Self) -> Bool { a.description < b.description }
}

/// What the bridge does to an idle container.
public enum IdleAction: String, Sendable, Hashable, CaseIterable {
    /// The `idle.action` words; each runs the command of the same name.
    case stop, pause, kill

    /// The command it runs (through the command service).
    public var action: Action {
        switch self {
        case .stop: .stop
        case .pause: .pause
        case .kill: .kill
        }
    }
}

/// The `idle:` section of the configuration (contract v1.1, "Idle policy").
public struct IdleConfiguration: Sendable, Hashable {
    /// Per-container settings under `idle.containers`; nil: not set there.
    public struct Override: Sendable, Hashable {
        /// `timeout`: the idle timeout; zero: not idle-managed.
        public var timeout: Duration?
        /// `action`: what is done to it once idle.
        public var action: IdleAction?
        /// `wake_timeout` (1 s to 24 h): how long a wake waits for it to be ready.
        public var wakeTimeout: Duration?
        /// `depends_on`: the containers woken before it; replaces its label and Compose's dependencies.
        public var dependsOn: [ContainerRef]?
        /// `traffic_threshold`: bytes per minute (in + out) that count as activity; zero: not watched.
        public var trafficThreshold: UInt64?

        /// Settings that set nothing unless given.
        public init(
            timeout: Duration? = nil, action: IdleAction? = nil, wakeTimeout: Duration? = nil, dependsOn: [ContainerRef]? = nil,
            trafficThreshold: UInt64? = nil
        ) {
            self.timeout = timeout
            self.action = action
            self.wakeTimeout = wakeTimeout
            self.dependsOn = dependsOn
            self.trafficThreshold = trafficThreshold
        }
    }

    /// Default idle timeout; zero: only containers that opt in are idle-managed.
    public var timeout: Duration = .zero
    /// `idle.action`: what is done to an idle container.
    public var action: IdleAction = .stop
    /// `idle.wake_timeout` (1 s to 24 h): how long wake-like commands wait for a container to be ready.
    public var wakeTimeout: Duration = .seconds(60)
    /// Bytes per minute (in + out) that count as activity; zero: traffic is not watched.
    public var trafficThreshold: UInt64 = 0
    /// How often traffic counters are read (extension): Docker/Podman one stats read per
    /// idle-managed running container each time.
    public var trafficInterval: Duration = .seconds(30)
    /// `idle.containers`, by `<runtime>/<id>`: these win over labels and the defaults.
    public var containers: [ContainerRef: Override] = [:]

    /// The defaults: no container idle-managed, `stop`, a 60 s wake timeout, traffic not watched.
    public init() {}

    /// What is wrong with a container's idle labels, one line each (the label is then ignored).
    public static func labelProblems(_ labels: [String: String]) -> [String] { IdleLabels(labels).problems }

    /// The settings of one container: `idle.containers` first, then its labels, then the defaults.
    public func settings(for ref: ContainerRef, labels: [String: String], siblings: [String: String] = [:]) -> IdleSettings {
        let o = containers[ref] ?? Override()
        let label = IdleLabels(labels)
        var deps = o.dependsOn ?? label.dependsOn(runtime: ref.runtime)
        if o.dependsOn == nil, label.values["idlewatcher.depends_on"] == nil {
            deps = ComposeDependencies.resolve(labels: labels, runtime: ref.runtime, serviceContainers: siblings)
        }
        return IdleSettings(
            timeout: o.timeout ?? label.timeout ?? timeout,
            action: o.action ?? label.action ?? action,
            wakeTimeout: o.wakeTimeout ?? label.wakeTimeout ?? wakeTimeout,
            dependsOn: deps.filter { $0 != ref },
            trafficThreshold: o.trafficThreshold ?? label.trafficThreshold ?? trafficThreshold)
    }
}

/// One container's idle settings, resolved.
public struct IdleSettings: Sendable, Hashable {
    /// The idle timeout; zero: not idle-managed.
    public var timeout: Duration
    /// What is done to it once idle.
    public var action: IdleAction
    /// How long a wake waits for it to be ready.
    public var wakeTimeout: Duration
    /// The containers woken before it; never itself.
    public var dependsOn: [ContainerRef]
    /// Bytes per minute (in + out) that count as activity; zero: traffic is not watched.
    public var trafficThreshold: UInt64

    /// Idle-managed: its timeout is more than zero.
    public var managed: Bool { timeout > .zero }
}

/// The `idlewatcher.*` labels of the idle policy, read leniently: a label that does not parse
/// is ignored (and named by ``problems``).
struct IdleLabels {
    let values: [String: String]
    init(_ labels: [String: String]) { values = labels }

    var timeout: Duration? { values["idlewatcher.idle_timeout"].flatMap { Duration(parsing: $0) } }
    var action: IdleAction? {
        values["idlewatcher.idle_action"].flatMap { IdleAction(rawValue: $0.trimmingWhitespace().lowercased()) }
    }
    var wakeTimeout: Duration? { values["idlewatcher.wake_timeout"].flatMap { Duration(parsing: $0) } }
    var trafficThreshold: UInt64? { values["idlewatcher.traffic_threshold"].flatMap(ByteSize.parse) }
    func dependsOn(runtime: RuntimeKind) -> [ContainerRef] {
        guard let list = values["idlewatcher.depends_on"] else { return [] }
        return list.split(separator: ",").compactMap { ContainerRef(parsing: String($0)) }
    }

    /// What is wrong with the labels that are set, one line each.
    var problems: [String] {
        var out: [String] = []
        if let v = values["idlewatcher.idle_timeout"], Duration(parsing: v) == nil {
            out.append("idlewatcher.idle_timeout=\(v): not a duration such as 30m")
        }
        if let v = values["idlewatcher.idle_action"], action == nil {
            out.append("idlewatcher.idle_action=\(v): expected stop, pause or kill")
        }
        if let v = values["idlewatcher.traffic_threshold"], ByteSize.parse(v) == nil {
            out.append("idlewatcher.traffic_threshold=\(v): not a size such as 1MB")
        }
        if let v = values["idlewatcher.depends_on"] {
            for item in v.split(separator: ",") where ContainerRef(parsing: String(item)) == nil {
                out.append("idlewatcher.depends_on: '\(item)' is not <runtime>/<id>")
            }
        }
        return out
    }
}

/// Compose's own `com.docker.compose.depends_on` label (`db:service_started:false,cache:…`):
/// services of the same project, found among the containers of the same runtime.
enum ComposeDependencies {
    /// `serviceContainers`: `<project>/<service>` → container id, for the runtime's containers.
    static func resolve(labels: [String: String], runtime: RuntimeKind, serviceContainers: [String: String]) -> [ContainerRef] {
        guard let list = labels["com.docker.compose.depends_on"], let project = labels["com.docker.compose.project"] else {
            return []
        }
        return list.split(separator: ",").compactMap { item in
            let service = item.split(separator: ":").first.map { String($0).trimmingWhitespace() } ?? ""
            return serviceContainers["\(project)/\(service)"].map { ContainerRef(runtime, $0) }
        }
    }
}

/// Sizes as people write them: a whole number with an optional unit, `B`, `K`/`KB` (1000),
/// `KiB` (1024), `M`/`MB`, `MiB`, `G`/`GB`, `GiB` (`1500`, `1MB`, `512KiB`).
public enum ByteSize {
    /// The number of bytes; nil for anything else (a fraction, an unknown unit, an overflow).
    public static func parse(_ text: String) -> UInt64? {
        let t = text.trimmingWhitespace()
        let digits = t.prefix { $0 >= "0" && $0 <= "9" }
        guard !digits.isEmpty, let n = UInt64(digits) else { return nil }
        let unit = String(t.dropFirst(digits.count)).trimmingWhitespace().lowercased()
        let factor: UInt64
        switch unit {
        case "", "b": factor = 1
        case "k", "kb": factor = 1000
        case "kib": factor = 1024
        case "m", "mb": factor = 1_000_000
        case "mib": factor = 1 << 20
        case "g", "gb": factor = 1_000_000_000
        case "gib": factor = 1 << 30
        default: return nil
        }
        let (v, overflow) = n.multipliedReportingOverflow(by: factor)
        return overflow ? nil : v
    }
}
