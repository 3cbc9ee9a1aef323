import CMosquitto
import IdlewatcherCore
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The libmosquitto session and the network loop that drives it, on a thread of its own.
///
/// We do not use libmosquitto's threaded loop (its reconnect handling has known bugs): this
/// loop polls the socket and a wake-up pipe, connects and reconnects with backoff, renews
/// subscriptions and the birth message on every CONNACK, and publishes from an ordered,
/// bounded queue only while connected.
///
/// This file holds the state, the thread and the poll loop. The rest, by concern:
/// `MosquittoLoop+Connection.swift` (the session's settings, connecting and reconnecting on
/// ``ReconnectBackoff``'s schedule, failures in words a person can act on, the clean
/// shutdown), `MosquittoLoop+Outbox.swift` (publishing from the ``Outbox``),
/// `MosquittoLoop+Callbacks.swift` (what libmosquitto calls back: CONNACK, PUBACK with its
/// reason code, incoming messages).
final class MosquittoLoop: @unchecked Sendable {
    // @unchecked: `mosq` and the fields marked "loop thread" are touched only on the loop
    // thread (libmosquitto calls our callbacks there, from inside the loop's own calls);
    // everything else is immutable, a Mutex or an Atomic.
    let configuration: MQTTConfiguration
    let logger: Logger
    var mosq: OpaquePointer?  // loop thread
    var sessionUp = false  // loop thread: CONNACK accepted on the current connection
    var connectionLost = false  // loop thread
    var pendingOfflineMid: Int32? = nil  // loop thread
    var offlineAcked = false  // loop thread
    /// loop thread: why the current attempt failed before a session began (a CONNACK refusal,
    /// or libmosquitto's last error line, which carries OpenSSL's reason for a TLS failure).
    var refusal: String? = nil
    var libraryError: String? = nil
    /// loop thread: QoS 1 messages waiting for their PUBACK, and the topics whose refusal was logged.
    var acknowledgements = PublishAcknowledgements()
    /// loop thread: `dropped` when the last connection began, to say at the next one how many
    /// events were lost in between.
    var droppedAtLastConnect = 0
    /// loop thread: QoS 1 messages handed to libmosquitto and not acknowledged yet, with when.
    /// At most ``handOverWindow`` at a time: the rest wait in the ``Outbox``, where a newer
    /// status replaces an older one. libmosquitto keeps what it was given until the broker
    /// acknowledges it, across reconnects, and without a bound: a connection that keeps
    /// dropping (two bridges with one client id) would grow it by every resync.
    var handedOver: [Int32: ContinuousClock.Instant] = [:]
    /// loop thread: when the current session's CONNACK came, and the broker's reason for the
    /// last DISCONNECT it sent (MQTT 5), if any.
    var sessionStarted: ContinuousClock.Instant? = nil
    var disconnectReason: Int32 = 0
    /// loop thread: how many times another client took this client id's session, and how many
    /// sessions in a row ended within 2 s.
    var takeovers = 0
    var shortSessions = 0
    let wakeRead: Int32
    let wakeWrite: Int32
    let incoming: AsyncStream<MQTTIncomingMessage>.Continuation
    let connection: AsyncStream<MQTTConnectionEvent>.Continuation
    let connected = Atomic<Bool>(false)
    /// Events dropped because the outbox was full, since start.
    let dropped = Atomic<Int>(0)

    /// What callers on any thread share with the loop thread.
    struct Shared {
        var outbox: Outbox
        var subscriptions: [MQTTSubscription]
        var newSubscriptions: [MQTTSubscription] = []
        var stopping = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    let shared: Mutex<Shared>

    static let libInit: Bool = { mosquitto_lib_init() == MOSQ_ERR_SUCCESS.rawValue }()

    init(
        configuration: MQTTConfiguration, subscriptions: [MQTTSubscription], logger: Logger,
        incoming: AsyncStream<MQTTIncomingMessage>.Continuation,
        connection: AsyncStream<MQTTConnectionEvent>.Continuation
    ) {
        self.configuration = configuration
        self.logger = logger
        self.incoming = incoming
        self.connection = connection
        self.shared = Mutex(Shared(outbox: Outbox(limit: configuration.queueLimit), subscriptions: subscriptions))
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "cannot create the MQTT wake-up pipe")
        wakeRead = fds[0]
        wakeWrite = fds[1]
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    // MARK: called from any thread

