import IdlewatcherCore
import Logging

/// One Proxmox VE cluster as a ``ContainerRuntime``. (Placeholder until the provider lands.)
public final class ProxmoxRuntime: ContainerRuntime {
    public let kind = RuntimeKind.proxmox
    public let configuration: ProxmoxEndpointConfiguration
    public var endpoint: String { configuration.url }
    public var idPrefix: String { configuration.idPrefix }
    let logger: Logger

    public init(configuration: ProxmoxEndpointConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
    }

    public func containers() async throws -> [ContainerInfo] {
        throw BridgeError(.unavailable, "the Proxmox provider is not implemented yet")
    }

    public func provider(for id: String) -> any Provider { fatalError("not implemented") }

    public func watch(_ handler: @escaping @Sendable (RuntimeUpdate) async -> Void) async {
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
    }

    public func close() async {}
}
