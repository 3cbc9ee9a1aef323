/// `scheme://HOST[:PORT]` of a runtime endpoint, parsed once for every runtime.
public struct EndpointURL: Sendable, Hashable {
    /// Whether the endpoint speaks TLS.
    public var secure: Bool
    /// `host:port` (or `host`, `[::1]:8006`).
    public var hostPort: String

    /// The base URL an HTTP client gets: `https://host:port`.
    public var baseURL: String { (secure ? "https://" : "http://") + hostPort }

    /// Parses `url` for one of `schemes` (scheme → TLS), allowing trailing `/` and, after the
    /// authority, exactly `ignoredPath` (Proxmox's `/api2/json`). A path, a user or a password
    /// in the URL is refused: the message says what was expected (the caller adds what it got).
    public static func parse(
        _ url: String, schemes: [(scheme: String, secure: Bool)], ignoredPath: String? = nil, example: String
    ) -> Result<EndpointURL, BridgeError> {
        var rest = Substring(url.trimmingWhitespace())
        guard let match = schemes.first(where: { rest.hasPrefix($0.scheme) }) else {
            return .failure(BridgeError(.badRequest, "unsupported scheme: use \(example)"))
        }
        rest = rest.dropFirst(match.scheme.count)
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        if let ignoredPath, rest.hasSuffix(ignoredPath) { rest = rest.dropLast(ignoredPath.count) }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else {
            return .failure(BridgeError(.badRequest, "expected \(example) (no path, no user or password)"))
        }
        return .success(EndpointURL(secure: match.secure, hostPort: String(rest)))
    }
}
