import Logging
import Synchronization

/// An HTTP/1.1 client over libcurl: unix sockets, TCP, TLS with client certificates,
/// whole and streamed responses.
///
/// Requests run on the client's own libcurl thread; async callers suspend without blocking
/// a thread of the cooperative pool. Cancelling the calling task abandons the request.
public final class HTTPClient: Sendable {
    /// Where and how it connects; fixed for the client's life.
    public let configuration: HTTPClientConfiguration
    private let engine: CurlEngine

    /// A client for one server. No I/O and no thread yet: its libcurl thread starts with the first request.
    public init(configuration: HTTPClientConfiguration) {
        self.configuration = configuration
        self.engine = CurlEngine()
    }

    deinit { engine.shutdown() }

    /// Sends a request and returns the whole response, whatever its status.
    /// Throws ``HTTPError`` when no response could be had, `CancellationError` when cancelled.
    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let id = engine.makeID()
        let holder = TransferHolder()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<HTTPResponse, any Error>) in
                let t = Transfer(id: id, request: request, configuration: configuration, sink: .buffered(c))
                holder.set(t)
                engine.submit(t)
            }
        } onCancel: {
            holder.cancel()
            engine.cancel(id)
        }
    }

    /// Sends a request and yields the response head, then body chunks as they arrive.
    /// Ending the iteration abandons the request.
    public func stream(_ request: HTTPRequest) -> AsyncThrowingStream<HTTPStreamPart, any Error> {
        let (stream, continuation) = AsyncThrowingStream<HTTPStreamPart, any Error>.makeStream()
        let id = engine.makeID()
        let t = Transfer(id: id, request: request, configuration: configuration, sink: .stream(continuation))
        continuation.onTermination = { [engine] reason in
            if case .cancelled = reason {
                t.markCancelled()
                engine.cancel(id)
            }
        }
        engine.submit(t)
        return stream
    }

    /// Fails every request in flight and stops the client's thread.
    public func shutdown() { engine.shutdown() }
}

/// Carries a transfer from the continuation's body to the cancellation handler, which may
/// run first, on another thread.
private final class TransferHolder: Sendable {
    private struct State: Sendable {
        var transfer: Transfer?
        var cancelled = false
    }
    private let state = Mutex(State())

    func set(_ t: Transfer) {
        let wasCancelled = state.withLock { s -> Bool in
            s.transfer = t
            return s.cancelled
        }
        if wasCancelled { t.markCancelled() }
    }

    func cancel() {
        let t = state.withLock { s -> Transfer? in
            s.cancelled = true
            return s.transfer
        }
        t?.markCancelled()
    }
}
