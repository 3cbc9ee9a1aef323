import CCurl
import IdlewatcherCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One request in flight: the curl easy handle and where its result goes.
final class Transfer: @unchecked Sendable {
    // @unchecked: after `submit`, every mutable field is touched only on the engine thread
    // (curl calls the callbacks there); `cancelled` is atomic.
    let id: UInt64
    let easy: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private var head = HTTPResponseHead(status: 0, reason: "", headers: [:])
    private var headDelivered = false
    private var body: [UInt8] = []
    private let sink: Sink
    private let cancelled = Atomic<Bool>(false)
    /// The unix socket the request goes to, if any: the failure names it, not curl's "localhost port 80".
    private let unixSocketPath: String?

    enum Sink {
        case buffered(CheckedContinuation<HTTPResponse, any Error>)
        case stream(AsyncThrowingStream<HTTPStreamPart, any Error>.Continuation)
    }

    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
    func markCancelled() { cancelled.store(true, ordering: .relaxed) }

    init(id: UInt64, request: HTTPRequest, configuration: HTTPClientConfiguration, sink: Sink) {
        self.id = id
        self.sink = sink
        self.unixSocketPath = configuration.unixSocketPath
        easy = curl_easy_init()
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        let h = easy
        ccurl_easy_setopt_string(h, CURLOPT_URL, configuration.baseURL + request.path)
        ccurl_easy_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        ccurl_easy_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        ccurl_easy_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1)
        ccurl_easy_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(configuration.connectTimeout.wholeMilliseconds))
        if let timeout = request.timeout {
            ccurl_easy_setopt_long(h, CURLOPT_TIMEOUT_MS, max(1, Int(timeout.wholeMilliseconds)))
        }
        if let socket = configuration.unixSocketPath {
            ccurl_easy_setopt_string(h, CURLOPT_UNIX_SOCKET_PATH, socket)
        }
        if let ca = configuration.caFile { ccurl_easy_setopt_string(h, CURLOPT_CAINFO, ca) }
        if let cert = configuration.certFile { ccurl_easy_setopt_string(h, CURLOPT_SSLCERT, cert) }
        if let key = configuration.keyFile { ccurl_easy_setopt_string(h, CURLOPT_SSLKEY, key) }
        if !configuration.verifyPeer {
            ccurl_easy_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 0)
            ccurl_easy_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 0)
        }

        switch request.method {
        case "GET": break
        case "HEAD": ccurl_easy_setopt_long(h, CURLOPT_NOBODY, 1)
        default:
            if request.method == "POST" || request.body != nil {
                ccurl_easy_setopt_long(h, CURLOPT_POST, 1)
                let bytes = request.body ?? []
                ccurl_easy_setopt_long(h, CURLOPT_POSTFIELDSIZE, bytes.count)
                // COPYPOSTFIELDS copies: the bytes need not outlive this call.
                if bytes.isEmpty {
                    ccurl_easy_setopt_string(h, CURLOPT_COPYPOSTFIELDS, "")
                } else {
                    _ = bytes.withUnsafeBufferPointer { buf in
                        ccurl_easy_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: buf.baseAddress!))
                    }
                }
            }
            if request.method != "POST" { ccurl_easy_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method) }
        }

        var list: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Expect:")
        for (name, value) in request.headers { list = curl_slist_append(list, "\(name): \(value)") }
        headerList = list
        ccurl_easy_setopt_slist(h, CURLOPT_HTTPHEADER, list)

        let me = Unmanaged.passRetained(self).toOpaque()  // balanced by release()
        ccurl_easy_setopt_pointer(h, CURLOPT_HEADERDATA, me)
        ccurl_easy_setopt_pointer(h, CURLOPT_WRITEDATA, me)
        ccurl_easy_setopt_data_callback(h, CURLOPT_HEADERFUNCTION) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            let count = size * n
            t.onHeaderLine(UnsafeRawBufferPointer(start: ptr, count: count))
            return count
        }
        ccurl_easy_setopt_data_callback(h, CURLOPT_WRITEFUNCTION) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            let count = size * n
            t.onBody(UnsafeRawBufferPointer(start: ptr, count: count))
            return count
        }
    }

    /// Drops the retain taken for curl's callbacks and frees the handles. Engine thread only.
    func release() {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        headerList = nil
        errorBuffer.deallocate()
        Unmanaged.passUnretained(self).release()
    }

    private func onHeaderLine(_ raw: UnsafeRawBufferPointer) {
        var line = String(decoding: raw, as: UTF8.self)
        while line.last == "\n" || line.last == "\r" || line.last == "\r\n" { line.removeLast() }
        if line.hasPrefix("HTTP/") {
            // A new response (after 100 Continue or a redirect): start over.
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            head = HTTPResponseHead(
                status: parts.count > 1 ? Int(parts[1]) ?? 0 : 0,
                reason: parts.count > 2 ? String(parts[2]) : "", headers: [:])
        } else if line.isEmpty {
            if head.status >= 200 { deliverHead() }
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters()
            head.headers[name] = value
        }
    }

    private func deliverHead() {
        guard !headDelivered else { return }
        headDelivered = true
        if case .stream(let c) = sink { c.yield(.head(head)) }
    }

    private func onBody(_ raw: UnsafeRawBufferPointer) {
        switch sink {
        case .buffered: body.append(contentsOf: raw)
        case .stream(let c):
            deliverHead()
            c.yield(.body(Array(raw)))
        }
    }

    func complete(_ code: CURLcode) {
        guard code == CURLE_OK else {
            fail(error(for: code))
            return
        }
        switch sink {
        case .buffered(let c): c.resume(returning: HTTPResponse(head: head, body: body))
        case .stream(let c):
            deliverHead()
            c.finish()
        }
    }

    func fail(_ error: any Error) {
        switch sink {
        case .buffered(let c): c.resume(throwing: error)
        case .stream(let c): c.finish(throwing: error)
        }
    }

    private func error(for code: CURLcode) -> HTTPError {
        let detail = String(cString: errorBuffer)
        var message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
        var osErrno = 0
        if ccurl_easy_getinfo_long(easy, CURLINFO_OS_ERRNO, &osErrno) == CURLE_OK, osErrno != 0 {
            let osError = String(cString: strerror(Int32(osErrno)))
            if code == CURLE_COULDNT_CONNECT, let path = unixSocketPath {
                // curl's words for a unix socket name "localhost port 80": the path and the
                // OS error say what is wrong ("/var/run/docker.sock: Permission denied").
                message = "\(path): \(osError)"
            } else {
                message += " (\(osError))"
            }
        }
        let kind: HTTPError.Kind
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .connect
        case CURLE_OPERATION_TIMEDOUT: kind = .timeout
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CIPHER, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH,
            CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ENGINE_NOTFOUND,
            CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_ENGINE_INITFAILED:
            kind = .tls
        default: kind = .transfer
        }
        return HTTPError(kind: kind, message: message)
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
