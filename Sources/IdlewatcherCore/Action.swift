/// The actions a command may ask for (CONTRACT.md, "Commands").
public enum Action: String, Sendable, Hashable, Codable, CaseIterable {
    case start, wake, stop, pause, unpause, kill, restart, status

    /// Whether the action accepts a `signal` on the given runtime.
    public func acceptsSignal(on runtime: RuntimeKind) -> Bool {
        switch (self, runtime) {
        case (.stop, .docker), (.kill, .docker): true
        default: false
        }
    }

    /// Whether the action accepts a `timeout`.
    public func acceptsTimeout(on runtime: RuntimeKind) -> Bool {
        switch self {
        case .stop, .restart: true
        default: false
        }
    }
}
