/// The status of a container as the contract names it.
///
/// Every runtime maps its own states onto these four; `error` means the runtime could not tell.
public enum ContainerStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Its processes run.
    case running
    /// Not running: created, exited or dead (Docker, Podman); stopped (Proxmox).
    case stopped
    /// Frozen: paused (Docker, Podman) or suspended (Proxmox).
    case paused
    /// The runtime cannot tell (a Proxmox node offline).
    case error
}

/// A container's health as its status JSON says it (`health`).
public enum Health: String, Sendable, Hashable, CaseIterable {
    /// Its healthcheck passes.
    case healthy
    /// Its healthcheck fails.
    case unhealthy
    /// Its healthcheck has not passed yet since it started.
    case starting
    /// It has no healthcheck (or is not running, or the runtime has none: Proxmox).
    case none
}

/// Whether a container can serve: the contract's readiness ("Readiness", v1.1).
public struct Readiness: Sendable, Hashable {
    /// The status read together with ``ready``.
    public var status: ContainerStatus
    /// The health read together with ``ready`` (`none` where the runtime has no healthchecks).
    public var health: Health
    /// Running, and healthy where it has a healthcheck (Docker, Podman) or reachable by an
    /// address (Proxmox: the guest reports an IP, or it has no network).
    public var ready: Bool

    /// A reading, as a provider makes it.
    public init(status: ContainerStatus, health: Health, ready: Bool) {
        self.status = status
        self.health = health
        self.ready = ready
    }
}
