import Bridge
import IdlewatcherCore
import MQTTClient
import Synchronization

/// Wakes a container's dependencies before the container itself, each ready before the next:
/// local ones through the command service, remote ones (another bridge on the broker) with a
/// `wake` command over MQTT with a Response Topic, waiting for the reply.
final class DependencyWaker: Sendable {
    let book: IdleBook
    let context: ExtensionContext
    /// Remote wakes waiting for their reply, by correlation data.
    private let pending = Mutex<[String: AsyncStream<MQTTIncomingMessage>.Continuation]>([:])
    private let counter = Atomic<UInt64>(0)

    init(book: IdleBook, context: ExtensionContext) {
        self.book = book
        self.context = context
    }

    func wakeDependencies(of ref: ContainerRef, for command: Command) async throws {
        let deps = try await book.dependencies(of: ref)
        guard !deps.isEmpty else { return }
        let limit = await book.settings(ref)?.wakeTimeout ?? .seconds(60)
        // The containers being woken on the way here (from the request id of a dependency's
        // wake, whichever bridge sent it), then this one: a dependency among them is a cycle
        // across bridges, which no single bridge's check-config can see.
        let chain = WakeChain(requestID: command.requestID).appending(ref)
        for dep in deps {
            if let cycle = chain.cycle(with: dep) {
                throw BridgeError(
                    .invalidState,
                    "dependency cycle across bridges \(cycle): fix depends_on on one of the bridges (idle.containers or idlewatcher.depends_on)"
                )
            }
            let started = ContinuousClock.now
            let reply: (ok: Bool, code: ErrorCode?, message: String)
            let requestID = chain.requestID(nonce: "\(context.bridgeID)-\(counter.add(1, ordering: .relaxed).newValue)")
            if context.owns(dep.runtime, dep.id) {
                let r = await context.submit(Command(action: .wake, requestID: requestID), to: dep.runtime, dep.id)
                reply = (r.ok, r.error?.code, r.error?.message ?? "")
            } else {
                reply = try await wakeRemote(dep, for: ref, requestID: requestID, limit: limit)
            }
            guard reply.ok else {
                throw BridgeError(
                    reply.code ?? .runtimeError, "dependency \(dep) of \(ref) did not wake: \(reply.message)")
            }
            context.logger.info(
                "woke \(dep), a dependency of \(ref), in \((ContinuousClock.now - started).wholeMilliseconds) ms",
                metadata: ["runtime": "\(ref.runtime)", "container": "\(ref.id)"])
        }
    }

    /// `wake` on another bridge: the dependency's command topic, its reply topic as Response
    /// Topic (the only one inside the base topic a bridge accepts) with Correlation Data, and a
    /// request id (which MQTT 3.1.1 brokers keep when they drop the properties).
    private func wakeRemote(
        _ dep: ContainerRef, for ref: ContainerRef, requestID: String, limit: Duration
    ) async throws -> (ok: Bool, code: ErrorCode?, message: String) {
        let correlation = requestID
        let (replies, continuation) = AsyncStream<MQTTIncomingMessage>.makeStream()
        pending.withLock { $0[correlation] = continuation }
        defer { pending.withLock { _ = $0.removeValue(forKey: correlation) } }
        var w = JSONWriter()
        w.add("action", "wake")
        w.add("request_id", correlation)
        context.publish(
            MQTTOutgoingMessage(
                topic: context.topics.command(dep.runtime, dep.id), payload: Array(w.finish().utf8),
                responseTopic: context.topics.reply(dep.runtime, dep.id), correlationData: Array(correlation.utf8),
                droppable: false))
        let answer = await withTaskGroup(of: MQTTIncomingMessage?.self) { group in
            group.addTask {
                for await m in replies { return m }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            continuation.finish()
            return first
        }
        guard let answer, let json = try? JSON.parse(answer.payload, maxDepth: 8) else {
            return (
                false, .timeout,
                "no bridge answered a wake of \(dep) within \(limit.wholeMilliseconds / 1000) s (is the bridge that serves it online?)"
            )
        }
        if json["ok"]?.bool == true { return (true, nil, "") }
        let code = json["error"]?["code"]?.string.flatMap(ErrorCode.init(rawValue:)) ?? .runtimeError
        return (false, code, json["error"]?["message"]?.string ?? "the other bridge said no")
    }

    /// A reply seen on a reply topic: a remote wake's, if its correlation (or request id) is ours.
    func sawReply(_ m: MQTTIncomingMessage) {
        var key = m.correlationData.map { String(decoding: $0, as: UTF8.self) }
        if key == nil || pending.withLock({ $0[key!] == nil }) {
            key = (try? JSON.parse(m.payload, maxDepth: 8))?["request_id"]?.string
        }
        guard let key, let c = pending.withLock({ $0[key] }) else { return }
        c.yield(m)
    }
}

/// The containers a chain of dependency wakes went through, carried in the request id of each
/// dependency's `wake` (`dep:<nonce>:docker/app,docker/db`): a `wake` command has no other key
/// to carry it, and the request id crosses MQTT 3.1.1 brokers and mosquitto bridges unchanged.
/// A chain that no longer fits the 128 characters of a request id is cut (its oldest links
/// first): a cycle through them is then found only by its timeout, as before.
struct WakeChain: Sendable, Hashable {
    var links: [String]

    init(links: [String] = []) { self.links = links }

    /// The chain of a dependency's wake (its request id starts with `dep:`), or an empty one.
    init(requestID: String?) {
        guard let r = requestID, r.hasPrefix("dep:") else {
            self.links = []
            return
        }
        let parts = r.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        self.links = parts.count == 3 ? parts[2].split(separator: ",").map(String.init) : []
    }

    func appending(_ ref: ContainerRef) -> WakeChain { WakeChain(links: links + [ref.description]) }

    /// `docker/app → docker/db → docker/app` if waking `dep` closes a cycle, else nil.
    func cycle(with dep: ContainerRef) -> String? {
        guard let i = links.firstIndex(of: dep.description) else { return nil }
        return (links[i...] + [dep.description]).joined(separator: " → ")
    }

    /// The request id for the next wake: `dep:<nonce>:<links>`, at most 128 characters.
    func requestID(nonce: String) -> String {
        var kept = links
        let nonce = String(nonce.map { $0 == ":" || $0 == "," ? "_" : $0 })
        func text() -> String { "dep:\(nonce):" + kept.joined(separator: ",") }
        while text().count > 128, !kept.isEmpty { kept.removeFirst() }
        return String(text().prefix(128))
    }
}
