import IdlewatcherCore

/// The topic layout of the contract, in one place.
public struct Topics: Sendable, Hashable {
    /// `idlewatcher` unless configured.
    public let base: String
    /// `bridge.id`: names this bridge's state topic.
    public let bridgeID: String

    /// The layout under `base` for the bridge `bridgeID`.
    public init(base: String, bridgeID: String) {
        self.base = base
        self.bridgeID = bridgeID
    }

    /// `<base>/<runtime>/<id>/event`: lifecycle events, not retained.
    public func event(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/event" }
    /// `<base>/<runtime>/<id>/status`: the retained status; an empty payload once the container is gone.
    public func status(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/status" }
    /// `<base>/<runtime>/<id>/command`: where commands arrive.
    public func command(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/command" }
    /// `<base>/<runtime>/<id>/reply`: replies to commands without a usable Response Topic.
    public func reply(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/reply" }
    /// `<base>/<runtime>/<id>/activity`: touches and leases that keep an idle-managed container awake.
    public func activity(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/activity" }
    /// `<base>/<runtime>/<id>/idle`: the retained idle state of an idle-managed container.
    public func idle(_ runtime: RuntimeKind, _ id: String) -> String { "\(base)/\(runtime.rawValue)/\(id)/idle" }
    /// `<base>/bridge/<bridge_id>/state`: `online` or `offline`, retained.
    public var bridgeState: String { "\(base)/bridge/\(bridgeID)/state" }
    /// `<base>/bridge/<bridge_id>/index`: retained, every `<runtime>/<id>` whose status this
    /// bridge keeps retained. Read back on one exact topic, so that a resync finds the stale
    /// statuses of an earlier run on brokers that send retained messages only to subscriptions
    /// without wildcards (RabbitMQ 3.x).
    public var bridgeIndex: String { "\(base)/bridge/\(bridgeID)/index" }

    /// `<base>/<runtime>/+/command`: every command for one runtime.
    public func commandFilter(_ runtime: RuntimeKind) -> String { "\(base)/\(runtime.rawValue)/+/command" }
    /// `<base>/<runtime>/+/status`: every retained status of one runtime (the bridge reads back what it left).
    public func statusFilter(_ runtime: RuntimeKind) -> String { "\(base)/\(runtime.rawValue)/+/status" }

    /// Whether a command's MQTT 5 Response Topic may take its reply: a topic without wildcards
    /// that, inside the base topic, is a `reply` topic. Otherwise whoever may send commands
    /// could have the bridge publish where only the bridge may write (another container's
    /// `status`, a bridge's `state`), which the broker's ACL cannot prevent: the bridge is
    /// allowed there. Refused ones get the reply on `<base>/<runtime>/<id>/reply`.
    public func acceptsResponseTopic(_ topic: String) -> Bool {
        let bytes = topic.utf8
        guard !bytes.isEmpty, !bytes.contains(UInt8(ascii: "+")), !bytes.contains(UInt8(ascii: "#")) else { return false }
        guard bytes.starts(with: base.utf8),
            bytes.count == base.utf8.count || bytes.dropFirst(base.utf8.count).first == UInt8(ascii: "/")
        else { return true }
        return parse(topic)?.leaf == "reply"
    }

    /// Whether a command to `runtime`/`id` may have its reply on `topic` (its MQTT 5 Response
    /// Topic): anywhere outside the base topic (no wildcards), and inside it only on the
    /// command's own reply topic, so that a command to one container cannot make the bridge
    /// answer on another container's reply topic.
    public func acceptsResponseTopic(_ topic: String, for runtime: RuntimeKind, _ id: String) -> Bool {
        guard acceptsResponseTopic(topic) else { return false }
        let bytes = topic.utf8
        let inside =
            bytes.starts(with: base.utf8)
            && (bytes.count == base.utf8.count || bytes.dropFirst(base.utf8.count).first == UInt8(ascii: "/"))
        return !inside || topic == reply(runtime, id)
    }

    /// Whether `topic` matches the subscription `filter` (`+` one level, `#` the rest), as a broker matches.
    public static func matches(filter: String, topic: String) -> Bool {
        let f = filter.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        let t = topic.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        for (i, level) in f.enumerated() {
            if level.elementsEqual("#".utf8) { return i > 0 || t.first?.first != UInt8(ascii: "$") }
            guard i < t.count else { return false }
            if level.elementsEqual("+".utf8) {
                if i == 0, t[0].first == UInt8(ascii: "$") { return false }
                continue
            }
            guard level.elementsEqual(t[i]) else { return false }
        }
        return f.count == t.count
    }

    /// Splits `<base>/<runtime>/<id>/<leaf>`; nil for anything else (another base, the bridges' own `bridge/…`).
    /// Works on the UTF-8 bytes, as MQTT does: split by characters, an id that begins with a
    /// combining mark would swallow the `/` before it.
    public func parse(_ topic: String) -> (runtime: RuntimeKind, id: String, leaf: String)? {
        let prefix = (base + "/").utf8
        guard topic.utf8.starts(with: prefix) else { return nil }
        let rest = topic.utf8.dropFirst(prefix.count).split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        guard rest.count == 3, !rest[0].isEmpty, rest[0] != "bridge", !rest[1].isEmpty else { return nil }
        return (RuntimeKind(rest[0]), rest[1], rest[2])
    }
}
