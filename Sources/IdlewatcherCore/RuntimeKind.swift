/// A container runtime as it appears in topics (`<base>/<runtime>/…`): `docker`, `podman`,
/// `proxmox`, or whatever a runtime module registers.
///
/// An open set: the core names no runtime. Each runtime module declares its own constant
/// (`extension RuntimeKind { static let docker = RuntimeKind("docker") }`) and describes what
/// it can do in a ``RuntimeDescription``.
public struct RuntimeKind: RawRepresentable, Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The topic segment: lower-case letters, digits and `_`; never `bridge` (taken by bridge states).
    public let rawValue: String

    /// The kind with this topic segment (not checked).
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The kind with this topic segment (not checked): how a runtime module declares its own.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The topic segment.
    public var description: String { rawValue }
    /// By topic segment, so that listings and logs come in a stable order.
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// What a runtime can do and how it presents itself: everything the bridge, the command
/// parser and Home Assistant discovery need to know about a runtime without naming it.
public struct RuntimeDescription: Sendable, Hashable {
    /// The topic segment.
    public var kind: RuntimeKind
    /// A name for people: `Docker`, `Podman`, `Proxmox VE`.
    public var displayName: String
    /// The actions that accept a `signal` key (Docker: stop and kill; Proxmox: none).
    public var signalActions: Set<Action>
    /// The actions that accept a `timeout` key.
    public var timeoutActions: Set<Action>
    /// The device shown for a container (Home Assistant): manufacturer and icon.
    public var manufacturer: String
    /// The icon Home Assistant shows (`mdi:docker`).
    public var icon: String
    /// How a container's ``ContainerInfo/model`` (image, node) reads on its device:
    /// `noun + before + model + after`, e.g. "Docker container (nginx:1.27)", "LXC container on pve1".
    public var containerNoun: String
    /// What goes between the noun and the model: ` (`, ` on `.
    public var modelBefore: String
    /// What follows the model: `)`, or nothing.
    public var modelAfter: String
    /// How often a command that waits for readiness reads it.
    public var readinessInterval: Duration
    /// The noun for a kind of guest (``ContainerInfo/type``) where a runtime has several:
    /// Proxmox `lxc` → "LXC container", `qemu` → "QEMU VM". Other types read ``containerNoun``.
    public var typeNouns: [String: String]

    /// A description; by default `timeout` applies to stop and restart, the manufacturer is the display
    /// name, and readiness is read every 250 ms.
    public init(
        kind: RuntimeKind, displayName: String, signalActions: Set<Action>, timeoutActions: Set<Action> = [.stop, .restart],
        manufacturer: String? = nil, icon: String = "mdi:server", containerNoun: String = "container",
        modelBefore: String = " (", modelAfter: String = ")", readinessInterval: Duration = .milliseconds(250),
        typeNouns: [String: String] = [:]
    ) {
        self.typeNouns = typeNouns
        self.readinessInterval = readinessInterval
        self.kind = kind
        self.displayName = displayName
        self.signalActions = signalActions
        self.timeoutActions = timeoutActions
        self.manufacturer = manufacturer ?? displayName
        self.icon = icon
        self.containerNoun = containerNoun
        self.modelBefore = modelBefore
        self.modelAfter = modelAfter
    }

    /// What a container is, for people: "Docker container (nginx:1.27)", "QEMU VM on pve1".
    public func deviceModel(_ model: String?, type: String? = nil) -> String {
        (type.flatMap { typeNouns[$0] } ?? containerNoun) + (model.map { modelBefore + $0 + modelAfter } ?? "")
    }
}
