/// The actions a command may ask for (CONTRACT.md, "Commands").
public enum Action: String, Sendable, Hashable, Codable, CaseIterable {
    /// The contract's eight: `wake` is unpause if paused, else start; `status` reads the live status and
    /// changes nothing.
    case start, wake, stop, pause, unpause, kill, restart, status

    /// Every action's name, comma-separated, for messages.
    public static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
