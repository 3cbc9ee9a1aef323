import IdlewatcherCore
import Logging

/// One LXC container of a Proxmox VE cluster, addressed by vmid.
///
/// Every operation posts `status/{action}`, waits for its task on the node named in the
/// UPID, then reads `status/current` until it agrees (HA-managed CTs end their
/// `hastart`/`hastop` task before the HA manager makes the change). It never edits the CT's
/// configuration.
struct ProxmoxContainer: Provider {
    let id: String
    /// Nil when the id is no vmid: every operation is then `not_found`.
    let vmid: Int?
    let runtime: ProxmoxRuntime

    private var api: ProxmoxAPI { runtime.api }

    /// Proxmox's default shutdown timeout, used when the bridge gives none.
    static let defaultShutdownTimeout = Duration.seconds(60)

    func start() async throws {
        try await operate("start", verb: "start", expect: .running, alreadyThere: "already running")
    }

    func stop(signal: Signal?, timeout: Duration?) async throws {
        try rejectSignal(signal)
        var form: [(String, String)] = []
        if let timeout { form.append(("timeout", String(timeout.wholeSecondsRoundedUp))) }
        form.append(("forceStop", "1"))
        try await operate(
            "shutdown", verb: "shut down", form: form, expect: .stopped, alreadyThere: "not running",
            extra: timeout ?? Self.defaultShutdownTimeout)
    }

    func kill(signal: Signal?) async throws {
        try rejectSignal(signal)
        try await operate("stop", verb: "stop", expect: .stopped, alreadyThere: "not running")
    }

    func pause() async throws {
        try await operate("suspend", verb: "suspend", expect: .paused, alreadyThere: nil)
    }

    func unpause() async throws {
        try await operate("resume", verb: "resume", expect: .running, alreadyThere: "already running")
    }

    func restart(timeout: Duration?) async throws {
        var form: [(String, String)] = []
        if let timeout { form.append(("timeout", String(timeout.wholeSecondsRoundedUp))) }
        do {
            try await operate(
                "reboot", verb: "reboot", form: form, expect: .running, alreadyThere: nil,
                extra: timeout ?? Self.defaultShutdownTimeout)
        } catch let e as NotRunning {
            // Proxmox reboots only running CTs; a restart of a stopped one starts it, as Docker does.
            runtime.logger.debug("CT \(e.vmid) is not running: restart starts it", metadata: metadata("restart"))
            try await start()
        }
    }

    /// Ready: running, and the CT reports an address other than loopback and link-local on one
    /// of its interfaces, or it has no interface but the loopback (no network).
    func readiness() async throws -> Readiness {
        let status = try await status()
        guard status == .running, let vmid else { return Readiness(status: status, health: .none, ready: false) }
        let meta = metadata("readiness")
        let ready = try await withNode { node, _ in
            let data = try await api.data(
                "GET", ProxmoxAPI.ctPath(node: node, vmid: vmid) + "/interfaces",
                doing: "read the interfaces of CT \(vmid)", vmid: vmid, metadata: meta)
            return Self.reportsAddress(data)
        }
        return Readiness(status: status, health: .none, ready: ready)
    }

    /// Whether `/interfaces` shows the guest reachable: a global address on a NIC, or no NIC.
    static func reportsAddress(_ interfaces: JSON) -> Bool {
        let nics = (interfaces.array ?? []).filter { $0["name"]?.string != "lo" }
        if nics.isEmpty { return interfaces.array != nil }
        return nics.contains { nic in
            [nic["inet"]?.string, nic["inet6"]?.string].compactMap { $0 }.contains { address in
                let ip = address.split(separator: "/").first.map(String.init) ?? address
                return !ip.isEmpty && !ip.hasPrefix("127.") && !ip.lowercased().hasPrefix("fe80:") && ip != "::1"
            }
        }
    }

    func status() async throws -> ContainerStatus {
        let meta = metadata("status")
        return try await withNode { node, vmid in
            switch try await api.currentStatus(node: node, vmid: vmid, metadata: meta) {
            case "running":
                return .running
            case "stopped":
                do {
                    return try await runtime.suspended(vmid, node: node, metadata: meta) ? .paused : .stopped
                } catch {
                    // It reads stopped, but whether it is suspended cannot be told now.
                    runtime.logger.debug(
                        "cannot read the tasks of CT \(vmid): \(BridgeError.wrapping(error).message)", metadata: meta)
                    return runtime.knownSuspended(vmid) ? .paused : .error
                }
            default:
                return .error
            }
        }
    }

