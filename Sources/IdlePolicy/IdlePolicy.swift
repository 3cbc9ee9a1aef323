import Bridge
import IdlewatcherCore
import Logging
import MQTTClient
import Synchronization

/// The idlewatcher: puts idle-managed containers to sleep when nothing has kept them awake for
/// their idle timeout, and wakes their dependencies first when they are woken.
///
/// A ``BridgeExtension``: it acts only through the command service (same queue, allow-list,
/// protected containers and events as a command over MQTT). Activity comes from
/// `<base>/<runtime>/<id>/activity` (touches and leases), from wake-like commands, from a
/// container becoming running by any means, and optionally from network traffic. Each
/// idle-managed container's state is retained on `<base>/<runtime>/<id>/idle`, and a restarted
/// bridge takes it back.
public final class IdlePolicy: BridgeExtension {
    /// `idle`, for log lines.
    public let name = "idle"
    /// The `idle:` section it applies.
    public let configuration: IdleConfiguration
    let topics: Topics
    /// How often timers are looked at.
    static let tickInterval = Duration.milliseconds(200)
    /// How often timers are looked at while no container is idle-managed and nothing waits to
    /// be published (a change that makes one idle-managed is seen within this).
    static let quietInterval = Duration.seconds(2)

    /// The policy for `configuration`; nothing happens until the bridge runs it.
    public init(configuration: IdleConfiguration, topics: Topics) {
        self.configuration = configuration
        self.topics = topics
    }

    /// How long after the first connection to the broker the retained idle states are taken
    /// to have all arrived (a broker sends them right after the subscription): no container is
    /// put to sleep before, so a restarted bridge never acts on a state it has not read yet.
    static let restoreGrace = Duration.seconds(2)

    /// Activity (live messages only), the retained idle states (taken back after a restart), and replies
    /// (to the wakes it sends to other bridges for dependencies).
    public var subscriptions: [MQTTSubscription] {
        [
            MQTTSubscription(filter: "\(topics.base)/+/+/activity", retainHandling: .doNotSend, retainAsPublished: true),
            MQTTSubscription(filter: "\(topics.base)/+/+/idle", retainHandling: .send),
            MQTTSubscription(filter: "\(topics.base)/+/+/reply", retainHandling: .doNotSend),
        ]
    }

    /// Runs the idle timers, leases, traffic readings and dependency wakes until cancelled.
    public func run(_ context: ExtensionContext) async {
        let book = IdleBook(configuration: configuration, topics: context.topics, logger: context.logger)
        let waker = DependencyWaker(book: book, context: context)
        context.beforeWaking { command, runtime, id in
            try await waker.wakeDependencies(of: ContainerRef(runtime, id), for: command)
        }
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await m in context.messages {
                    if Task.isCancelled { break }  // a stream that never runs dry must not outlive a shutdown
                    await self.handle(m, book: book, waker: waker, context: context)
                }
            }
            group.addTask {
                var restoring = true
                for await change in context.changes {
                    if Task.isCancelled { return }
                    if case .brokerConnected = change, restoring {
                        restoring = false
                        Task {
                            try? await Task.sleep(for: Self.restoreGrace)
                            self.perform(await book.markRestored(), book: book, context: context)
                        }
                    }
                    self.perform(await book.apply(change, now: .now()), book: book, context: context)
                    // A change may have made a container idle-managed while the tick loop waits
                    // its quiet interval: look at the timers now (its idle state goes out at once).
                    self.perform(await book.tick(now: .now()), book: book, context: context)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    // Nothing idle-managed and nothing to publish: look again rarely (an idle bridge
                    // should not wake up five times a second for nothing).
                    try? await Task.sleep(for: await book.isQuiet ? Self.quietInterval : Self.tickInterval)
                    self.perform(await book.tick(now: .now()), book: book, context: context)
                }
            }
            // Labels may set a threshold too: the loop reads nothing while no container watches traffic.
            group.addTask { await self.watchTraffic(book: book, context: context) }
        }
    }

    private func handle(_ m: MQTTIncomingMessage, book: IdleBook, waker: DependencyWaker, context: ExtensionContext) async {
        guard let (runtime, id, leaf) = context.topics.parse(m.topic) else { return }
        let ref = ContainerRef(runtime, id)
        switch leaf {
        case "activity" where context.owns(runtime, id):
            await book.activity(ref, payload: m.payload, retained: m.retain, now: .now())
        case "idle" where m.retain && context.owns(runtime, id):
            await book.retainedIdleState(ref, payload: m.payload, now: .now())
        case "reply":
            waker.sawReply(m)
        default:
            break
        }
    }

    /// Publishes and submits what the book decided.
    private func perform(_ work: IdleBook.Work, book: IdleBook, context: ExtensionContext) {
        for m in work.publish { context.publish(m) }
        for (ref, action) in work.sleep {
            context.logger.info(
                "\(ref) is idle: \(action.rawValue)", metadata: ["runtime": "\(ref.runtime)", "container": "\(ref.id)"])
            Task {
                let reply = await context.submit(Command(action: action.action, requestID: "idle"), to: ref.runtime, ref.id)
                await book.slept(ref, reply, now: .now())
            }
        }
    }

    /// Reads network counters every `traffic_interval` for the containers that watch traffic:
    /// first at once (the reading a rate starts from), then once per interval after each round.
    /// Each runtime's readings go to the book as they come (Docker's take about a second).
    private func watchTraffic(book: IdleBook, context: ExtensionContext) async {
        while !Task.isCancelled {
            let refs = await book.trafficWatched()
            if !refs.isEmpty {
                await withTaskGroup(of: Void.self) { group in
                    for runtime in Set(refs.map(\.runtime)).sorted() {
                        let ids = refs.filter { $0.runtime == runtime }.map(\.id)
                        group.addTask {
                            var counters: [ContainerRef: UInt64] = [:]
                            for (id, bytes) in await context.networkBytes(runtime, ids) {
                                counters[ContainerRef(runtime, id)] = bytes
                            }
                            await book.sampled(counters, now: .now())
                        }
                    }
                }
            }
            try? await Task.sleep(for: configuration.trafficInterval)
        }
    }
}
