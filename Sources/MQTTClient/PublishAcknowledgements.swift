/// QoS 1 messages waiting for their PUBACK, and which refusals were already said.
///
/// An MQTT 5 broker answers a message it will not take (its ACL forbids the topic: reason code
/// 0x87) with a PUBACK whose reason code is 0x80 or more, and drops it. A reply or a status
/// lost that way must not go unnoticed, nor fill the log: each topic's first refusal is
/// reported, later ones on that topic are not.
struct PublishAcknowledgements: Sendable {
    /// Topic by message id. Ids are 16 bits and reused, so this holds at most 65,535 entries
    /// even if some PUBACK never comes (a connection lost).
    private var inFlight: [Int32: String] = [:]
    private var reported: Set<String> = []
    /// Topics remembered as reported, at most; past it a refusal is reported once more as
    /// "and more topics" and then no longer (Response Topics are chosen by whoever sends a
    /// command, so their number is not bounded by the fleet).
    static let reportedLimit = 1000
    private var saidTooMany = false

    /// What a refused PUBACK means for the log.
    enum Refusal: Sendable, Hashable {
        /// The first refusal on this topic.
        case first(topic: String, reasonCode: Int32)
        /// A refusal on a new topic after ``PublishAcknowledgements/reportedLimit`` others: say once that more go unlisted.
        case tooManyTopics(topic: String, reasonCode: Int32)
    }

    /// A QoS 1 message on `topic` went out as `mid`.
    mutating func sent(mid: Int32, topic: String) { inFlight[mid] = topic }

    /// The PUBACK for `mid` came with `reasonCode`. Returns what to log, or nil (accepted, an
    /// id this client did not track, or a topic whose refusal was said already).
    mutating func acknowledged(mid: Int32, reasonCode: Int32) -> Refusal? {
        guard let topic = inFlight.removeValue(forKey: mid), reasonCode >= 0x80 else { return nil }
        if reported.contains(topic) { return nil }
        if reported.count < Self.reportedLimit {
            reported.insert(topic)
            return .first(topic: topic, reasonCode: reasonCode)
        }
        if saidTooMany { return nil }
        saidTooMany = true
        return .tooManyTopics(topic: topic, reasonCode: reasonCode)
    }
}
