import HTTPClient
import IdlewatcherCore

/// How to reach one Docker engine.
public struct DockerEndpointConfiguration: Sendable {
    /// `unix:///var/run/docker.sock`, `tcp://host:2375`, or `https://host:2376`.
    public var url: String
    /// Put before every container name to make the id in topics (`nas-` gives `nas-jellyfin`); "" for none.
    public var idPrefix: String
    /// TLS to a `tcp://` engine (any of these set means HTTPS, as `docker --tlsverify` does).
    public var caFile: String?
    /// A client certificate (PEM), with ``keyFile``.
    public var certFile: String?
    /// The client certificate's private key (PEM), with ``certFile``.
    public var keyFile: String?
    /// The deadline of ordinary API calls.
    public var requestTimeout: Duration

    /// An endpoint; by default without prefix or TLS files, with a 30 s request deadline.
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
        return EndpointURL.parse(
            url, schemes: [("tcp://", tls), ("http://", false), ("https://", true)],
            example: "unix:///var/run/docker.sock or tcp://HOST:PORT"
        )
        .map { HTTPClientConfiguration(baseURL: $0.baseURL, caFile: caFile, certFile: certFile, keyFile: keyFile) }
    }
}
