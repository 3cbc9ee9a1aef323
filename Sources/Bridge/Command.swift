import IdlewatcherCore

/// A command as received on `<base>/<runtime>/<id>/command` (or submitted from inside the
/// process), validated.
public struct Command: Sendable, Hashable {
    /// What to do.
    public var action: Action
    /// The `signal` key; nil: the runtime's default. Only on ``RuntimeDescription/signalActions``.
    public var signal: Signal?
    /// Whole seconds, 0–3600.
    public var timeout: Duration?
    /// The `request_id` key (at most 128 characters), echoed in the reply.
    public var requestID: String?

    /// A command as given; nothing is checked (``parse(_:runtime:)`` checks payloads).
    public init(action: Action, signal: Signal? = nil, timeout: Duration? = nil, requestID: String? = nil) {
        self.action = action
        self.signal = signal
        self.timeout = timeout
        self.requestID = requestID
    }

    /// The largest payload accepted, in bytes.
    public static let maxPayload = 4096

    /// A command that could not be accepted, with what is needed to reply to it.
    public struct Rejection: Error, Sendable, Hashable {
        /// Why it was refused: `bad_request` or `unknown_action`, with a message that says what is allowed.
        public var error: BridgeError
        /// The action as written (for the reply), if one could be read.
        public var action: String?
        /// The `request_id`, when a valid one could be read, so that the reply echoes it.
        public var requestID: String?
    }

    /// Parses plain text (`wake`, ` STOP `) or JSON (`{"action":"stop","timeout":10}`) for a
    /// container of `runtime`, whose description says which actions take `signal` and `timeout`.
    ///
    /// A rejection says what is allowed and what came (`timeout: whole seconds from 0 to 3600,
    /// got 3601`), and carries the action and request id whenever they could be read, so that
    /// the reply names them even when another key is wrong.
    public static func parse(_ payload: [UInt8], runtime: RuntimeDescription) -> Result<Command, Rejection> {
        func reject(_ code: ErrorCode, _ m: String, action: String? = nil, requestID: String? = nil) -> Result<Command, Rejection>
        {
            .failure(Rejection(error: BridgeError(code, m), action: action, requestID: requestID))
        }
        guard payload.count <= maxPayload else {
            return reject(.badRequest, "the command is \(payload.count) bytes; at most \(maxPayload) are accepted")
        }
        guard let text = String(validating: payload, as: UTF8.self) else {
            return reject(.badRequest, "the command is not valid UTF-8 text")
        }
        let trimmed = text.trimmingWhitespace()
        if trimmed.isEmpty {
            return reject(.badRequest, "the command is empty; send an action such as wake, or JSON like {\"action\":\"stop\"}")
        }
        guard trimmed.hasPrefix("{") || trimmed.hasPrefix("[") || trimmed.hasPrefix("\"") else {
            guard let action = Action(rawValue: trimmed.lowercased()) else {
                return reject(
                    .unknownAction, "unknown action '\(trimmed.prefix(64))'; expected one of \(Action.allNames)",
                    action: String(trimmed.prefix(128)))
            }
            return .success(Command(action: action))
        }
        let json: JSON
        do {
            json = try JSON.parse(trimmed, maxDepth: 16)
        } catch {
            return reject(.badRequest, "the command is not valid JSON: \(error)")
        }
        guard let object = json.object else {
            return reject(.badRequest, "a JSON command must be an object such as {\"action\":\"stop\"}, got \(Self.shown(json))")
        }
        // What the reply echoes is read first (the action as written, a valid request id), so
        // that every rejection below can name both.
        let actionText = object["action"]?.string
        let action = actionText.flatMap { Action(rawValue: $0.trimmingWhitespace().lowercased()) }
        let echoedAction = action?.rawValue ?? actionText.map { String($0.prefix(128)) }
        var requestID: String? = nil
        if case .string(let s) = object["request_id"], s.count <= 128 { requestID = s }
        func bad(_ m: String) -> Result<Command, Rejection> { reject(.badRequest, m, action: echoedAction, requestID: requestID) }

        if let r = object["request_id"], requestID == nil, r != .null {
            let got = r.string.map { "a string of \($0.count) characters" } ?? Self.shown(r)
            return bad("request_id: a string of at most 128 characters, got \(got)")
        }
        guard let actionValue = object["action"] else {
            return bad("the command has no \"action\"; expected one of \(Action.allNames)")
        }
        guard let actionText else {
            return bad("action: one of \(Action.allNames), got \(Self.shown(actionValue))")
        }
        guard let action else {
            return reject(
                .unknownAction, "unknown action '\(actionText.prefix(64))'; expected one of \(Action.allNames)",
                action: echoedAction, requestID: requestID)
        }
        let known: Set<String> = ["action", "signal", "timeout", "request_id"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            return bad("unknown key '\(unknown.prefix(64))'; a command may have action, signal, timeout and request_id")
        }
        var command = Command(action: action, requestID: requestID)
        if let s = object["signal"] {
            guard runtime.signalActions.contains(action) else {
                return bad("signal does not apply to \(action.rawValue) on \(runtime.displayName)")
            }
            let parsed: Signal?
            switch s {
            case .string(let t): parsed = Signal(parsing: t)
            case .number(let n): parsed = Int(n).flatMap { Signal(number: $0) }
            default: parsed = nil
            }
            guard let parsed else {
                return bad("signal: a name like SIGTERM or TERM, or a number from 1 to 64, got \(Self.shown(s))")
            }
            command.signal = parsed
        }
        if let t = object["timeout"] {
            guard runtime.timeoutActions.contains(action) else {
                return bad("timeout does not apply to \(action.rawValue)")
            }
            guard case .number(let n) = t, let seconds = Int(n), (0...3600).contains(seconds) else {
                var got = Self.shown(t)
                if let s = t.string, Int(s.trimmingWhitespace()) != nil { got += " (a string; write the number without quotes)" }
                return bad("timeout: whole seconds from 0 to 3600, got \(got)")
            }
            command.timeout = .seconds(seconds)
        }
        return .success(command)
    }

    /// A JSON value as a person wrote it, short: `3601`, `1.5`, `"SIGFOO"`, `true`, `null`, `an object`.
    static func shown(_ value: JSON) -> String {
        switch value {
        case .number(let n): n.count <= 32 ? n : String(n.prefix(32)) + "…"
        case .string(let s): "\"" + (s.count <= 32 ? s : String(s.prefix(32)) + "…") + "\""
        case .bool(let b): b ? "true" : "false"
        case .null: "null"
        case .array, .object: value.typeName
        }
    }
}
