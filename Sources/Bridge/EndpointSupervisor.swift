import IdlewatcherCore
import Logging
import ServiceLifecycle

/// Keeps one runtime endpoint followed, for every runtime alike: connects, follows its
/// updates into the registry, marks it unavailable when lost, reconnects with the runtime's
/// backoff, and resyncs (lists and publishes every status) whenever it is back.
public final class EndpointSupervisor: Service, Sendable {
    let index: Int
    let runtime: any ContainerRuntime
    let registry: Registry
    let logger: Logger

    init(index: Int, runtime: any ContainerRuntime, registry: Registry, logger: Logger) {
        self.index = index
        self.runtime = runtime
        self.registry = registry
        self.logger = logger
    }

    /// Follows the endpoint until cancelled; then closes it.
    public func run() async throws {
        await RuntimeWatch(runtime).run { update in await self.handle(update) }
        await runtime.close()
    }

    private func handle(_ update: RuntimeUpdate) async {
        switch update {
        case .event(let e):
            await registry.markConnecting(index)
            await registry.apply(index, e)
        case .resync: await resync()
        case .unavailable(let e): await registry.markUnavailable(index, e)
        }
    }

    /// Lists the endpoint's containers and publishes every status (and clears the gone ones).
    func resync() async {
        let started = ContinuousClock.now
        await registry.markConnecting(index)
        do {
            let list = try await runtime.containers()
            await registry.applyListing(index, list, startedAt: started)
            logger.debug("resynced \(list.count) containers of \(runtime.endpoint)")
        } catch {
            let e = BridgeError.wrapping(error)
            logger.warning("cannot list the containers of \(runtime.endpoint): \(e.message)")
            await registry.markUnavailable(index, e)
        }
    }

    /// After the broker came back: resync if the endpoint is up (else its own resync will come).
    func resyncIfAvailable() async {
        if await registry.endpoint(index).available { await resync() }
    }
}
