import Synchronization

/// Supervision of one runtime endpoint, the same for every runtime: follow it, and when the
/// connection is lost say `.unavailable` once, retry with the endpoint's backoff, and let it
/// `.resync` when it is back.
///
/// Written once here so that no runtime carries its own reconnect loop.
public struct RuntimeWatch: Sendable {
    /// The endpoint it follows.
    public let runtime: any ContainerRuntime

    /// A watch of `runtime`; nothing runs until ``run(_:)``.
    public init(_ runtime: any ContainerRuntime) { self.runtime = runtime }

    /// Runs until the calling task is cancelled.
    public func run(_ handler: @escaping @Sendable (RuntimeUpdate) async -> Void) async {
        let backoff = BackoffBox(runtime.reconnectBackoff)
        let available = BoolBox(true)
        while !Task.isCancelled {
            do {
                try await runtime.follow { update in
                    if case .resync = update {
                        backoff.reset()
                        available.value = true
                    }
                    await handler(update)
                }
                if Task.isCancelled { return }
                throw BridgeError(.unavailable, "\(runtime.runtime.displayName) at \(runtime.endpoint) closed the connection")
            } catch {
                if Task.isCancelled { return }
                let e = BridgeError.wrapping(error)
                let first = available.value
                available.value = false
                runtime.connectionLost(e, first: first)
                if first { await handler(.unavailable(e)) }
                try? await Task.sleep(for: backoff.next())
            }
        }
    }
}

/// A backoff shared between the loop and the handler it calls (which resets it on a resync).
private final class BackoffBox: Sendable {
    private let state: Mutex<Backoff>
    init(_ b: Backoff) { state = Mutex(b) }
    func next() -> Duration { state.withLock { $0.next() } }
    func reset() { state.withLock { $0.reset() } }
}

private final class BoolBox: Sendable {
    private let state: Mutex<Bool>
    init(_ v: Bool) { state = Mutex(v) }
    var value: Bool {
        get { state.withLock { $0 } }
        set { state.withLock { $0 = newValue } }
    }
}
