import ConfigReader
import DockerProvider
import IdlewatcherCore
import Logging
import YAML

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

/// Podman's API service: the `podman:` section, with the same keys as `docker:` and the
/// default URL `unix:///run/podman/podman.sock` (a root Podman service).
public enum PodmanModule: RuntimeModule {
    /// Podman's description (``EngineFlavor/podman``).
    public static let description = EngineFlavor.podman.description
    /// `podman:`, one entry per Podman service.
    public static let section = "podman"
    /// Counted as "Podman endpoint(s)" by `check-config`, when there is an entry.
    public static let countNoun = "Podman endpoint(s)"
    /// The default socket of a root Podman service.
    public static let defaultURL = "unix:///run/podman/podman.sock"

    /// Reads one `podman:` entry: the keys of a `docker:` entry, with ``defaultURL`` when `url` is not given.
    public static func endpoint(_ node: YAMLNode, path: String, reader: inout ConfigReader) -> RuntimeEndpoint? {
        // The bridge never runs inside a Podman container it drives through this API: no own-container guard.
        EngineSection.endpoint(node, path: path, reader: &reader, flavor: .podman, defaultURL: defaultURL, ownContainer: nil)
    }
}
