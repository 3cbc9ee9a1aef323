import CCurl
import IdlewatcherCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One libcurl multi handle driven by a thread of its own.
///
/// Async callers hand transfers to the engine through a locked inbox and wake it with
/// `curl_multi_wakeup`; the engine thread is the only one that touches curl handles, so no
/// blocking call ever runs on Swift's cooperative pool.
final class CurlEngine: @unchecked Sendable {
    // @unchecked: `active` is used only on the engine thread; `multi` too, except
    // `curl_multi_wakeup` (thread-safe by libcurl's contract) and the cleanup of a handle whose
    // thread never started (decided under the inbox lock, after which no thread can start).
    // Everything else other threads touch is inside the `inbox` Mutex.
    private let multi: UnsafeMutableRawPointer
    private var active: [UInt64: Transfer] = [:]
    private let inbox = Mutex(Inbox())
    private let nextID = Atomic<UInt64>(1)

    private struct Inbox {
        var adds: [Transfer] = []
        var cancels: [UInt64] = []
        var stopping = false
        var stopped = false
        /// Whether the engine thread was started (it starts with the first transfer).
        var started = false
    }

    private static let globalInit: Bool = {
        curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
    }()

    init() {
        _ = Self.globalInit
        multi = curl_multi_init()
    }

    /// Starts the engine thread: with the first transfer, so that a client nobody uses costs no
    /// thread, and the bridge's clients start theirs inside the services that use them.
    private func startThread() {
        DedicatedThread.start(name: "HTTP engine") { self.runLoop() }
    }

    func makeID() -> UInt64 { nextID.add(1, ordering: .relaxed).oldValue }

    /// Queues a transfer. Fails it at once if the engine is shutting down.
    func submit(_ transfer: Transfer) {
        let (accepted, start) = inbox.withLock { box -> (Bool, Bool) in
            guard !box.stopping else { return (false, false) }
            box.adds.append(transfer)
            defer { box.started = true }
            return (true, !box.started)
        }
        if start { startThread() }
        if accepted {
            curl_multi_wakeup(multi)
        } else {
            transfer.fail(HTTPError(kind: .transfer, message: "the HTTP client is shut down"))
            transfer.release()
        }
    }

    /// Abandons a transfer; its caller gets `CancellationError`.
    func cancel(_ id: UInt64) {
        inbox.withLock { $0.cancels.append(id) }
        curl_multi_wakeup(multi)
    }

    /// Fails every transfer and ends the thread (or, if it never started, frees the handle).
    func shutdown() {
        let (first, neverStarted) = inbox.withLock { box -> (Bool, Bool) in
            defer {
                box.stopping = true
                box.started = true
            }
            return (!box.stopping, !box.started)
        }
        guard first else { return }
        if neverStarted {
            curl_multi_cleanup(multi)  // no thread ever ran, and none will: nothing else touches the handle
        } else {
            curl_multi_wakeup(multi)
        }
    }

    private func runLoop() {
        while true {
            let (adds, cancels, stopping) = inbox.withLock { box in
                defer {
                    box.adds.removeAll()
                    box.cancels.removeAll()
                }
                return (box.adds, box.cancels, box.stopping)
            }
            for t in adds {
                if t.isCancelled {
                    t.fail(CancellationError())
                    t.release()
                    continue
                }
                active[t.id] = t
                curl_multi_add_handle(multi, t.easy)
            }
            for id in cancels {
                guard let t = active.removeValue(forKey: id) else { continue }
                curl_multi_remove_handle(multi, t.easy)
                t.fail(CancellationError())
                t.release()
            }
            if stopping {
                for (_, t) in active {
                    curl_multi_remove_handle(multi, t.easy)
                    t.fail(HTTPError(kind: .transfer, message: "the HTTP client is shut down"))
                    t.release()
                }
                active.removeAll()
                curl_multi_cleanup(multi)
                return
            }
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            while let msg = curl_multi_info_read(multi, &left) {
                guard ccurl_msg_is_done(msg) != 0, let easy = ccurl_msg_easy_handle(msg) else { continue }
                let result = ccurl_msg_result(msg)
                guard let t = active.first(where: { $0.value.easy == easy })?.value else {
                    curl_multi_remove_handle(multi, easy)
                    continue
                }
                active.removeValue(forKey: t.id)
                curl_multi_remove_handle(multi, easy)
                t.complete(result)
                t.release()
            }
            var fds: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &fds)
        }
    }
}
