import IdlewatcherCore
import Logging
import MQTTClient

/// Routes what arrives from the broker: commands to the command service (and their replies
/// back to the broker), the bridge's own retained statuses to the registry, and everything an
/// extension subscribed to into that extension's own stream.
struct MQTTIntake: Sendable {
    let topics: Topics
    let registry: Registry
    let commands: CommandService
    let publish: @Sendable (MQTTOutgoingMessage) -> Void
    let bridgeID: String
    let logger: Logger
    /// MQTT 3.1.1 cannot tell a live empty message from the clearing of a retained one.
    let protocolVersion: MQTTProtocolVersion
    /// Each extension's filters and the stream its messages go to.
    let routes: [(filters: [String], inbox: AsyncStream<MQTTIncomingMessage>.Continuation)]

    /// Reads messages until the stream ends (or the task is cancelled).
    func serve(_ messages: AsyncStream<MQTTIncomingMessage>) async {
        for await message in messages {
            // A stream that never runs dry (a broker that keeps redelivering) must not keep a
            // cancelled intake going: an AsyncStream hands out what it buffered even then.
            if Task.isCancelled { return }
            if message.topic == topics.bridgeIndex {
                // Only the retained one (left by an earlier run); the echo of our own is no news.
                if message.retain { await registry.sawIndex(message.payload) }
                continue
            }
            if let (kind, id, leaf) = topics.parse(message.topic) {
                switch leaf {
                case "status":
                    await registry.sawRetainedStatus(kind, id: id, payload: message.payload)
                    continue
                case "command":
                    await command(message, kind: kind, id: id)
                    continue
                default: break
                }
            }
            for route in routes where route.filters.contains(where: { Topics.matches(filter: $0, topic: message.topic) }) {
                route.inbox.yield(message)
            }
        }
        for route in routes { route.inbox.finish() }
    }

    /// Parses a command and submits it; its reply goes to the Response Topic or the reply topic.
    private func command(_ message: MQTTIncomingMessage, kind: RuntimeKind, id: String) async {
        if message.payload.isEmpty, message.retain || protocolVersion == .v311 {
            // An empty retained payload clears a retained command (as the warning below advises);
            // over MQTT 3.1.1 the broker drops the retain flag, so an empty payload is taken as that.
            logger.debug("a retained command on \(message.topic) was cleared")
            return
        }
        if message.retain {
            logger.warning(
                "ignored a retained command on \(message.topic): commands must not be retained (clear it with an empty retained message)",
                metadata: ["runtime": "\(kind)", "container": "\(id)"])
            return
        }
        guard commands.owns(kind, id), let runtime = commands.description(of: kind) else {
            logger.debug("ignored a command for \(kind)/\(id): not in this bridge's namespace")
            return
        }
        var topic = topics.reply(kind, id)
        if let rt = message.responseTopic {
            if topics.acceptsResponseTopic(rt, for: kind, id) {
                topic = rt
            } else {
                logger.warning(
                    "the Response Topic '\(rt.prefix(256))' of a command for \(kind)/\(id) is not accepted (inside \(topics.base)/ only the command's own reply topic is); replying on \(topic)",
                    metadata: ["runtime": "\(kind)", "container": "\(id)"])
            }
        }
        let correlation = message.correlationData
        let replyTopic = topic
        let bridgeID = bridgeID
        let publish = publish
        let deliver: @Sendable (Reply) -> Void = { reply in
            publish(
                MQTTOutgoingMessage(
                    topic: replyTopic, payload: Payloads.reply(reply, bridge: bridgeID), correlationData: correlation,
                    droppable: false))
        }
        switch Command.parse(message.payload, runtime: runtime) {
        case .failure(let rejection): await commands.reject(rejection, to: kind, id, onReply: deliver)
        case .success(let command): await commands.submit(command, to: kind, id, onReply: deliver)
        }
    }
}
