import HTTPClient
import IdlewatcherCore
import Logging
import Synchronization

/// The Engine API of one Docker engine: version negotiation, requests, error mapping.
final class DockerAPI: Sendable {
    let configuration: DockerEndpointConfiguration
    let flavor: EngineFlavor
    let http: HTTPClient
    let logger: Logger
    /// The API version both sides speak, once negotiated; forgotten when the engine goes away.
    private let version = Mutex<DockerAPIVersion?>(nil)

    /// The engine's name for messages: "Docker", "Podman".
    var name: String { flavor.description.displayName }

    /// The newest Engine API version this bridge knows how to speak.
    static let newestSupported = DockerAPIVersion(major: 1, minor: 45)

    init(configuration: DockerEndpointConfiguration, flavor: EngineFlavor, http: HTTPClient, logger: Logger) {
        self.configuration = configuration
        self.flavor = flavor
        self.http = http
        self.logger = logger
    }

    /// Asks the engine which API version it speaks (`GET /_ping`, header `Api-Version`) and picks
    /// the older of that and ours. Never sends a version the engine does not speak.
    @discardableResult
    func negotiate() async throws -> DockerAPIVersion {
        let response = try await raw(HTTPRequest(method: "GET", path: "/_ping", timeout: configuration.requestTimeout))
        guard response.status == 200 else {
            throw BridgeError(.unavailable, "\(name) at \(configuration.url) answered /_ping with HTTP \(response.status)")
        }
        let daemon = response.head.headers["api-version"].flatMap(DockerAPIVersion.init) ?? DockerAPIVersion(major: 1, minor: 24)
        let chosen = min(daemon, Self.newestSupported)
        let previous = version.withLock { v -> DockerAPIVersion? in
            defer { v = chosen }
            return v
        }
        if previous != chosen {
            logger.info("\(name) at \(configuration.url) speaks API \(daemon); using \(chosen)")
        }
        return chosen
    }

    /// The negotiated version, negotiating first if needed.
    func apiVersion() async throws -> DockerAPIVersion {
        if let v = version.withLock({ $0 }) { return v }
        return try await negotiate()
    }

    func forgetVersion() { version.withLock { $0 = nil } }

    /// A versioned request: `/v1.41/containers/json`.
    func request(
        _ method: String, _ path: String, timeout: Duration? = nil, body: [UInt8]? = nil, headers: [(String, String)] = []
    ) async throws -> HTTPResponse {
        let v = try await apiVersion()
        let req = HTTPRequest(
            method: method, path: "/v\(v)" + path, headers: headers, body: body,
            timeout: timeout ?? configuration.requestTimeout)
        let response = try await raw(req)
        logger.debug("\(flavor.description.kind) \(method) \(path) → \(response.status)")
        return response
    }

    /// Sends without a version prefix; maps transport failures to the contract's codes.
    func raw(_ request: HTTPRequest) async throws -> HTTPResponse {
        do {
            return try await http.send(request)
        } catch let e as HTTPError {
            if e.kind != .timeout { forgetVersion() }
            throw mapTransport(e)
        }
    }

    func mapTransport(_ e: HTTPError) -> BridgeError {
        switch e.kind {
        case .timeout:
            return BridgeError(.timeout, "\(name) at \(configuration.url) did not answer in time: \(e.message)")
        case .connect, .tls, .transfer:
            var message = "cannot reach \(name) at \(configuration.url): \(e.message)"
            // With TLS 1.3 an engine that wants a client certificate (--tlsverify) says so only
            // after the handshake, and what curl reports then is often "Send failure: Broken pipe".
            let tls = configuration.url.hasPrefix("https://") || configuration.caFile != nil
            if tls, configuration.certFile == nil, e.kind != .connect {
                message += " (TLS without a client certificate: if the engine runs with --tlsverify, set cert_file and key_file)"
            }
            return BridgeError(.unavailable, message)
        }
    }

    /// Docker's own error message (`{"message": "…"}`), or the status line.
    static func message(of response: HTTPResponse) -> String {
        if let json = try? JSON.parse(response.body), let m = json["message"]?.string, !m.isEmpty { return m }
        let text = response.bodyText.trimmingWhitespace()
        return text.isEmpty ? "HTTP \(response.status) \(response.reason)" : text
    }
}