    // MARK: operations

    /// Thrown inside `operate` when Proxmox's precheck says the CT is not running.
    private struct NotRunning: Error {
        var vmid: Int
    }

    /// Posts `status/{action}`, waits for the task and for `status/current` to read `expect`.
    /// `alreadyThere`: the end of the precheck message (`CT 105 already running`) that means
    /// the CT is already where the action would take it. `extra`: time on top of the task
    /// timeout (a shutdown's own timeout).
    private func operate(
        _ action: String, verb: String, form: [(String, String)] = [], expect: ContainerStatus, alreadyThere: String?,
        extra: Duration = .zero
    ) async throws {
        let meta = metadata(action)
        let deadline = ContinuousClock.now + runtime.configuration.taskTimeout + extra
        try await withNode { node, vmid in
            let what = "the \(action) of CT \(vmid)"
            let reply = try await api.send(
                "POST", ProxmoxAPI.ctPath(node: node, vmid: vmid) + "/status/" + action, form: form, metadata: meta)
            var changed = true
            if reply.ok {
                guard let text = reply.data?.string, let upid = UPID(text) else {
                    throw BridgeError(
                        .runtimeError, "Proxmox accepted \(what) but sent no task id (\(reply.data?.string ?? "nothing"))")
                }
                try await api.waitForTask(upid, vmid: vmid, what: what, deadline: deadline, metadata: meta)
            } else if reply.status == 500, let alreadyThere, reply.text == "CT \(vmid) \(alreadyThere)" {
                // Nothing to do (a stop of a suspended CT, which reads stopped, is one of these).
                runtime.logger.debug("CT \(vmid) is already there: \(reply.text)", metadata: meta)
                changed = false
            } else if reply.status == 500, action == "reboot", reply.text.hasSuffix("\(vmid) not running") {
                throw NotRunning(vmid: vmid)
            } else {
                throw api.failure(reply, doing: "\(verb) CT \(vmid)", vmid: vmid)
            }
            try await confirm(vmid, node: node, reads: expect, after: what, deadline: deadline)
            if changed { runtime.operationConfirmed(vmid, node: node, status: expect) }
        }
    }

    /// Reads `status/current` until it agrees with `status` (a suspended CT reads `stopped`).
    private func confirm(
        _ vmid: Int, node: String, reads status: ContainerStatus, after what: String, deadline: ContinuousClock.Instant
    ) async throws {
        let want = status == .running ? "running" : "stopped"
        var delay = Duration.milliseconds(50)
        while true {
            let now = try await api.currentStatus(node: node, vmid: vmid, metadata: metadata("confirm"))
            if now == want { return }
            if ContinuousClock.now + delay > deadline {
                throw BridgeError(
                    .timeout,
                    "\(what) did not take effect in time: its task ended but CT \(vmid) still reads \(now) (an HA-managed CT waits for the HA manager)"
                )
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(500))
        }
    }

    /// Runs `body` with the CT's node: the one of the last listing, or looked up. A CT that is
    /// missing where it was listed may have migrated: look once more before saying `not_found`.
    private func withNode<T: Sendable>(_ body: (String, Int) async throws -> T) async throws -> T {
        guard let vmid else {
            throw BridgeError(
                .notFound, "'\(id)' names no CT of Proxmox at \(runtime.configuration.url): expected \(runtime.idPrefix)<vmid>")
        }
        guard let cached = runtime.cachedNode(of: vmid) else {
            return try await body(try await runtime.locate(vmid), vmid)
        }
        do {
            return try await body(cached, vmid)
        } catch let e as BridgeError where e.code == .notFound {
            let node = try await runtime.locate(vmid)
            if node == cached { throw e }
            return try await body(node, vmid)
        }
    }

    private func rejectSignal(_ signal: Signal?) throws {
        if let signal {
            throw BridgeError(
                .badRequest, "signals do not apply to Proxmox CTs (got \(signal.name)); send the action without one")
        }
    }

    private func metadata(_ action: String) -> Logger.Metadata {
        var m: Logger.Metadata = ["action": "\(action)"]
        if let vmid { m["vmid"] = "\(vmid)" }
        return m
    }
}
