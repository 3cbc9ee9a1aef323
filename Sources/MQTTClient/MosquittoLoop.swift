import CMosquitto
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
final class MosquittoLoop: @unchecked Sendable {
    // @unchecked: `mosq` and the fields marked "loop thread" are touched only on the loop
    // thread (libmosquitto calls our callbacks there); everything else is a Mutex or Atomic.
    private let configuration: MQTTConfiguration
    private let logger: Logger
    private var mosq: OpaquePointer?  // loop thread
    private var sessionUp = false  // loop thread: CONNACK accepted on the current connection
    private var connectionLost = false  // loop thread
    private var pendingOfflineMid: Int32? = nil  // loop thread
    private var offlineAcked = false  // loop thread
    /// loop thread: why the current attempt failed before a session began (a CONNACK refusal,
    /// or libmosquitto's last error line, which carries OpenSSL's reason for a TLS failure).
    private var refusal: String? = nil
    private var libraryError: String? = nil
    private let wakeRead: Int32
    private let wakeWrite: Int32
    let incoming: AsyncStream<MQTTIncomingMessage>.Continuation
    let connection: AsyncStream<MQTTConnectionEvent>.Continuation
    let connected = Atomic<Bool>(false)
    let dropped = Atomic<Int>(0)

    private struct Shared {
        var queue: [MQTTOutgoingMessage] = []
        var queueHead = 0
        var subscriptions: [MQTTSubscription]
        var newSubscriptions: [MQTTSubscription] = []
        var stopping = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let shared: Mutex<Shared>

    private static let libInit: Bool = { mosquitto_lib_init() == MOSQ_ERR_SUCCESS.rawValue }()

