/// The messages waiting for the broker: ordered, bounded, and never losing a status or a reply.
///
/// The rules only, without I/O:
/// - Messages go out in the order they were published.
/// - A retained message replaces one still waiting on the same topic: only the latest status
///   matters, and the outbox stays as small as the fleet while the broker is away.
/// - Beyond `limit` waiting messages the oldest droppable one (an event) goes; statuses and
///   replies are never dropped.
struct Outbox: Sendable {
    /// At most this many messages wait (`mqtt.queue_limit`), unless none of them may be dropped.
    let limit: Int
    private var waiting: [MQTTOutgoingMessage] = []

    init(limit: Int) { self.limit = limit }

    /// How many messages wait.
    var count: Int { waiting.count }

    /// Adds `message` behind those waiting. Returns whether an older event was dropped for it.
    mutating func append(_ message: MQTTOutgoingMessage) -> Bool {
        if message.retain, let i = waiting.lastIndex(where: { $0.retain && $0.topic == message.topic }) {
            waiting.remove(at: i)
        }
        waiting.append(message)
        guard waiting.count > limit, let i = waiting.firstIndex(where: { $0.droppable }) else { return false }
        waiting.remove(at: i)
        return true
    }

    /// The oldest `count` messages waiting, in order; they leave the outbox.
    mutating func take(upTo count: Int) -> [MQTTOutgoingMessage] {
        if count >= waiting.count { return takeAll() }
        defer { waiting.removeFirst(count) }
        return Array(waiting.prefix(count))
    }

    /// Everything waiting, oldest first; the outbox is empty afterwards.
    mutating func takeAll() -> [MQTTOutgoingMessage] {
        defer { waiting.removeAll(keepingCapacity: waiting.count < 4096) }
        return waiting
    }

    /// Puts back, in front and in order, messages taken but not sent (the connection went away).
    mutating func putBack(_ messages: some Collection<MQTTOutgoingMessage>) {
        waiting.insert(contentsOf: messages, at: 0)
    }
}
