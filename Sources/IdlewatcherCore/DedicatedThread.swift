#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A thread of its own for a C library's blocking loop (libcurl's multi handle, libmosquitto's
/// network loop), which must never hold one of Swift's cooperative threads.
public enum DedicatedThread {
    /// Starts `body` on a new detached thread; `name` says what it is for in the failure
    /// message. The thread ends when `body` returns.
    ///
    /// A thread that cannot start is a broken process (no memory, or the thread limit reached),
    /// not a condition to recover from: it stops the process with the error code.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        #if canImport(Darwin)
            var thread: pthread_t?
        #else
            var thread = pthread_t()
        #endif
        let rc = pthread_create(
            &thread, nil,
            { arg in
                #if canImport(Darwin)
                    let body = Unmanaged<Body>.fromOpaque(arg).takeRetainedValue()
                #else
                    let body = Unmanaged<Body>.fromOpaque(arg!).takeRetainedValue()
                #endif
                body.run()
                return nil
            }, box)
        precondition(rc == 0, "cannot start the \(name) thread (pthread_create: \(rc))")
        #if canImport(Darwin)
            pthread_detach(thread!)
        #else
            pthread_detach(thread)
        #endif
    }

    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
}
