import IdlewatcherCore

/// The topic layout of the contract, in one place.
public struct Topics: Sendable, Hashable {
    /// `idlewatcher` unless configured.
    public let base: String
    public let bridgeID: String

    public init(base: String, bridgeID: String) {
        self.base = base
        self.bridgeID = bridgeID
    }

    public func event(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/event" }
    public func status(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/status" }
    public func command(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/command" }
    public func reply(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/reply" }
    public var bridgeState: String { "\(base)/bridge/\(bridgeID)/state" }

    public func commandFilter(_ runtime: RuntimeKind) -> String { "\(base)/\(runtime.rawValue)/+/command" }
    public func statusFilter(_ runtime: RuntimeKind) -> String { "\(base)/\(runtime.rawValue)/+/status" }

    /// Splits `<base>/<runtime>/<id>/<leaf>`; nil for anything else (another base, a bad runtime).
    public func parse(_ topic: String) -> (runtime: RuntimeKind, id: String, leaf: String)? {
        guard topic.hasPrefix(base + "/") else { return nil }
        let rest = topic.dropFirst(base.count + 1).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 3, let runtime = RuntimeKind(rawValue: String(rest[0])), !rest[1].isEmpty else { return nil }
        return (runtime, String(rest[1]), String(rest[2]))
    }
}
