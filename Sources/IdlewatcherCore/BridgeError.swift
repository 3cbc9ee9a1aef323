/// The error codes of the contract's reply JSON.
public enum ErrorCode: String, Sendable, Hashable, Codable, CaseIterable {
    case badRequest = "bad_request"
    case unknownAction = "unknown_action"
    case notAllowed = "not_allowed"
    case notFound = "not_found"
    case invalidState = "invalid_state"
    case timeout
    case unavailable
    case runtimeError = "runtime_error"
    case busy
}

/// An error as users see it: a contract code and a message a person can act on.
///
/// Providers throw these; the bridge puts them into replies and log lines unchanged.
public struct BridgeError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

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
