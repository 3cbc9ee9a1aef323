import DockerProvider
import IdlewatcherCore
import Logging

extension RuntimeKind {
    /// Podman, `<base>/podman/<name>/…`.
    public static let podman = RuntimeKind("podman")
}

extension EngineFlavor {
    /// Podman's Docker-compatible API (`podman system service`): the same containers, events
    /// and operations as Docker, with Podman's words (`died`, `remove`, `init`, `cleanup`) and
    /// one quirk: it refuses to stop a paused container, so `stop` unpauses first.
    public static let podman = EngineFlavor(
        description: RuntimeDescription(
            kind: .podman, displayName: "Podman", signalActions: [.stop, .kill], manufacturer: "Podman",
            icon: "mdi:cube-outline", containerNoun: "Podman container"),
        eventKinds: EngineFlavor.dockerEventKinds.merging(
            ["died": .died, "remove": .destroyed, "health_status": .health], uniquingKeysWith: { _, podman in podman }),
        unpausesBeforeStop: true, drivesHealthchecks: true, listsHealth: false)
}

/// Podman endpoints: a Podman service's API socket (`unix:///run/podman/podman.sock`, or
/// `tcp://host:port`), driven through the Engine API module.
public enum Podman {
    /// The default socket of a root Podman service.
    public static let defaultURL = "unix:///run/podman/podman.sock"

    /// A runtime for one Podman service.
    public static func runtime(configuration: DockerEndpointConfiguration, logger: Logger) throws -> DockerRuntime {
        try DockerRuntime(configuration: configuration, flavor: .podman, logger: logger, ownContainer: nil)
    }
}
