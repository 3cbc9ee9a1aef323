import IdlewatcherCore

/// A command as received on `<base>/<runtime>/<id>/command` (or submitted from inside the
/// process), validated.
public struct Command: Sendable, Hashable {
    public var action: Action
    public var signal: Signal?
    /// Whole seconds, 0–3600.
    public var timeout: Duration?
    public var requestID: String?

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
        public var error: BridgeError
        /// The action as written (for the reply), if one could be read.
        public var action: String?
        public var requestID: String?
    }

    /// Parses plain text (`wake`, ` STOP `) or JSON (`{"action":"stop","timeout":10}`) for a
    /// container of `runtime`, whose description says which actions take `signal` and `timeout`.
    public static func parse(_ payload: [UInt8], runtime: RuntimeDescription) -> Result<Command, Rejection> {
        func reject(_ code: ErrorCode, _ m: String, action: String? = nil, requestID: String? = nil) -> Result<Command, Rejection> {
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
            return reject(.badRequest, "a JSON command must be an object such as {\"action\":\"stop\"}, not \(json.typeName)")
        }
        // The request id first, so that every later rejection can echo it.
        var requestID: String? = nil
        if let r = object["request_id"] {
            switch r {
            case .null: break
            case .string(let s) where s.count <= 128: requestID = s
            case .string: return reject(.badRequest, "request_id is longer than 128 characters")
            default: return reject(.badRequest, "request_id must be a string, not \(r.typeName)")
            }
        }
        guard let actionValue = object["action"] else {
            return reject(.badRequest, "the command has no \"action\"", requestID: requestID)
        }
        guard let actionText = actionValue.string else {
            return reject(.badRequest, "\"action\" must be a string, not \(actionValue.typeName)", requestID: requestID)
        }
        guard let action = Action(rawValue: actionText.trimmingWhitespace().lowercased()) else {
            return reject(
                .unknownAction, "unknown action '\(actionText.prefix(64))'; expected one of \(Action.allNames)",
                action: String(actionText.prefix(128)), requestID: requestID)
        }
        let known: Set<String> = ["action", "signal", "timeout", "request_id"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            return reject(
                .badRequest, "unknown key '\(unknown.prefix(64))'; a command may have action, signal, timeout and request_id",
                action: action.rawValue, requestID: requestID)
        }
        var command = Command(action: action, requestID: requestID)
        if let s = object["signal"] {
            guard runtime.signalActions.contains(action) else {
                return reject(
                    .badRequest, "signal does not apply to \(action.rawValue) on \(runtime.kind)", action: action.rawValue,
                    requestID: requestID)
            }
            let parsed: Signal?
            switch s {
            case .string(let t): parsed = Signal(parsing: t)
            case .number(let n): parsed = Int(n).flatMap { Signal(number: $0) }
            default: parsed = nil
            }
            guard let parsed else {
                let shown: String = s.string.map { "'\($0.prefix(32))'" } ?? s.typeName
                return reject(
                    .badRequest, "signal \(shown) is not a signal; use a name like SIGTERM or TERM, or a number 1-64",
                    action: action.rawValue, requestID: requestID)
            }
            command.signal = parsed
        }
        if let t = object["timeout"] {
            guard runtime.timeoutActions.contains(action) else {
                return reject(
                    .badRequest, "timeout does not apply to \(action.rawValue)", action: action.rawValue, requestID: requestID)
            }
            guard case .number(let n) = t, let seconds = Int(n), (0...3600).contains(seconds) else {
                return reject(
                    .badRequest, "timeout must be whole seconds from 0 to 3600, not \(t.string.map { "'\($0.prefix(32))'" } ?? (t.int64 == nil ? t.typeName : "\(t)"))",
                    action: action.rawValue, requestID: requestID)
            }
            command.timeout = .seconds(seconds)
        }
        return .success(command)
    }
}
