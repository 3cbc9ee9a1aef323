import IdlewatcherCore

extension CommandPlan {
    /// Carries out a command on a provider.
    ///
    /// `known` is the status the bridge already has from the runtime's events. It decides
    /// what to do without asking the runtime first (a round trip saved on every command); the
    /// rules for when that decision is checked against a live read are in the state machine.
    static func perform(_ c: Command, on p: any Provider, stopTimeout: Duration, known: ContainerStatus?) async throws {
        var live = false
        var status: ContainerStatus
        if let known, known != .error {
            status = known
        } else {
            status = try await p.status()
            live = true
        }
        var step = step(c.action, status, id: p.id)
        if needsLiveCheck(step, statusWasLive: live) {
            status = try await p.status()
            live = true
            step = self.step(c.action, status, id: p.id)
        }
        do {
            try await run(step, c, on: p, stopTimeout: stopTimeout)
        } catch let e as BridgeError where replansAfterRefusal(e, statusWasLive: live) {
            let again = self.step(c.action, try await p.status(), id: p.id)
            if again == step { throw e }
            try await run(again, c, on: p, stopTimeout: stopTimeout)
        }
    }

    private static func run(_ step: Step, _ c: Command, on p: any Provider, stopTimeout: Duration) async throws {
        switch step {
        case .nothing: return
        case .invalid(let message): throw BridgeError(.invalidState, message)
        case .start: try await p.start()
        case .unpause: try await p.unpause()
        case .pause: try await p.pause()
        case .stop: try await p.stop(signal: c.signal, timeout: stopTimeout)
        case .kill: try await p.kill(signal: c.signal)
        case .restart: try await p.restart(timeout: c.timeout ?? stopTimeout)
        }
    }
}
