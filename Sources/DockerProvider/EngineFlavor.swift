import IdlewatcherCore

extension RuntimeKind {
    /// Docker Engine, `<base>/docker/<name>/…`.
    public static let docker = RuntimeKind("docker")
}

/// One implementation of the Docker Engine API: Docker itself, or another that serves the
/// same API (Podman's compatible API) with its own words and quirks.
///
/// The Engine API client, the event follower and the container operations of this module are
/// written once; a flavor says what differs.
public struct EngineFlavor: Sendable {
    /// The runtime as the bridge sees it: topic segment, name, what commands accept.
    public var description: RuntimeDescription
    /// The engine's event actions the bridge passes on, and what each means. Others are ignored.
    public var eventKinds: [String: LifecycleEvent.Kind]
    /// The engine refuses to stop or restart a paused container (Podman: "container state
    /// improper"): `stop` and `restart` unpause it first.
    public var unpausesBeforeStop: Bool
    /// Healthchecks run only when someone runs them (Podman without systemd timers): while it
    /// waits for a container to become ready, the bridge runs them (`/libpod/…/healthcheck`).
    public var drivesHealthchecks: Bool
    /// The listing's status line tells the health (`Up 5 seconds (healthy)`): Docker does, Podman not.
    public var listsHealth: Bool

    /// A flavor; by default the bridge leaves healthchecks to the engine and reads the health from listings.
    public init(
        description: RuntimeDescription, eventKinds: [String: LifecycleEvent.Kind], unpausesBeforeStop: Bool,
        drivesHealthchecks: Bool = false, listsHealth: Bool = true
    ) {
        self.listsHealth = listsHealth
        self.description = description
        self.eventKinds = eventKinds
        self.unpausesBeforeStop = unpausesBeforeStop
        self.drivesHealthchecks = drivesHealthchecks
    }

    /// Docker's container event actions (Engine API 1.41–1.45).
    public static let dockerEventKinds: [String: LifecycleEvent.Kind] = [
        "create": .created, "start": .started, "restart": .restarted, "pause": .paused, "unpause": .unpaused,
        "kill": .killed, "stop": .stopped, "die": .died, "destroy": .destroyed, "oom": .oom, "rename": .renamed,
        "health_status": .health,
    ]

    /// Docker Engine.
    public static let docker = EngineFlavor(
        description: RuntimeDescription(
            kind: .docker, displayName: "Docker", signalActions: [.stop, .kill], manufacturer: "Docker", icon: "mdi:docker",
            containerNoun: "Docker container"),
        eventKinds: dockerEventKinds, unpausesBeforeStop: false)
}

extension LifecycleEvent.Kind {
    /// Docker's word for the kind: what every Engine API flavor publishes as the event's
    /// `action`, so that automations read the same words for Docker and Podman.
    var engineAction: String? {
        switch self {
        case .created: "create"
        case .started: "start"
        case .restarted: "restart"
        case .paused: "pause"
        case .unpaused: "unpause"
        case .killed: "kill"
        case .stopped: "stop"
        case .died: "die"
        case .destroyed: "destroy"
        case .oom: "oom"
        case .renamed: "rename"
        case .health: "health_status"
        case .other: nil
        }
    }

    /// The status an Engine API event leaves the container in; nil where it does not change it
    /// (`kill` with a non-fatal signal leaves it running; the `die` that follows a fatal one says `stopped`).
    var engineStatus: ContainerStatus? {
        switch self {
        case .created, .stopped, .died, .destroyed: .stopped
        case .started, .restarted, .unpaused: .running
        case .paused: .paused
        case .killed, .oom, .renamed, .health, .other: nil
        }
    }
}

extension Health {
    /// The Engine API's word (`State.Health.Status`, a `health_status` event): anything else,
    /// including `""` (Podman without a healthcheck), is `none`.
    init(engineWord: String) {
        switch engineWord.trimmingWhitespace() {
        case "healthy": self = .healthy
        case "unhealthy": self = .unhealthy
        case "starting": self = .starting
        default: self = .none
        }
    }

    /// From a listing's status line: `Up 5 seconds (healthy)`, `Up 1 second (health: starting)`.
    init(statusLine: String) {
        if statusLine.hasSuffix("(healthy)") {
            self = .healthy
        } else if statusLine.hasSuffix("(unhealthy)") {
            self = .unhealthy
        } else if statusLine.hasSuffix("starting)") {
            self = .starting
        } else {
            self = .none
        }
    }
}
