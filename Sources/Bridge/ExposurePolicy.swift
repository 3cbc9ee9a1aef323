import IdlewatcherCore

/// Which containers of an endpoint the bridge exposes, and what it may do to each.
///
/// From the endpoint's `include`/`exclude`, the `defaults`, and the per-container labels
/// `idlewatcher.enable`, `idlewatcher.allow` and `idlewatcher.stop_timeout`.
public struct ExposurePolicy: Sendable, Hashable {
    /// The longest stop timeout a label may set, as for `defaults.stop_timeout`.
    static let maxStopTimeout: Duration = .seconds(3600)

    /// Container names (without prefix); empty means all.
    public var include: Set<String>
    /// Container names (without prefix) never exposed, whatever `include` says.
    public var exclude: Set<String>
    /// Names the bridge never acts on (they may still be watched).
    public var protected: Set<String>
    /// The actions `defaults.allow` permits; a container's `idlewatcher.allow` label may only narrow them.
    public var allow: Set<Action>
    /// `defaults.stop_timeout`; a container's `idlewatcher.stop_timeout` label wins (``stopTimeout(labels:)``).
    public var stopTimeout: Duration
    /// How long `start`, `wake`, `unpause` and `restart` wait for the container to be ready.
    public var wakeTimeout: Duration
    /// `idle.containers.<runtime>/<id>.wake_timeout`, by id (config wins over the label).
    public var wakeTimeouts: [String: Duration]

    /// A policy; by default every container is exposed and every action allowed, with a 10 s stop timeout
    /// and a 60 s wake timeout.
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

    /// Whether the bridge exposes the container: `idlewatcher.enable` (the usual booleans:
    /// false, no, off, 0 hide it), then `include` and `exclude`.
    public func isVisible(name: String, labels: [String: String]) -> Bool {
        if let v = labels["idlewatcher.enable"], Self.boolean(v) == false { return false }
        if !include.isEmpty, !include.contains(name) { return false }
        return !exclude.contains(name)
    }

    /// `true`/`yes`/`on`/`1` and `false`/`no`/`off`/`0`, any case; nil for anything else.
    static func boolean(_ text: String) -> Bool? {
        switch text.trimmingWhitespace().lowercased() {
        case "true", "yes", "on", "1": true
        case "false", "no", "off", "0": false
        default: nil
        }
    }

    /// The actions `idlewatcher.allow` names (unknown names left out); nil when the label is
    /// absent or names nothing (an empty label is a mistake, not "allow nothing": it is ignored
    /// and reported by ``labelProblems(_:)``).
    static func namedActions(_ labels: [String: String]) -> Set<Action>? {
        guard let list = labels["idlewatcher.allow"] else { return nil }
        let named = Set(list.split(separator: ",").compactMap { Action(rawValue: String($0).trimmingWhitespace().lowercased()) })
        return named.isEmpty ? nil : named
    }

    /// The actions allowed on a container: the defaults, narrowed by `idlewatcher.allow`.
    public func allowedActions(name: String, labels: [String: String]) -> Set<Action> {
        if protected.contains(name) { return [.status] }
        guard let named = Self.namedActions(labels) else { return allow }
        return allow.intersection(named)
    }

    /// Which rule refuses `action` on a container, for the `not_allowed` message; nil if allowed.
    public func refusal(of action: Action, name: String, labels: [String: String]) -> String? {
        let allowed = allowedActions(name: name, labels: labels)
        guard !allowed.contains(action) else { return nil }
        let list = Action.allCases.filter { allowed.contains($0) }.map(\.rawValue).joined(separator: ", ")
        let rule: String
        if protected.contains(name) {
            rule = "it is protected (the endpoint's protected list)"
        } else if !allow.contains(action) {
            rule = "defaults.allow does not include it"
        } else {
            rule = "its label idlewatcher.allow=\(labels["idlewatcher.allow"] ?? "") does not include it"
        }
        return "\(action.rawValue) is not allowed for \(name): \(rule) (allowed: \(list.isEmpty ? "nothing" : list))"
    }

    /// What is wrong with the container's `idlewatcher.*` labels of exposure, one line each
    /// (`idlewatcher.stop_timeout=abc: not a duration such as 30s`); the label is then ignored.
    public static func labelProblems(_ labels: [String: String]) -> [String] {
        var out: [String] = []
        if let v = labels["idlewatcher.enable"], boolean(v) == nil {
            out.append("idlewatcher.enable=\(v): expected true or false (or yes/no, on/off, 1/0); the container stays exposed")
        }
        if let v = labels["idlewatcher.allow"] {
            let items = v.split(separator: ",").map { String($0).trimmingWhitespace().lowercased() }.filter { !$0.isEmpty }
            let unknown = items.filter { Action(rawValue: $0) == nil }
            if items.isEmpty {
                out.append(
                    "idlewatcher.allow is empty; it is ignored (the defaults apply). To allow only status, say idlewatcher.allow=status"
                )
            } else if !unknown.isEmpty {
                out.append(
                    "idlewatcher.allow=\(v): unknown action\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")) (known: \(Action.allNames))"
                )
            }
        }
        if let v = labels["idlewatcher.stop_timeout"], Duration(parsing: v) == nil {
            out.append("idlewatcher.stop_timeout=\(v): not a duration such as 30s; the default applies")
        } else if let v = labels["idlewatcher.stop_timeout"], let d = Duration(parsing: v), d > Self.maxStopTimeout {
            out.append("idlewatcher.stop_timeout=\(v): at most 1h, as defaults.stop_timeout; the default applies")
        }
        if let v = labels["idlewatcher.wake_timeout"], wakeTimeoutLabel(v) == nil {
            out.append("idlewatcher.wake_timeout=\(v): not a duration from 1s to 24h such as 2m; the default applies")
        }
        return out
    }

    /// The container's wake timeout: config, then `idlewatcher.wake_timeout` (1s to 24h, as in
    /// the config; anything else is ignored and reported), then the default.
    public func wakeTimeout(id: String, labels: [String: String]) -> Duration {
        wakeTimeouts[id] ?? labels["idlewatcher.wake_timeout"].flatMap(Self.wakeTimeoutLabel) ?? wakeTimeout
    }

    static func wakeTimeoutLabel(_ text: String) -> Duration? {
        Duration(parsing: text).flatMap { $0 >= .seconds(1) && $0 <= .seconds(86_400) ? $0 : nil }
    }

    /// `idlewatcher.stop_timeout`, else the default.
    public func stopTimeout(labels: [String: String]) -> Duration {
        labels["idlewatcher.stop_timeout"].flatMap { Duration(parsing: $0) }.flatMap { $0 <= Self.maxStopTimeout ? $0 : nil }
            ?? stopTimeout
    }
}
