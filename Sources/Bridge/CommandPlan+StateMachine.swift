import IdlewatcherCore

/// The contract's action table as a state machine, without I/O: for a command and the status
/// a container is in, the one step to take ("already there" is ``Step/nothing``; wake's choice
/// is unpause or start). ``CommandPlan/perform(_:on:stopTimeout:known:)`` carries it out.
enum CommandPlan {
    /// One step of the action table.
    enum Step: Equatable, Sendable {
        /// Already there: nothing is done and the command succeeds.
        case nothing
        /// The command cannot apply to this status; the message says what to send instead.
        case invalid(String)
        case start, unpause, pause, stop, kill, restart

        var isDecisionWithoutAction: Bool {
            switch self {
            case .nothing, .invalid: true
            default: false
            }
        }
    }

    /// The step `action` means for container `id` whose status is `status`.
    static func step(_ action: Action, _ status: ContainerStatus, id: String) -> Step {
        switch (action, status) {
        case (.status, _): .nothing
        case (.start, .running), (.wake, .running): .nothing
        case (.start, .paused): .invalid("\(id) is paused; send unpause or wake to resume it")
        case (.start, _): .start
        case (.wake, .paused): .unpause
        case (.wake, _): .start
        case (.stop, .stopped), (.kill, .stopped): .nothing
        case (.stop, _): .stop
        case (.kill, _): .kill
        case (.pause, .paused): .nothing
        case (.pause, .stopped): .invalid("\(id) is stopped; only a running container can be paused")
        case (.pause, _): .pause
        case (.unpause, .running): .nothing
        case (.unpause, .stopped): .invalid("\(id) is stopped, not paused; send start or wake")
        case (.unpause, _): .unpause
        case (.restart, _): .restart
        }
    }

    /// Whether the reply to `action` waits until the container is ready (contract, "Readiness").
    static func waitsForReadiness(_ action: Action) -> Bool {
        switch action {
        case .start, .wake, .unpause, .restart: true
        default: false
        }
    }

    /// Whether the plan made from a status the bridge already knew (from events) must be
    /// checked against a live read before it is trusted: a decision to do nothing or to
    /// refuse may rest on a status a few milliseconds old.
    static func needsLiveCheck(_ step: Step, statusWasLive: Bool) -> Bool {
        !statusWasLive && step.isDecisionWithoutAction
    }

    /// Whether a runtime's refusal of a step planned from a known status is worth one re-plan
    /// from a live read (a `pause` of what turned out to be paused already is then ok).
    static func replansAfterRefusal(_ error: BridgeError, statusWasLive: Bool) -> Bool {
        !statusWasLive && (error.code == .runtimeError || error.code == .invalidState)
    }
}
