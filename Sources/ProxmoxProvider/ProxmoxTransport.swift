import HTTPClient
import IdlewatcherCore
import Logging

/// One exchange with the API under `/api2/json`, written once for requests and logins: the
/// form body, the deadline, the debug line, and transport failures as the contract's errors.
/// Authentication is the caller's (headers).
struct ProxmoxTransport: Sendable {
    let http: HTTPClient
    let failures: ProxmoxFailures
    let logger: Logger

    /// Sends `method path` (a form body on anything but GET) and returns what Proxmox answered.
    /// The form may hold a secret: it is never logged.
    func exchange(
        _ method: String, _ path: String, headers: [(String, String)] = [], form: [(String, String)] = [],
        timeout: Duration? = nil, metadata: Logger.Metadata = [:]
    ) async throws -> ProxmoxReply {
        var headers = headers
        var body: [UInt8]? = nil
        if method != "GET" {
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            body = Array(FormEncoding.encode(form).utf8)
        }
        let request = HTTPRequest(
            method: method, path: "/api2/json" + path, headers: headers, body: body,
            timeout: timeout ?? failures.requestTimeout)
        let started = ContinuousClock.now
        let response: HTTPResponse
        do {
            response = try await http.send(request)
        } catch let e as HTTPError {
            logger.debug("proxmox \(method) \(path) failed: \(e.message)", metadata: metadata)
            throw failures.transport(e, method: method, path: path)
        }
        let ms = (ContinuousClock.now - started).wholeMilliseconds
        logger.debug("proxmox \(method) \(path) → \(response.status) \(response.reason) (\(ms) ms)", metadata: metadata)
        return ProxmoxReply(status: response.status, reason: response.reason, body: response.body)
    }
}
