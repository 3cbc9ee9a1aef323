import CMosquitto
import Logging

/// Publishing: callers put messages in the ``Outbox`` from any thread; the loop thread hands
/// them to libmosquitto in order while a session is up, and says what the outbox had to drop.
extension MosquittoLoop {
    /// Queues `message` (any thread) and wakes the loop.
    func enqueue(_ message: MQTTOutgoingMessage) {
        let droppedOne = shared.withLock { $0.outbox.append(message) }
        if droppedOne {
            let total = dropped.add(1, ordering: .relaxed).newValue
            if total == 1 || total % 100 == 0 {
                logger.warning(
                    "MQTT queue full (mqtt.queue_limit \(configuration.queueLimit)): dropped the oldest event; \(total) dropped so far (this line comes again at every 100th; the total is logged when the broker is back). Statuses are resynced on reconnect."
                )
            }
        }
        wake()
    }

    /// Loop thread, at each CONNACK: how many events were dropped since the previous connection,
    /// so that the count in the log is complete and not only the first and every 100th.
    func reportDropsSinceLastConnect() {
        let total = dropped.load(ordering: .relaxed)
        let since = total - droppedAtLastConnect
        droppedAtLastConnect = total
        guard since > 0 else { return }
        logger.warning(
            "\(since) event\(since == 1 ? " was" : "s were") dropped while the MQTT broker was away (mqtt.queue_limit \(configuration.queueLimit)); \(total) since start. Every status is published again now."
        )
    }

    /// At most this many QoS 1 messages are with libmosquitto, waiting for their PUBACK.
    static let handOverWindow = 100
    /// A PUBACK that has not come after this long is taken as lost (libmosquitto dropped the
    /// message), so that the window cannot close for ever.
    static let handOverExpiry: Duration = .seconds(60)

    /// Loop thread: hands what waits to libmosquitto, in order, while the session lasts and
    /// fewer than ``handOverWindow`` messages wait for their PUBACK.
    func drainOutbox() {
        while true {
            var room = Self.handOverWindow - handedOver.count
            if room <= 0 {
                let now = ContinuousClock.now
                let before = handedOver.count
                handedOver = handedOver.filter { now - $0.value < Self.handOverExpiry }
                if handedOver.count < before {
                    logger.debug("MQTT: \(before - handedOver.count) PUBACKs never came; not waiting for them any longer")
                }
                room = Self.handOverWindow - handedOver.count
                if room <= 0 { return }
            }
            let batch = shared.withLock { $0.outbox.take(upTo: room) }
            if batch.isEmpty { return }
            for index in batch.indices {
                if publishNow(batch[index]) { continue }
                // Not connected after all: put the rest back in front, in order.
                let rest = batch[index...]
                shared.withLock { $0.outbox.putBack(rest) }
                return
            }
        }
    }

    /// Hands one message to libmosquitto. False when the connection is gone (keep it queued).
    @discardableResult
    func publishNow(_ m: MQTTOutgoingMessage, mid: UnsafeMutablePointer<Int32>? = nil) -> Bool {
        var props: OpaquePointer? = nil
        if let data = m.correlationData, configuration.protocolVersion == .v5 {
            _ = data.withUnsafeBytes { p in
                mosquitto_property_add_binary(
                    &props, Int32(MQTT_PROP_CORRELATION_DATA.rawValue), p.baseAddress, UInt16(clamping: p.count))
            }
        }
        if let topic = m.responseTopic, configuration.protocolVersion == .v5 {
            mosquitto_property_add_string(&props, Int32(MQTT_PROP_RESPONSE_TOPIC.rawValue), topic)
        }
        defer { mosquitto_property_free_all(&props) }
        var sent: Int32 = 0
        let rc = m.payload.withUnsafeBytes { p in
            mosquitto_publish_v5(mosq, &sent, m.topic, Int32(p.count), p.baseAddress, m.qos, m.retain, props)
        }
        mid?.pointee = sent
        if rc == MOSQ_ERR_SUCCESS.rawValue {
            if m.qos > 0 { handedOver[sent] = .now }
            // Only MQTT 5 PUBACKs carry a reason code: on 3.1.1 a refusal looks like success.
            if m.qos > 0, configuration.protocolVersion == .v5 { acknowledgements.sent(mid: sent, topic: m.topic) }
            return true
        }
        if rc == MOSQ_ERR_NO_CONN.rawValue || rc == MOSQ_ERR_CONN_LOST.rawValue { return false }
        logger.error("cannot publish to \(m.topic): \(Self.describe(rc)); message dropped")
        return true
    }
}