    /// Starts the loop thread (from ``MQTTClient/run()``); it holds the loop until it finishes.
    func start() {
        DedicatedThread.start(name: "MQTT") { self.threadMain() }
    }

    func subscribe(_ subs: [MQTTSubscription]) {
        shared.withLock { s in
            s.subscriptions.append(contentsOf: subs)
            s.newSubscriptions.append(contentsOf: subs)
        }
        wake()
    }

    /// Asks the loop to say `offline`, disconnect and end.
    func stop() {
        shared.withLock { $0.stopping = true }
        wake()
    }

    func waitUntilFinished() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = shared.withLock { s -> Bool in
                if s.finished { return true }
                s.waiters.append(c)
                return false
            }
            if done { c.resume() }
        }
    }

    /// Interrupts the loop's `poll`: something was queued, subscribed, or the loop should stop.
    func wake() {
        var b: UInt8 = 1
        _ = write(wakeWrite, &b, 1)
    }

    // MARK: loop thread

    var isStopping: Bool { shared.withLock { $0.stopping } }

    private func threadMain() {
        _ = Self.libInit
        configureSession()
        connectUntilStopped()
        shutDown()
    }

    /// Runs one connection until it is lost or the client stops.
    func serve() {
        while !connectionLost {
            if isStopping { return }
            if sessionUp {
                renewSubscriptionsIfAsked()
                drainOutbox()
            }
            let sock = mosquitto_socket(mosq)
            if sock < 0 { return }
            var fds = [
                pollfd(fd: sock, events: Int16(POLLIN) | (mosquitto_want_write(mosq) ? Int16(POLLOUT) : 0), revents: 0),
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
            ]
            let n = poll(&fds, 2, 1000)
            if n < 0 && errno != EINTR { return }
            if fds[1].revents != 0 { drainWakePipe() }
            if fds[0].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                if mosquitto_loop_read(mosq, 1) != MOSQ_ERR_SUCCESS.rawValue { return }
            }
            if mosquitto_want_write(mosq) {
                if mosquitto_loop_write(mosq, 1) != MOSQ_ERR_SUCCESS.rawValue { return }
            }
            if mosquitto_loop_misc(mosq) != MOSQ_ERR_SUCCESS.rawValue { return }
        }
    }

    /// Waits `delay`, or less if the client is stopping. A message queued meanwhile wakes the
    /// loop but does not cut the wait short: it waits in the outbox (otherwise every status
    /// change during an outage would be another connection attempt).
    func pause(for delay: Duration) {
        let deadline = ContinuousClock.now + delay
        while !isStopping {
            let left = deadline - ContinuousClock.now
            if left <= .zero { return }
            var fd = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, Int32(clamping: max(1, left.wholeMilliseconds)))
            drainWakePipe()
        }
    }

    private func drainWakePipe() {
        var buf = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buf, 64) > 0 {}
    }

    private func renewSubscriptionsIfAsked() {
        let subs = shared.withLock { s -> [MQTTSubscription] in
            defer { s.newSubscriptions.removeAll() }
            return s.newSubscriptions
        }
        for sub in subs { send(sub) }
    }

    /// Sends one SUBSCRIBE with the subscription's options (MQTT 5: retain handling, retain as published).
    func send(_ sub: MQTTSubscription) {
        var options: Int32 = 0
        if configuration.protocolVersion == .v5 {
            if sub.retainHandling == .doNotSend { options |= Int32(MQTT_SUB_OPT_SEND_RETAIN_NEVER.rawValue) }
            if sub.retainAsPublished { options |= Int32(MQTT_SUB_OPT_RETAIN_AS_PUBLISHED.rawValue) }
        }
        let rc = mosquitto_subscribe_v5(mosq, nil, sub.filter, sub.qos, options, nil)
        if rc != MOSQ_ERR_SUCCESS.rawValue {
            logger.error("cannot subscribe to \(sub.filter): \(Self.describe(rc))")
        }
    }

    /// libmosquitto's words for a return code (the OS's for `MOSQ_ERR_ERRNO`).
    static func describe(_ rc: Int32) -> String {
        if rc == MOSQ_ERR_ERRNO.rawValue { return String(cString: strerror(errno)) }
        return String(cString: mosquitto_strerror(rc))
    }
}
