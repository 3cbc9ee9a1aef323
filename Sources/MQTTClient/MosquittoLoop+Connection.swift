import CMosquitto
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Connecting, reconnecting on ``ReconnectBackoff``'s schedule, saying why an attempt failed,
/// and the clean shutdown. All on the loop thread.
extension MosquittoLoop {
    /// Creates the libmosquitto client with the configuration's protocol, will, login and TLS.
    func configureSession() {
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
        installCallbacks()
    }

    /// Connects, serves the session, and reconnects after each loss or failure, until stopped.
    func connectUntilStopped() {
        var backoff = ReconnectBackoff(initial: configuration.reconnectDelayMin, maximum: configuration.reconnectDelayMax)
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
                    failures = 0
                    let lasted = sessionStarted.map { ContinuousClock.now - $0 } ?? .zero
                    if disconnectReason == Int32(MQTT_RC_SESSION_TAKEN_OVER.rawValue) {
                        reportTakeover()
                        connection.yield(.disconnected(reason: "session taken over"))
                        pause(for: Self.takeoverWait)
                        continue
                    }
                    shortSessions = lasted < Self.shortSession ? shortSessions + 1 : 0
                    // A session that was up starts the schedule again, unless sessions keep
                    // ending as soon as they begin.
                    if shortSessions < 2 { backoff.reset() }
                    let wait = reportLoss(lasted: lasted, backoff)
                    connection.yield(.disconnected(reason: "connection lost"))
                    if let wait {
                        pause(for: wait)
                        continue
                    }
                } else if !isStopping {
                    // No session: refused, or closed before its CONNACK (with TLS 1.3 a broker
                    // that wants a client certificate drops the connection only after the
                    // handshake); this used to be retried without a word in the log.
                    failures += 1
                    shortSessions = 0
                    let tlsFailed = libraryError.map(Self.isTLSError) == true
                    let what = tlsFailed ? "the TLS handshake failed" : "the connection ended before the broker accepted it"
                    // Over TLS, a connection closed before its CONNACK is most often the end of
                    // the handshake (a client certificate the broker wants): the hints apply.
                    report(refusal ?? connectFailure(what, tls: configuration.tls), failures, backoff)
                }
                if isStopping { break }
            } else {
                failures += 1
                // A broker that is away (restarting, crash-looping) refuses the next attempt; a
                // session taken by another client does not: only the latter makes a streak.
                shortSessions = 0
                let tlsFailed = rc == MOSQ_ERR_TLS.rawValue || libraryError.map(Self.isTLSError) == true
                let what = rc == MOSQ_ERR_TLS.rawValue ? "the TLS handshake failed" : Self.describe(rc)
                report(connectFailure(what, tls: tlsFailed), failures, backoff)
            }
            pause(for: backoff.take())
        }
    }

    /// How long to wait after another client took this client id's session: fighting over it
    /// every 0.2 s would only make both clients resync again and again.
    static let takeoverWait: Duration = .seconds(30)
    /// A session that ends sooner than this after its CONNACK, when the attempt before it
    /// succeeded at once, is suspect: that is how another client with the same client id looks
    /// when the broker does not say so (mosquitto 2.0 closes the socket before its DISCONNECT
    /// 0x8E leaves). Observed: 0 to 30 ms. A broker that restarts refuses the attempt after
    /// the loss, which ends the streak.
    static let shortSession: Duration = .milliseconds(500)

    /// Error lines for a session the broker closed because another client connected with the
    /// same client id (MQTT 5 reason code 0x8E): the first one and every 10th.
    func reportTakeover() {
        takeovers += 1
        guard takeovers == 1 || takeovers % 10 == 0 else { return }
        let times = takeovers == 1 ? "" : " (\(takeovers) times so far)"
        logger.error(
            "the MQTT broker at \(configuration.address) closed this session because another client connected with the same client id '\(configuration.clientID)' (Session taken over, reason code 0x8E)\(times): is a second bridge running with the same bridge.id? Each bridge needs a bridge.id (or mqtt.client_id) of its own. Trying again in \(ReconnectBackoff.seconds(Self.takeoverWait))"
        )
    }

    /// "lost the MQTT broker at …; reconnecting in …". From the second session in a row that
    /// ended within ``shortSession`` the line says so and names the client id; from the third
    /// the next attempt waits ``takeoverWait`` (returned; nil: the usual schedule). Of a run of
    /// such losses only the second, the third and every 30th are warnings.
    func reportLoss(lasted: Duration, _ backoff: ReconnectBackoff) -> Duration? {
        guard shortSessions >= 2 else {
            logger.warning("lost the MQTT broker at \(configuration.address); reconnecting \(backoff.plan)")
            return nil
        }
        let slow = shortSessions >= 3
        let line =
            "lost the MQTT broker at \(configuration.address) \(ReconnectBackoff.seconds(lasted)) after it accepted the connection (\(shortSessions) sessions in a row ended within \(ReconnectBackoff.seconds(Self.shortSession)))"
            + "; reconnecting \(slow ? "in " + ReconnectBackoff.seconds(Self.takeoverWait) : backoff.plan)"
            + ". Another client may be using the client id '\(configuration.clientID)': a second bridge with the same bridge.id? Each bridge needs a bridge.id (or mqtt.client_id) of its own"
        if shortSessions <= 3 || shortSessions % 30 == 0 {
            logger.warning("\(line)")
        } else {
            logger.debug("\(line)")
        }
        return slow ? Self.takeoverWait : nil
    }

    /// Whether a libmosquitto error line is OpenSSL's (a TLS failure, not a network one).
    static func isTLSError(_ line: String) -> Bool { line.contains("SSL") || line.contains("TLS") }

    /// Keeps libmosquitto's error lines (OpenSSL's reasons) while connecting. Off once a session
    /// is up: with a log callback set, libmosquitto formats a line for every packet.
    func captureLibraryErrors(_ on: Bool) {
        if on {
            mosquitto_log_callback_set(mosq) { _, obj, level, text in
                guard level == MOSQ_LOG_ERR, let obj, let text else { return }
                Unmanaged<MosquittoLoop>.fromOpaque(obj).takeUnretainedValue().libraryError = String(cString: text)
            }
        } else {
            mosquitto_log_callback_set(mosq, nil)
        }
    }

    /// "cannot connect …: what (libmosquitto's line); what to check". The certificate hints are
    /// for TLS failures only: a refused or unreachable port is not a certificate problem.
    func connectFailure(_ what: String, tls: Bool) -> String {
        var m = "cannot connect to the MQTT broker at \(configuration.address): \(what)"
        if let e = libraryError { m += " (\(e))" }
        if tls {
            m +=
                "; check that mqtt.ca_file signed the broker's certificate and that it is for the host name '\(configuration.host)'"
            m +=
                configuration.certFile == nil
                ? ", and whether the broker requires a client certificate (mqtt.cert_file, key_file)"
                : ", and that the broker trusts mqtt.cert_file"
        }
        return m
    }

    /// The first failure and every 30th are warnings, with when the next attempt comes; the
    /// others are debug lines.
    func report(_ message: String, _ failures: Int, _ backoff: ReconnectBackoff) {
        if failures == 1 || failures % 30 == 0 {
            logger.warning("\(message); retrying \(backoff.plan)")
        } else {
            logger.debug("\(message)")
        }
    }

    /// Says `offline` (when a session is up), disconnects cleanly and ends the streams.
    func shutDown() {
        if sessionUp, let will = configuration.will {
            // Say `offline` ourselves before a clean disconnect (a clean DISCONNECT suppresses the will).
            drainOutbox()
            var mid: Int32 = 0
            if publishNow(will, mid: &mid) {
                pendingOfflineMid = mid
                let deadline = ContinuousClock.now + .seconds(3)
                while !offlineAcked, !connectionLost, ContinuousClock.now < deadline {
                    let sock = mosquitto_socket(mosq)
                    if sock < 0 { break }
                    var fd = pollfd(
                        fd: sock, events: Int16(POLLIN) | (mosquitto_want_write(mosq) ? Int16(POLLOUT) : 0), revents: 0)
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
}
