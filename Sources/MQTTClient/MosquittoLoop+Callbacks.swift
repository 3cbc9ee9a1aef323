import CMosquitto
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// What libmosquitto calls back, on the loop thread (from inside `mosquitto_loop_read` and
/// friends): CONNACK, DISCONNECT, PUBACK with its reason code, and incoming messages.
extension MosquittoLoop {
    func installCallbacks() {
        mosquitto_connect_v5_callback_set(mosq) { _, obj, rc, _, _ in
            Unmanaged<MosquittoLoop>.fromOpaque(obj!).takeUnretainedValue().onConnect(rc)
        }
        mosquitto_disconnect_v5_callback_set(mosq) { _, obj, rc, _ in
            Unmanaged<MosquittoLoop>.fromOpaque(obj!).takeUnretainedValue().onDisconnect(rc)
        }
        mosquitto_publish_v5_callback_set(mosq) { _, obj, mid, reasonCode, _ in
            Unmanaged<MosquittoLoop>.fromOpaque(obj!).takeUnretainedValue().onPublish(mid, reasonCode)
        }
        mosquitto_message_v5_callback_set(mosq) { _, obj, msg, props in
            guard let msg else { return }
            Unmanaged<MosquittoLoop>.fromOpaque(obj!).takeUnretainedValue().onMessage(msg.pointee, props)
        }
    }

    private func onConnect(_ rc: Int32) {
        guard rc == 0 else {
            refusal =
                "the MQTT broker at \(configuration.address) refused the connection: \(String(cString: mosquitto_reason_string(rc))) (check mqtt.username and the password)"
            connectionLost = true
            return
        }
        sessionUp = true
        sessionStarted = .now
        disconnectReason = 0
        captureLibraryErrors(false)
        connected.store(true, ordering: .relaxed)
        logger.info("connected to the MQTT broker at \(configuration.address)")
        reportDropsSinceLastConnect()
        let subs = shared.withLock { s -> [MQTTSubscription] in
            s.newSubscriptions.removeAll()
            return s.subscriptions
        }
        for sub in subs { send(sub) }
        if let birth = configuration.birth { publishNow(birth) }
        connection.yield(.connected)
    }

    /// `rc`: the reason code of the broker's DISCONNECT (MQTT 5), or libmosquitto's error.
    private func onDisconnect(_ rc: Int32) {
        connectionLost = true
        logger.debug("MQTT: disconnected, code \(rc)")
        if rc != 0, disconnectReason == 0 || rc >= 0x80 { disconnectReason = rc }
    }

    private func onPublish(_ mid: Int32, _ reasonCode: Int32) {
        handedOver.removeValue(forKey: mid)
        if mid == pendingOfflineMid { offlineAcked = true }
        switch acknowledgements.acknowledged(mid: mid, reasonCode: reasonCode) {
        case nil: break
        case .first(let topic, let code):
            logger.warning(
                "the MQTT broker refused a message on \(topic): \(Self.reason(code)); \(Self.refusalHint(code, user: configuration.username)) Further refusals on this topic are not logged."
            )
        case .tooManyTopics(let topic, let code):
            logger.warning(
                "the MQTT broker refused a message on \(topic): \(Self.reason(code)); \(Self.refusalHint(code, user: configuration.username)) Refusals on \(PublishAcknowledgements.reportedLimit) topics were logged already: from now on refusals on new topics are not logged."
            )
        }
    }

    /// "Not authorized (reason code 0x87)".
    static func reason(_ code: Int32) -> String {
        let hex = String(code, radix: 16, uppercase: true)
        return "\(String(cString: mosquitto_reason_string(code))) (reason code 0x\(hex.count < 2 ? "0" + hex : hex))"
    }

    /// What to check for a refused publish: the ACL for 0x87, else that the message was dropped.
    static func refusalHint(_ code: Int32, user: String?) -> String {
        guard code == Int32(MQTT_RC_NOT_AUTHORIZED.rawValue) else { return "the message was dropped." }
        let who = user.map { "user '\($0)'" } ?? "anonymous clients"
        return "the message was dropped; check the broker's ACL for \(who) (write access to that topic)."
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
}
