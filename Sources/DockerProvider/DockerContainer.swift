import HTTPClient
import IdlewatcherCore

/// One container of an Engine API (Docker, Podman), addressed by name.
struct DockerContainer: Provider {
    let id: String
    let name: String
    let api: DockerAPI

    private var path: String { "/containers/" + FormEncoding.percentEncode(name) }

    func start() async throws {
        let r = try await api.request("POST", path + "/start")
        try check(r, ok: [204, 304], doing: "start")
    }

    func pause() async throws {
        try check(try await api.request("POST", path + "/pause"), ok: [204], doing: "pause")
    }

    func unpause() async throws {
        try check(try await api.request("POST", path + "/unpause"), ok: [204], doing: "unpause")
    }

    func stop(signal: Signal?, timeout: Duration?) async throws {
        if api.flavor.unpausesBeforeStop, try await status() == .paused {
            try await unpause()
        }
        let seconds = timeout?.wholeSecondsRoundedUp
        let httpTimeout = Duration.seconds((seconds ?? 10) + 30)
        var query = seconds.map { ["t=\($0)"] } ?? []
        if let signal {
            // `signal` on /stop arrived with API 1.42; older engines get kill, wait, then SIGKILL.
            if try await api.apiVersion() >= DockerAPIVersion(major: 1, minor: 42) {
                query.append("signal=\(signal.name)")
            } else {
                try await stopByHand(signal: signal, seconds: seconds ?? 10)
                return
            }
        }
        let q = query.isEmpty ? "" : "?" + query.joined(separator: "&")
        let r = try await api.request("POST", path + "/stop" + q, timeout: httpTimeout)
        try check(r, ok: [204, 304], doing: "stop")
    }

    private func stopByHand(signal: Signal, seconds: Int64) async throws {
        let r = try await api.request("POST", path + "/kill?signal=\(signal.name)")
        if r.status == 409 { return }  // not running: already stopped
        try check(r, ok: [204], doing: "stop")
        do {
            let w = try await api.request("POST", path + "/wait?condition=not-running", timeout: .seconds(max(seconds, 1)))
            try check(w, ok: [200], doing: "stop")
        } catch let e as BridgeError where e.code == .timeout {
            let k = try await api.request("POST", path + "/kill?signal=SIGKILL")
            if k.status != 409 { try check(k, ok: [204], doing: "stop") }
            let w = try await api.request("POST", path + "/wait?condition=not-running", timeout: .seconds(30))
            try check(w, ok: [200], doing: "stop")
        }
    }

    func kill(signal: Signal?) async throws {
        let s = (signal ?? .kill).name
        try check(try await api.request("POST", path + "/kill?signal=\(s)"), ok: [204], doing: "kill")
    }

    func restart(timeout: Duration?) async throws {
        if api.flavor.unpausesBeforeStop, try await status() == .paused {
            try await unpause()
        }
        let seconds = timeout?.wholeSecondsRoundedUp
        let q = seconds.map { "?t=\($0)" } ?? ""
        let r = try await api.request("POST", path + "/restart" + q, timeout: .seconds((seconds ?? 10) + 30))
        try check(r, ok: [204], doing: "restart")
    }

    func status() async throws -> ContainerStatus {
        try await inspectState().status
    }

    func readiness() async throws -> Readiness {
        var state = try await inspectState()
        if api.flavor.drivesHealthchecks, state.status == .running, state.health == .starting || state.health == .unhealthy {
            // Nothing runs Podman's checks without systemd: run one, as its timer would.
            // Podman serves libpod's paths under any version prefix, the compatible one included.
            _ = try? await api.request("GET", "/libpod" + path + "/healthcheck", timeout: .seconds(60))
            state = try await inspectState()
        }
        return Readiness(
            status: state.status, health: state.health,
            ready: state.status == .running && (state.health == .none || state.health == .healthy))
    }

    /// `GET /containers/{name}/json`: the status, and the health where it has a healthcheck.
    private func inspectState() async throws -> (status: ContainerStatus, health: Health) {
        let r = try await api.request("GET", path + "/json")
        try check(r, ok: [200], doing: "read the status of")
        guard let json = try? JSON.parse(r.body), let state = json["State"]?["Status"]?.string else {
            throw BridgeError(
                .runtimeError, "\(api.name) at \(api.configuration.url) sent an unreadable container state for \(name)")
        }
        let status = DockerRuntime.status(fromState: state)
        let health = status == .running ? Health(engineWord: json["State"]?["Health"]?["Status"]?.string ?? "") : .none
        return (status, health)
    }

    private func check(_ r: HTTPResponse, ok: Set<Int>, doing verb: String) throws {
        if ok.contains(r.status) { return }
        let message = DockerAPI.message(of: r)
        switch r.status {
        case 404:
            throw BridgeError(.notFound, "no container named \(name) on \(api.name) at \(api.configuration.url)")
        default:
            throw BridgeError(.runtimeError, "\(api.name) refused to \(verb) \(name): \(message)")
        }
    }
}
