/// The error codes of the contract's reply JSON.
public enum ErrorCode: String, Sendable, Hashable, Codable, CaseIterable {
    /// The payload is not a valid command (the message says why).
    case badRequest = "bad_request"
    /// The action is not one of ``Action``'s.
    case unknownAction = "unknown_action"
    /// `defaults.allow`, the container's `idlewatcher.allow` label or the endpoint's protected list forbids it.
    case notAllowed = "not_allowed"
    /// No such container exposed by this bridge.
    case notFound = "not_found"
    /// The container is in a state the action cannot start from, or its dependencies form a cycle.
    case invalidState = "invalid_state"
    /// The operation did not finish in time, or the container was not ready within its wake timeout.
    case timeout
    /// The runtime cannot be reached, or the bridge is shutting down.
    case unavailable
    /// The runtime refused; its own message is passed on.
    case runtimeError = "runtime_error"
    /// The container's command queue is full.
    case busy
}

/// An error as users see it: a contract code and a message a person can act on.
///
/// Providers throw these; the bridge puts them into replies and log lines unchanged.
public struct BridgeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The contract's code: the reply's `error.code`.
    public var code: ErrorCode
    /// What went wrong, for a person: the reply's `error.message` and log lines.
    public var message: String

    /// An error with `code` and `message`.
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`, for log lines.
    public var description: String { "\(code.rawValue): \(message)" }

    /// Wraps any error: a `BridgeError` stays as it is, anything else becomes `runtime_error`.
    public static func wrapping(_ error: any Error) -> BridgeError {
        if let e = error as? BridgeError { return e }
        if error is CancellationError {
            return BridgeError(.unavailable, "the operation was cancelled because the bridge is shutting down")
        }
        return BridgeError(.runtimeError, String(describing: error))
    }
}
