/// The status of a container as the contract names it.
///
/// Every runtime maps its own states onto these four; `error` means the runtime could not tell.
public enum ContainerStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case running
    case stopped
    case paused
    case error
}
