import DockerProvider
import IdlewatcherCore
import PodmanProvider
import ProxmoxProvider

/// The runtimes' own descriptions, by the names the tests use.
extension RuntimeDescription {
    static let docker = EngineFlavor.docker.description
    static let podman = EngineFlavor.podman.description
    static let proxmox = ProxmoxRuntime.description
}
