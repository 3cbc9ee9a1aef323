import HTTPClient
import IdlewatcherCore
import Logging
import Synchronization

/// How to reach one Docker engine.
public struct DockerEndpointConfiguration: Sendable {
    /// `unix:///var/run/docker.sock`, `tcp://host:2375`, or `https://host:2376`.
    public var url: String
    public var idPrefix: String
    /// TLS to a `tcp://` engine (any of these set means HTTPS, as `docker --tlsverify` does).
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    /// The deadline of ordinary API calls.
    public var requestTimeout: Duration

    public init(
        url: String, idPrefix: String = "", caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil,
        requestTimeout: Duration = .seconds(30)
    ) {
        self.url = url
        self.idPrefix = idPrefix
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.requestTimeout = requestTimeout
    }

    /// The libcurl settings for this URL, or a message saying what is wrong with it.
    public func httpConfiguration() -> Result<HTTPClientConfiguration, BridgeError> {
        let tls = caFile != nil || certFile != nil || keyFile != nil
        if url.hasPrefix("unix://") {
            let path = String(url.dropFirst("unix://".count))
            guard path.hasPrefix("/") else {
                return .failure(BridgeError(.badRequest, "a unix socket URL needs an absolute path: unix:///var/run/docker.sock"))
            }
            return .success(HTTPClientConfiguration(baseURL: "http://localhost", unixSocketPath: path))
        }
        for (scheme, secure) in [("tcp://", tls), ("http://", false), ("https://", true)] where url.hasPrefix(scheme) {
            var hostPort = String(url.dropFirst(scheme.count))
            while hostPort.hasSuffix("/") { hostPort.removeLast() }
            guard !hostPort.isEmpty, !hostPort.contains("/") else {
                return .failure(BridgeError(.badRequest, "expected \(scheme)HOST:PORT"))
            }
            return .success(
                HTTPClientConfiguration(
                    baseURL: (secure ? "https://" : "http://") + hostPort, caFile: caFile, certFile: certFile,
                    keyFile: keyFile))
        }
        return .failure(BridgeError(.badRequest, "unsupported scheme: use unix:///path/to/docker.sock or tcp://host:port"))
    }
}

/// The Engine API of one Docker engine: version negotiation, requests, error mapping.
final class DockerAPI: Sendable {
    let configuration: DockerEndpointConfiguration
    let http: HTTPClient
    let logger: Logger
    /// The API version both sides speak, once negotiated; forgotten when the engine goes away.
    private let version = Mutex<DockerAPIVersion?>(nil)

    /// The newest Engine API version this bridge knows how to speak.
    static let newestSupported = DockerAPIVersion(major: 1, minor: 45)

    init(configuration: DockerEndpointConfiguration, http: HTTPClient, logger: Logger) {
        self.configuration = configuration
        self.http = http
        self.logger = logger
    }

    /// Asks the engine which API version it speaks (`GET /_ping`, header `Api-Version`) and picks
    /// the older of that and ours. Never sends a version the engine does not speak.
    @discardableResult
    func negotiate() async throws -> DockerAPIVersion {
        let response = try await raw(HTTPRequest(method: "GET", path: "/_ping", timeout: configuration.requestTimeout))
        guard response.status == 200 else {
            throw BridgeError(.unavailable, "Docker at \(configuration.url) answered /_ping with HTTP \(response.status)")
        }
        let daemon = response.head.headers["api-version"].flatMap(DockerAPIVersion.init) ?? DockerAPIVersion(major: 1, minor: 24)
        let chosen = min(daemon, Self.newestSupported)
        let previous = version.withLock { v -> DockerAPIVersion? in
            defer { v = chosen }
            return v
        }
        if previous != chosen {
            logger.info("Docker at \(configuration.url) speaks API \(daemon); using \(chosen)")
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
        logger.debug("docker \(method) \(path) → \(response.status)", metadata: ["runtime": "docker"])
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
            return BridgeError(.timeout, "Docker at \(configuration.url) did not answer in time: \(e.message)")
        case .connect, .tls, .transfer:
            var message = "cannot reach Docker at \(configuration.url): \(e.message)"
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

/// An Engine API version such as 1.41.
struct DockerAPIVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    var major: Int
    var minor: Int

    init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]) else { return nil }
        self.init(major: a, minor: b)
    }

    static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
    var description: String { "\(major).\(minor)" }
}
