import IdlewatcherCore

/// Which containers of an endpoint the bridge exposes, and what it may do to each.
///
/// From the endpoint's `include`/`exclude`, the `defaults`, and the per-container labels
/// `idlewatcher.enable`, `idlewatcher.allow` and `idlewatcher.stop_timeout`.
public struct ExposurePolicy: Sendable, Hashable {
    /// Container names (without prefix); empty means all.
    public var include: Set<String>
    public var exclude: Set<String>
    /// Names the bridge never acts on (they may still be watched).
    public var protected: Set<String>
    public var allow: Set<Action>
    public var stopTimeout: Duration
    /// How long `start`, `wake`, `unpause` and `restart` wait for the container to be ready.
    public var wakeTimeout: Duration
    /// `idle.containers.<runtime>/<id>.wake_timeout`, by id (config wins over the label).
    public var wakeTimeouts: [String: Duration]

    public init(
        include: Set<String> = [], exclude: Set<String> = [], protected: Set<String> = [],
        allow: Set<Action> = Set(Action.allCases), stopTimeout: Duration = .seconds(10), wakeTimeout: Duration = .seconds(60),
        wakeTimeouts: [String: Duration] = [:]
    ) {
        self.wakeTimeout = wakeTimeout
        self.wakeTimeouts = wakeTimeouts
        self.include = include
        self.exclude = exclude
        self.protected = protected
        self.allow = allow
        self.stopTimeout = stopTimeout
    }

    public func isVisible(name: String, labels: [String: String]) -> Bool {
        if labels["idlewatcher.enable"]?.trimmingWhitespace().lowercased() == "false" { return false }
        if !include.isEmpty, !include.contains(name) { return false }
        return !exclude.contains(name)
    }

    /// The actions allowed on a container: the defaults, narrowed by `idlewatcher.allow`.
    public func allowedActions(name: String, labels: [String: String]) -> Set<Action> {
        if protected.contains(name) { return [.status] }
        guard let list = labels["idlewatcher.allow"] else { return allow }
        let named = Set(list.split(separator: ",").compactMap { Action(rawValue: String($0).trimmingWhitespace().lowercased()) })
        return allow.intersection(named)
    }

    /// The container's wake timeout: config, then `idlewatcher.wake_timeout`, then the default.
    public func wakeTimeout(id: String, labels: [String: String]) -> Duration {
        wakeTimeouts[id] ?? labels["idlewatcher.wake_timeout"].flatMap { Duration(parsing: $0) } ?? wakeTimeout
    }

    /// `idlewatcher.stop_timeout`, else the default.
    public func stopTimeout(labels: [String: String]) -> Duration {
        labels["idlewatcher.stop_timeout"].flatMap { Duration(parsing: $0) } ?? stopTimeout
    }
}
