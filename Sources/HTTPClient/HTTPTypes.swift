/// A request for ``HTTPClient``.
public struct HTTPRequest: Sendable {
    /// The HTTP method as sent: `GET`, `POST`, `PUT`, `DELETE`, `HEAD`, ….
    public var method: String
    /// Path and query, appended to the client's base URL (`/v1.41/containers/json?all=1`).
    public var path: String
    /// Extra header fields, sent in order as `name: value`.
    public var headers: [(String, String)]
    /// The body; nil: none. Ignored for `GET` and `HEAD`; any other method with a body sends it like `POST`.
    public var body: [UInt8]?
    /// The whole request's deadline; nil: none (for streams).
    public var timeout: Duration?

    /// A request; by default a `GET` without body, with a 30 s deadline.
    public init(
        method: String = "GET", path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration? = .seconds(30)
    ) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// The status line and headers of a response.
public struct HTTPResponseHead: Sendable, Hashable {
    /// The status code (`200`, `404`, …).
    public var status: Int
    /// The reason phrase as the server sent it (Proxmox puts its error message there).
    public var reason: String
    /// Header fields by lowercased name.
    public var headers: [String: String]

    /// A head as read from the status line and the header fields.
    public init(status: Int, reason: String, headers: [String: String]) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }
}

/// A whole response.
public struct HTTPResponse: Sendable {
    /// The status line and header fields.
    public var head: HTTPResponseHead
    /// The whole body, as received.
    public var body: [UInt8]
    /// The status code.
    public var status: Int { head.status }
    /// The reason phrase, as the server sent it.
    public var reason: String { head.reason }
    /// The body as UTF-8 text (invalid bytes replaced), for messages.
    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// A response of `head` and `body`.
    public init(head: HTTPResponseHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }
}

/// A piece of a streamed response: the head first, then body chunks as they arrive.
public enum HTTPStreamPart: Sendable {
    /// The status line and header fields, once, before any body.
    case head(HTTPResponseHead)
    /// The next chunk of the body, as it arrived.
    case body([UInt8])
}

/// A transport failure (no HTTP response at all).
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for the caller to map onto the contract's codes (`unavailable`, `timeout`).
    public enum Kind: Sendable {
        /// The server could not be reached: no socket, refused, DNS, unreachable.
        case connect
        /// The deadline passed.
        case timeout
        /// TLS failed: unknown CA, wrong host name, bad client certificate.
        case tls
        /// Anything else curl reports (connection dropped mid-response, …).
        case transfer
    }

    /// What went wrong.
    public var kind: Kind
    /// curl's own words, with the OS error where it has one.
    public var message: String

    /// A failure of `kind`, in curl's words.
    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    public var description: String { message }
}

/// How to reach a server.
public struct HTTPClientConfiguration: Sendable {
    /// `http://localhost` for a unix socket, else `http(s)://host:port`.
    public var baseURL: String
    /// A unix socket to connect to instead of TCP.
    public var unixSocketPath: String?
    /// PEM file of the CA(s) to trust; nil: the system's.
    public var caFile: String?
    /// PEM client certificate and key, for TLS client authentication.
    public var certFile: String?
    /// The client certificate's private key (PEM), with ``certFile``.
    public var keyFile: String?
    /// Verify the server certificate and host name (the default). Off only when a user asks.
    public var verifyPeer: Bool
    /// How long connecting (TCP and the TLS handshake) may take, within the request's own deadline.
    public var connectTimeout: Duration

    /// A configuration; by default the server's certificate is verified and connecting may take 5 s.
    public init(
        baseURL: String, unixSocketPath: String? = nil, caFile: String? = nil, certFile: String? = nil,
        keyFile: String? = nil, verifyPeer: Bool = true, connectTimeout: Duration = .seconds(5)
    ) {
        self.baseURL = baseURL
        self.unixSocketPath = unixSocketPath
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.verifyPeer = verifyPeer
        self.connectTimeout = connectTimeout
    }
}

/// `application/x-www-form-urlencoded` and query-string encoding.
public enum FormEncoding {
    /// `a=1&b=x%20y`: the fields in order, names and values percent-encoded.
    public static func encode(_ fields: [(String, String)]) -> String {
        fields.map { percentEncode($0.0) + "=" + percentEncode($0.1) }.joined(separator: "&")
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    public static func percentEncode(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out.append("%")
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(b >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(b & 15)]))
            }
        }
        return out
    }
}
