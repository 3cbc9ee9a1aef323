import IdlewatcherCore
import Logging

/// One guest of a Proxmox VE cluster (an LXC container or a QEMU VM), addressed by vmid.
///
/// Every operation posts `status/{action}`, waits for its task on the node named in the
/// UPID, then reads `status/current` until it agrees (HA-managed guests end their
/// `hastart`/`hastop` task before the HA manager makes the change). It never edits the
/// guest's configuration.
struct ProxmoxContainer: Provider {
    let id: String
    /// Nil when the id is no vmid: every operation is then `not_found`.
    let vmid: Int?
    let runtime: ProxmoxRuntime

    private var api: ProxmoxAPI { runtime.api }

    /// Proxmox's default shutdown timeout, used when the bridge gives none.
    static let defaultShutdownTimeout = Duration.seconds(60)

    func start() async throws {
        // A CT refuses before the task (500 `CT N already running`); a VM's task fails with
        // `VM N already running`. Either way it is already there.
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

    /// A CT: `vzsuspend` (a checkpoint; it then reads `stopped`). A VM: `qmpause` (QEMU paused in RAM).
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
            // Proxmox reboots only running guests; a restart of a stopped one starts it, as Docker does.
            runtime.logger.debug("\(e.label) is not running: restart starts it", metadata: metadata("restart"))
            try await start()
        } catch let e as Paused {
            // A paused VM cannot be shut down for the reboot: resume it first, as Podman must.
            runtime.logger.debug("\(e.label) is paused: restart resumes it, then reboots", metadata: metadata("restart"))
            try await unpause()
            try await operate(
                "reboot", verb: "reboot", form: form, expect: .running, alreadyThere: nil,
                extra: timeout ?? Self.defaultShutdownTimeout)
        }
    }

    /// Ready: running, and the guest reports an address other than loopback and link-local on
    /// one of its interfaces, or it has no interface but the loopback (no network). A CT says
    /// so in `/interfaces`; a VM through its guest agent (a VM without the agent configured is
    /// ready when it runs: nothing else can tell).
    func readiness() async throws -> Readiness {
        let meta = metadata("readiness")
        return try await withLocation { at, vmid in
            let state = try await api.currentState(at, vmid: vmid, metadata: meta)
            guard state.status == "running" else {
                let status: ContainerStatus = state.status == "paused" ? .paused : try await self.status()
                return Readiness(status: status, health: .none, ready: false)
            }
            switch at.type {
            case .lxc:
                let data = try await api.data(
                    "GET", ProxmoxAPI.guestPath(at, vmid: vmid) + "/interfaces", doing: "read the interfaces of CT \(vmid)",
                    vmid: vmid, metadata: meta)
                return Readiness(status: .running, health: .none, ready: Self.reportsAddress(data))
            case .qemu:
                guard state.agent else { return Readiness(status: .running, health: .none, ready: true) }
                let reply = try await api.send(
                    "GET", ProxmoxAPI.guestPath(at, vmid: vmid) + "/agent/network-get-interfaces", metadata: meta)
                if reply.ok {
                    return Readiness(status: .running, health: .none, ready: Self.agentReportsAddress(reply.data ?? .null))
                }
                if reply.status == 500, reply.text.hasPrefix("No QEMU guest agent configured") {
                    return Readiness(status: .running, health: .none, ready: true)
                }
                if reply.status == 500,
                    reply.text.hasPrefix("QEMU guest agent is not running") || reply.text.hasSuffix("is not running")
                {
                    // Booting: the agent answers once the guest is up.
                    return Readiness(status: .running, health: .none, ready: false)
                }
                throw api.failure(reply, doing: "ask the guest agent of VM \(vmid) for its addresses", vmid: vmid)
            }
        }
    }

    /// Whether `/interfaces` shows the guest reachable: a global address on a NIC, or no NIC.
    static func reportsAddress(_ interfaces: JSON) -> Bool {
        let nics = (interfaces.array ?? []).filter { $0["name"]?.string != "lo" }
        if nics.isEmpty { return interfaces.array != nil }
        return nics.contains { nic in
            [nic["inet"]?.string, nic["inet6"]?.string].compactMap { $0 }.contains(where: isGlobal)
        }
    }

    /// The same for the guest agent's `network-get-interfaces` (`{"result":[{"name":…,"ip-addresses":[…]}]}`).
    static func agentReportsAddress(_ data: JSON) -> Bool {
        guard let all = (data["result"] ?? data).array else { return false }
        let nics = all.filter { $0["name"]?.string != "lo" }
        if nics.isEmpty { return true }
        return nics.contains { nic in
            (nic["ip-addresses"]?.array ?? []).compactMap { $0["ip-address"]?.string }.contains(where: isGlobal)
        }
    }

    /// Neither loopback nor link-local (`10.0.0.5/24` and bare addresses alike).
    static func isGlobal(_ address: String) -> Bool {
        let ip = (address.split(separator: "/").first.map(String.init) ?? address).lowercased()
        return !ip.isEmpty && !ip.hasPrefix("127.") && !ip.hasPrefix("fe80:") && ip != "::1" && !ip.hasPrefix("169.254.")
    }

    func status() async throws -> ContainerStatus {
        let meta = metadata("status")
        return try await withLocation { at, vmid in
            switch try await api.currentStatus(at, vmid: vmid, metadata: meta) {
            case "running":
                return .running
            case "paused":
                return .paused
            case "stopped" where at.type == .qemu:
                return .stopped
            case "stopped":
                do {
                    return try await runtime.suspended(vmid, node: at.node, metadata: meta) ? .paused : .stopped
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

    /// Thrown inside `operate` when Proxmox's precheck says the guest is not running.
    private struct NotRunning: Error {
        var label: String
    }

    /// Thrown inside `operate` when a VM is paused and cannot be shut down (for a reboot).
    private struct Paused: Error {
        var label: String
    }

    /// Posts `status/{action}`, waits for the task and for `status/current` to read `expect`.
    /// `alreadyThere`: the end of the message (`CT 105 already running` before the task, `VM
    /// 200 already running` as a VM's task result) that means the guest is already where the
    /// action would take it. `extra`: time on top of the task timeout (a shutdown's own timeout).
    private func operate(
        _ action: String, verb: String, form: [(String, String)] = [], expect: ContainerStatus, alreadyThere: String?,
        extra: Duration = .zero
    ) async throws {
        let meta = metadata(action)
        let deadline = ContinuousClock.now + runtime.configuration.taskTimeout + extra
        try await withLocation { at, vmid in
            let label = "\(at.type.noun) \(vmid)"
            let what = "the \(action) of \(label)"
            let reply = try await api.send(
                "POST", ProxmoxAPI.guestPath(at, vmid: vmid) + "/status/" + action, form: form, metadata: meta)
            var changed = true
            if reply.status == 500, reply.text.hasSuffix(" not running") || reply.text.hasSuffix(" already running") {
                // A CT asked for on a node it left (migrated since the last poll) reads "not
                // running" there, not missing: make sure it is here before believing it
                // (a missing one throws not_found, and the caller looks it up again).
                _ = try await api.currentState(at, vmid: vmid, metadata: meta)
            }
            if reply.ok {
                guard let text = reply.data?.string, let upid = UPID(text) else {
                    throw BridgeError(
                        .runtimeError, "Proxmox accepted \(what) but sent no task id (\(reply.data?.string ?? "nothing"))")
                }
                let exit = try await api.waitForTask(
                    upid, vmid: vmid, what: what, deadline: deadline, metadata: meta,
                    tolerating: alreadyThere.map { a in { $0 == "\(label) \(a)" } })
                if let alreadyThere, exit == "\(label) \(alreadyThere)" {
                    runtime.logger.debug("\(label) is already there: \(exit)", metadata: meta)
                    changed = false
                }
            } else if reply.status == 500, let alreadyThere, reply.text == "\(label) \(alreadyThere)" {
                // Nothing to do (a stop of a suspended CT, which reads stopped, is one of these).
                runtime.logger.debug("\(label) is already there: \(reply.text)", metadata: meta)
                changed = false
            } else if reply.status == 500, action == "reboot", reply.text.hasSuffix("\(vmid) not running") {
                throw NotRunning(label: label)
            } else if reply.status == 500, action == "reboot", at.type == .qemu, reply.text.hasPrefix("VM is paused") {
                throw Paused(label: label)
            } else {
                throw api.failure(reply, doing: "\(verb) \(label)", vmid: vmid)
            }
            try await confirm(vmid, at: at, reads: expect, after: what, deadline: deadline)
            if changed { runtime.operationConfirmed(vmid, at: at, status: expect) }
        }
    }

    /// Reads `status/current` until it agrees with `status` (a suspended CT reads `stopped`, a
    /// paused VM `paused`).
    private func confirm(
        _ vmid: Int, at: GuestLocation, reads status: ContainerStatus, after what: String, deadline: ContinuousClock.Instant
    ) async throws {
        let want =
            switch status {
            case .running: "running"
            case .paused where at.type == .qemu: "paused"
            default: "stopped"
            }
        var delay = Duration.milliseconds(50)
        while true {
            let now = try await api.currentStatus(at, vmid: vmid, metadata: metadata("confirm"))
            if now == want { return }
            if ContinuousClock.now + delay > deadline {
                throw BridgeError(
                    .timeout,
                    "\(what) did not take effect in time: its task ended but \(at.type.noun) \(vmid) still reads \(now) (an HA-managed guest waits for the HA manager)"
                )
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(500))
        }
    }

    /// Runs `body` with the guest's node and type: those of the last listing, or looked up. A
    /// guest that is missing where it was listed may have migrated: look once more before
    /// saying `not_found`.
    private func withLocation<T: Sendable>(_ body: (GuestLocation, Int) async throws -> T) async throws -> T {
        guard let vmid else {
            throw BridgeError(
                .notFound,
                "'\(id)' names no guest of Proxmox at \(runtime.configuration.url): expected \(runtime.idPrefix)<vmid>")
        }
        guard let cached = runtime.cachedLocation(of: vmid) else {
            return try await body(try await runtime.locate(vmid), vmid)
        }
        do {
            return try await body(cached, vmid)
        } catch let e as BridgeError where e.code == .notFound {
            let at = try await runtime.locate(vmid)
            if at == cached { throw e }
            return try await body(at, vmid)
        }
    }

    private func rejectSignal(_ signal: Signal?) throws {
        if let signal {
            throw BridgeError(
                .badRequest, "signals do not apply to Proxmox guests (got \(signal.name)); send the action without one")
        }
    }

    private func metadata(_ action: String) -> Logger.Metadata {
        var m: Logger.Metadata = ["action": "\(action)"]
        if let vmid { m["vmid"] = "\(vmid)" }
        return m
    }
}