    init(
        configuration: MQTTConfiguration, subscriptions: [MQTTSubscription], logger: Logger,
        incoming: AsyncStream<MQTTIncomingMessage>.Continuation,
        connection: AsyncStream<MQTTConnectionEvent>.Continuation
    ) {
        self.configuration = configuration
        self.logger = logger
        self.incoming = incoming
        self.connection = connection
        self.shared = Mutex(Shared(subscriptions: subscriptions))
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

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                let loop = Unmanaged<MosquittoLoop>.fromOpaque(arg!).takeRetainedValue()
                loop.threadMain()
                return nil
            }, box)
        precondition(rc == 0, "cannot start the MQTT thread (pthread_create: \(rc))")
        pthread_detach(thread)
    }

    func enqueue(_ message: MQTTOutgoingMessage) {
        var droppedNow = 0
        shared.withLock { s in
            if message.retain, s.queue.count > s.queueHead {
                // A newer retained message supersedes one still waiting for the same topic:
                // only the latest status matters, and the queue stays as small as the fleet.
                if let i = s.queue[s.queueHead...].lastIndex(where: { $0.retain && $0.topic == message.topic }) {
                    s.queue.remove(at: i)
                }
            }
            s.queue.append(message)
            let pending = s.queue.count - s.queueHead
            if pending > configuration.queueLimit {
                // Drop the oldest droppable message (an event); statuses and replies stay.
                if let i = s.queue[s.queueHead...].firstIndex(where: { $0.droppable }) {
                    s.queue.remove(at: i)
                    droppedNow = 1
                }
            }
        }
        if droppedNow > 0 {
            let total = dropped.add(droppedNow, ordering: .relaxed).newValue
            if total == 1 || total % 100 == 0 {
                logger.warning(
                    "MQTT queue full (mqtt.queue_limit \(configuration.queueLimit)): dropped the oldest event; \(total) dropped so far. Statuses are resynced on reconnect."
                )
            }
        }
        wake()
    }

    func subscribe(_ subs: [MQTTSubscription]) {
        shared.withLock { s in
            s.subscriptions.append(contentsOf: subs)
            s.newSubscriptions.append(contentsOf: subs)
        }
        wake()
    }

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

    private func wake() {
        var b: UInt8 = 1
        _ = write(wakeWrite, &b, 1)
    }

    // MARK: loop thread

    private var isStopping: Bool { shared.withLock { $0.stopping } }

    private func threadMain() {
        _ = Self.libInit
        setUp()
        var delay = configuration.reconnectDelayMin
        var everConnected = false
        var failures = 0
        while !isStopping {
            let rc: Int32
            refusal = nil
            libraryError = nil
            captureLibraryErrors(true)
            if everConnected {
                rc = mosquitto_reconnect(mosq)
            } else {
                rc = mosquitto_connect_bind_v5(mosq, configuration.host, configuration.port, configuration.keepAlive, nil, nil)
            }
            if rc == MOSQ_ERR_SUCCESS.rawValue {
                everConnected = true
                connectionLost = false
                sessionUp = false
                serve()
                if isStopping && !connectionLost { break }  // shutDown() says offline on this session
                let wasUp = sessionUp
                sessionUp = false
                if connected.exchange(false, ordering: .relaxed) || wasUp {
                    logger.warning("lost the MQTT broker at \(configuration.address); reconnecting")
                    connection.yield(.disconnected(reason: "connection lost"))
                    delay = configuration.reconnectDelayMin
                    failures = 0
                } else if !isStopping {
                    // No session: refused, or closed before its CONNACK (with TLS 1.3 a broker
                    // that wants a client certificate drops the connection only after the
                    // handshake); this used to be retried without a word in the log.
                    failures += 1
                    let tlsFailed = libraryError?.contains("SSL") == true
                    let what = tlsFailed ? "the TLS handshake failed" : "the connection ended before the broker accepted it"
                    reportFailure(refusal ?? connectFailure(what), failures, delay)
                }
                if isStopping { break }
            } else {
                failures += 1
                let what = rc == MOSQ_ERR_TLS.rawValue ? "the TLS handshake failed" : Self.describe(rc)
                reportFailure(connectFailure(what), failures, delay)
            }
            pause(for: delay)
            delay = min(delay * 2, configuration.reconnectDelayMax)
        }
        shutDown()
    }

    /// Keeps libmosquitto's error lines (OpenSSL's reasons) while connecting. Off once a session
    /// is up: with a log callback set, libmosquitto formats a line for every packet.
    private func captureLibraryErrors(_ on: Bool) {
        if on {
            mosquitto_log_callback_set(mosq) { _, obj, level, text in
                guard level == MOSQ_LOG_ERR, let obj, let text else { return }
                Unmanaged<MosquittoLoop>.fromOpaque(obj).takeUnretainedValue().libraryError = String(cString: text)
            }
        } else {
            mosquitto_log_callback_set(mosq, nil)
        }
    }

    /// "cannot connect …: what (OpenSSL's reason); what to check".
    private func connectFailure(_ what: String) -> String {
        var m = "cannot connect to the MQTT broker at \(configuration.address): \(what)"
        if let e = libraryError { m += " (\(e))" }
        if configuration.tls {
            m += "; check that mqtt.ca_file signed the broker's certificate and that it is for the host name '\(configuration.host)'"
            m += configuration.certFile == nil ? ", and whether the broker requires a client certificate (mqtt.cert_file, key_file)" : ", and that the broker trusts mqtt.cert_file"
        }
        return m
    }

    /// The first failure and every 30th are warnings; the others are debug lines.
    private func reportFailure(_ message: String, _ failures: Int, _ delay: Duration) {
        if failures == 1 || failures % 30 == 0 {
            logger.warning("\(message); retrying every \(delay) or less")
        } else {
            logger.debug("\(message)")
        }
    }

    private func setUp() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        mosq = mosquitto_new(configuration.clientID, true, me)
        precondition(mosq != nil, "libmosquitto could not allocate a client")
        let version = configuration.protocolVersion == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
        mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, Int32(version))
        // No Nagle: a reply or status written right after a PUBACK must not wait for the broker's delayed ACK (~40 ms).
        mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1)
        if let will = configuration.will {
            _ = will.payload.withUnsafeBytes { p in
                mosquitto_will_set_v5(mosq, will.topic, Int32(p.count), p.baseAddress, will.qos, will.retain, nil)
            }
        }
        if let user = configuration.username {
            mosquitto_username_pw_set(mosq, user, configuration.password)
        }
        if configuration.tls {
            let capath: String? = configuration.caFile == nil ? "/etc/ssl/certs" : nil
            let rc = mosquitto_tls_set(
                mosq, configuration.caFile, capath, configuration.certFile, configuration.keyFile, nil)
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                logger.error("MQTT TLS settings refused: \(Self.describe(rc)) (check mqtt.ca_file, cert_file, key_file)")
            }
        }
        mosquitto_connect_v5_callback_set(mosq) { _, obj, rc, _, _ in
            Unmanaged<MosquittoLoop>.fromOpaque(obj!).takeUnretainedValue().onConnect(rc)
        }
        mosquitto_disconnect_v5_callback_set(mosq) { _, obj, rc, _ in
            Unmanaged<MosquittoLoop>.fromOpaque(obj!).takeUnretainedValue().onDisconnect(rc)
        }
        mosquitto_publish_v5_callback_set(mosq) { _, obj, mid, _, _ in
            Unmanaged<MosquittoLoop>.fromOpaque(obj!).takeUnretainedValue().onPublish(mid)
        }
        mosquitto_message_v5_callback_set(mosq) { _, obj, msg, props in
            guard let msg else { return }
            Unmanaged<MosquittoLoop>.fromOpaque(obj!).takeUnretainedValue().onMessage(msg.pointee, props)
        }
    }

    /// Runs one connection until it is lost or the client stops.
    private func serve() {
        while !connectionLost {
            if isStopping { return }
            if sessionUp {
                renewSubscriptionsIfAsked()
                drainQueue()
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

    private func drainWakePipe() {
        var buf = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buf, 64) > 0 {}
    }

    private func pause(for delay: Duration) {
        var fd = pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)
        _ = poll(&fd, 1, Int32(clamping: delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000))
        drainWakePipe()
    }

    private func renewSubscriptionsIfAsked() {
        let subs = shared.withLock { s -> [MQTTSubscription] in
            defer { s.newSubscriptions.removeAll() }
            return s.newSubscriptions
        }
        for sub in subs { subscribe(sub) }
    }

    private func subscribe(_ sub: MQTTSubscription) {
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

    private func drainQueue() {
        while true {
            let batch = shared.withLock { s -> ArraySlice<MQTTOutgoingMessage> in
                let out = s.queue[s.queueHead...]
                s.queue.removeAll(keepingCapacity: s.queue.count < 4096)
                s.queueHead = 0
                return out
            }
            if batch.isEmpty { return }
            var index = batch.startIndex
            while index < batch.endIndex {
                if !publishNow(batch[index]) {
                    // Not connected after all: put the rest back in front, in order.
                    let rest = batch[index...]
                    shared.withLock { s in s.queue.insert(contentsOf: rest, at: s.queueHead) }
                    return
                }
                index += 1
            }
        }
    }

    /// Hands one message to libmosquitto. False when the connection is gone (keep it queued).
    @discardableResult
    private func publishNow(_ m: MQTTOutgoingMessage, mid: UnsafeMutablePointer<Int32>? = nil) -> Bool {
        var props: OpaquePointer? = nil
        if let data = m.correlationData, configuration.protocolVersion == .v5 {
            _ = data.withUnsafeBytes { p in
                mosquitto_property_add_binary(&props, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), p.baseAddress, UInt16(clamping: p.count))
            }
        }
        if let topic = m.responseTopic, configuration.protocolVersion == .v5 {
            mosquitto_property_add_string(&props, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), topic)
        }
        defer { mosquitto_property_free_all(&props) }
        let rc = m.payload.withUnsafeBytes { p in
            mosquitto_publish_v5(mosq, mid, m.topic, Int32(p.count), p.baseAddress, m.qos, m.retain, props)
        }
        if rc == MOSQ_ERR_SUCCESS.rawValue { return true }
        if rc == MOSQ_ERR_NO_CONN.rawValue || rc == MOSQ_ERR_CONN_LOST.rawValue { return false }
        logger.error("cannot publish to \(m.topic): \(Self.describe(rc)); message dropped")
        return true
    }

    private func shutDown() {
        if sessionUp, let will = configuration.will {
            // Say `offline` ourselves before a clean disconnect (a clean DISCONNECT suppresses the will).
            drainQueue()
            var mid: Int32 = 0
            if publishNow(will, mid: &mid) {
                pendingOfflineMid = mid
                let deadline = ContinuousClock.now + .seconds(3)
                while !offlineAcked, !connectionLost, ContinuousClock.now < deadline {
                    let sock = mosquitto_socket(mosq)
                    if sock < 0 { break }
                    var fd = pollfd(fd: sock, events: Int16(POLLIN) | (mosquitto_want_write(mosq) ? Int16(POLLOUT) : 0), revents: 0)
                    _ = poll(&fd, 1, 100)
                    if fd.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 { _ = mosquitto_loop_read(mosq, 1) }
                    if mosquitto_want_write(mosq) { _ = mosquitto_loop_write(mosq, 1) }
                }
            }
        }
        if sessionUp {
            mosquitto_disconnect_v5(mosq, 0, nil)
            for _ in 0..<10 where mosquitto_want_write(mosq) { _ = mosquitto_loop_write(mosq, 1) }
        }
        connected.store(false, ordering: .relaxed)
        mosquitto_destroy(mosq)
        mosq = nil
        incoming.finish()
        connection.finish()
        let waiters = shared.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.finished = true
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    // MARK: callbacks (loop thread)

    private func onConnect(_ rc: Int32) {
        guard rc == 0 else {
            refusal =
                "the MQTT broker at \(configuration.address) refused the connection: \(String(cString: mosquitto_reason_string(rc))) (check mqtt.username and the password)"
            connectionLost = true
            return
        }
        sessionUp = true
        captureLibraryErrors(false)
        connected.store(true, ordering: .relaxed)
        logger.info("connected to the MQTT broker at \(configuration.address)")
        let subs = shared.withLock { s -> [MQTTSubscription] in
            s.newSubscriptions.removeAll()
            return s.subscriptions
        }
        for sub in subs { subscribe(sub) }
        if let birth = configuration.birth { publishNow(birth) }
        connection.yield(.connected)
    }

    private func onDisconnect(_ rc: Int32) {
        connectionLost = true
    }

    private func onPublish(_ mid: Int32) {
        if mid == pendingOfflineMid { offlineAcked = true }
    }

    private func onMessage(_ msg: mosquitto_message, _ props: OpaquePointer?) {
        let topic = String(cString: msg.topic)
        let payload: [UInt8]
        if let p = msg.payload, msg.payloadlen > 0 {
            payload = Array(UnsafeRawBufferPointer(start: p, count: Int(msg.payloadlen)))
        } else {
            payload = []
        }
        var responseTopic: String? = nil
        var correlation: [UInt8]? = nil
        if let props {
            var value: UnsafeMutablePointer<CChar>? = nil
            if mosquitto_property_read_string(props, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), &value, false) != nil,
                let value
            {
                responseTopic = String(cString: value)
                free(value)
            }
            var raw: UnsafeMutableRawPointer? = nil
            var len: UInt16 = 0
            if mosquitto_property_read_binary(props, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), &raw, &len, false) != nil {
                correlation = raw.map { Array(UnsafeRawBufferPointer(start: $0, count: Int(len))) } ?? []
                free(raw)
            }
        }
        incoming.yield(
            MQTTIncomingMessage(
                topic: topic, payload: payload, retain: msg.retain, qos: msg.qos, responseTopic: responseTopic,
                correlationData: correlation))
    }

    private static func describe(_ rc: Int32) -> String {
        if rc == MOSQ_ERR_ERRNO.rawValue { return String(cString: strerror(errno)) }
        return String(cString: mosquitto_strerror(rc))
    }
}
